"""The `nextword` command: one subcommand per step of the flow in docs/DESIGN.md.

Each subcommand's module is imported only when it runs, so `nextword serve` never
imports torch and `nextword data` needs neither torch nor onnxruntime. A subcommand
whose extra is not installed still answers --help, and says which extra it needs.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from model.engine.errors import UserError

# name -> (module with add_arguments(parser) and main(args), one-line help, extra it needs)
COMMANDS = {
    "data": ("model.data.command", "load the corpus, apply the split, print counts (default corpus: the 'data' extra)", "data"),
    "train": ("model.train.command", "train the LSTM language model", "train"),
    "evaluate": ("model.evaluate.command", "perplexity, accuracy and keystroke savings on the test split, next to a trigram "
                 "baseline; a checkpoint needs the 'train' extra (torch), --model-dir does not", "data"),
    "export": ("model.export.command", "write a model directory (ONNX + vocab + manifest), verified against torch", "train"),
    "dictionary": ("model.export.dictionary", "give a model directory its main dictionary (wordfreq's English list, "
                   "spelled and cased by SCOWL)", "train"),
    "unigram": ("model.export.unigram", "give a model directory its training split's count of each vocabulary token "
                "(unigram.txt: the bias a user's own words put on the LSTM)", "data"),
    "serve": ("service.server.command", "serve a model directory over gRPC with Prometheus metrics", "cpu"),
    "predict": ("service.tools.predict", "ask a running server for suggestions for some typed text", ""),
    "type": ("service.keyboard.terminal", "a terminal keyboard: type with a live suggestion strip (Tab, Alt+1/2/3 accept)", "clients"),
    "web": ("service.keyboard.web", "a typing page in the browser, forwarding to the gRPC server", ""),
    "user-key": ("service.tools.userkey", "print a user key signed with this machine's server user secret "
                 "(for --user of type and web, and for trying the API)", ""),
    "user-export": ("service.tools.userexport", "print everything the server keeps for a user, as JSON (the right of access)", ""),
    "user-import": ("service.tools.userimport", "add a personal word list (one word a line, maybe a count) to a user's model", ""),
    "health": ("service.tools.health", "ask a running server's gRPC health service; exit 0 when SERVING", ""),
    "bench": ("service.tools.bench", "benchmark the server: Predict vs an empty RPC, context length, streams", "cpu"),
    "store-check": ("service.tools.storecheck", "try to break the user store's promises: real servers, a random schedule "
                    "of Learn/Forget/Predict, restarts and kill -9, checked against what must hold", "cpu"),
    "soak": ("service.tools.soak", "hold the server above capacity for minutes: statuses, latency and memory over time", "cpu"),
}


def needs(extra: str) -> str:
    return f"needs the '{extra}' extra: pip install -e '.[{extra}]'" if extra else "needs no extra"


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (with where to look), not a usage page."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    """Only the chosen subcommand's module is imported (for its flags)."""
    parser = Parser(prog="nextword", description="Next-word suggestions like a phone keyboard's strip.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text, extra) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=f"{help_text} ({needs(extra)})",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        p.set_defaults(module=module, extra=extra)
        if name == chosen:
            try:
                importlib.import_module(module).add_arguments(p)
            except ImportError as e:
                p.set_defaults(import_error=e)
                p.epilog = f"Its flags are not shown: {missing(name, e)}"
    return parser


def missing(command: str, error: ImportError) -> str:
    extra = COMMANDS[command][2] or "cpu"
    return f"nextword {command} is missing the module {error.name!r}; it {needs(extra)}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # gRPC's C core repeats, in its own format, errors that we report as one line (set it to
    # ERROR or DEBUG to see them); read when grpc is first imported, so set it before that
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen)
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "import_error", None):  # its flags are unknown here: say what is missing, not "bad flag"
        print(missing(args.command, args.import_error), file=sys.stderr)
        return 2
    if unknown:
        parser.parse_args(argv)  # argparse's own one-line error, exit 2
    try:
        return importlib.import_module(args.module).main(args) or 0
    except UserError as e:
        print(f"nextword {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # e.g. torch, asked for only when the work starts
        print(missing(args.command, e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

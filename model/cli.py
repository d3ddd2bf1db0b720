"""The `nextword` command: one subcommand per step of the flow in DESIGN.md.

Each subcommand's module is imported only when it runs, so `nextword serve` never
imports torch and `nextword data` needs neither torch nor onnxruntime.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from model.errors import UserError

# name -> (module with add_arguments(parser) and main(args), one-line help)
COMMANDS = {
    "data": ("model.datacmd", "load the corpus, apply the split, print counts"),
    "train": ("model.train", "train the LSTM language model (needs the 'train' extra: torch)"),
    "evaluate": ("model.evaluate", "perplexity, accuracy and keystroke savings on the test split, next to a trigram baseline"),
    "export": ("model.export", "write a model directory (ONNX + vocab + manifest), verified against torch"),
    "serve": ("service.server", "serve a model directory over gRPC with Prometheus metrics"),
    "predict": ("service.tools.predict", "ask a running server for suggestions for some typed text"),
    "type": ("service.keyboard.terminal", "a terminal keyboard: type with a live suggestion strip (Tab, Alt+1/2/3 accept)"),
    "web": ("service.keyboard.web", "a typing page in the browser, forwarding to the gRPC server"),
    "health": ("service.tools.health", "ask a running server's gRPC health service; exit 0 when SERVING"),
    "bench": ("service.tools.bench", "benchmark the server: Predict vs an empty RPC, context length, streams"),
    "soak": ("service.tools.soak", "hold the server above capacity for minutes: statuses, latency and memory over time"),
}



def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    """Only the chosen subcommand's module is imported (for its flags)."""
    parser = argparse.ArgumentParser(prog="nextword", description="Next-word suggestions like a phone keyboard's strip.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        p.set_defaults(module=module)
        if name == chosen:
            try:
                importlib.import_module(module).add_arguments(p)
            except ImportError as e:
                p.set_defaults(import_error=e)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(chosen).parse_args(argv)
    if getattr(args, "import_error", None):
        print(f"nextword {args.command}: missing dependency: {args.import_error.name} "
              f"(install the matching extra, see README)", file=sys.stderr)
        return 2
    try:
        return importlib.import_module(args.module).main(args) or 0
    except UserError as e:
        print(f"nextword {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Every subcommand, given a user's mistake: one line that says what is wrong, a non-zero
exit, never a traceback; and --help that works and names the extra it needs."""
import socket
import subprocess
import sys

import pytest

from conftest import ROOT, SHIPPED_MODEL, TINY_CORPUS, nextword
from nextword.cli import COMMANDS


@pytest.fixture(scope="module")
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


NO_SERVER = "127.0.0.1:CLOSED"
MISTAKES = [
    # (argv, what the message must say); CLOSED, TAKEN, TINY, EMPTY, GARBAGE and SERVER are filled in below
    (["data", "--corpus", "/no/such/file.txt"], "corpus file not found"),
    (["data", "--corpus", "TINY", "--vocab-size", "2"], "--vocab-size must be greater than 4"),
    (["data", "--vocab-size", "lots"], "invalid int value"),
    (["train", "--corpus", "EMPTY", "--out", "OUT"], "no training messages"),
    (["train", "--corpus", "TINY", "--out", "OUT", "--epochs", "0"], "--epochs must be at least 1"),
    (["train", "--corpus", "TINY", "--out", "OUT", "--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["train", "--corpus", "TINY", "--out", "OUT", "--lr", "-1"], "--lr must be positive"),
    (["train", "--corpus", "TINY", "--out", "OUT", "--resume"], "no checkpoint to resume from"),
    (["train", "--corpus", "TINY", "--out", "GARBAGE"], "exists and is not a directory"),
    (["train", "--corpus", "TINY", "--out", "OUT", "--device", "cuda"], "no CUDA device is available"),
    (["train", "--corpus", "TINY", "--out", "OUT", "--device", "tpu"], "invalid choice"),
    (["evaluate", "--checkpoint", "/no/such.pt"], "checkpoint not found"),
    (["evaluate", "--model-dir", "/no/such/model"], "model directory not found"),
    (["evaluate", "--model-dir", "SHIPPED", "--limit", "-1"], "--limit must not be negative"),
    (["evaluate", "--model-dir", "SHIPPED", "--messages", "/no/such.txt"], "cannot read messages"),
    (["evaluate", "--int8", "--checkpoint", "/no/such.pt"], "--int8 goes with --model-dir"),
    (["export", "--checkpoint", "GARBAGE", "--out", "OUT"], "cannot read checkpoint"),
    (["export", "--checkpoint", "/no/such.pt", "--out", "SHIPPED"], "is the shipped model; pass --replace-shipped-model"),
    (["export", "--checkpoint", "/no/such.pt", "--out", "OUT", "--opset", "9"], "--opset must be at least 17"),
    (["export", "--checkpoint", "/no/such.pt", "--out", "OUT"], "checkpoint not found"),
    (["serve", "--grpc-port", "99999"], "grpc_port must be between 0 and 65535"),
    (["serve", "--metrics-port", "-7"], "metrics_port must be between -1 and 65535"),
    (["serve", "--grpc-port", "TAKEN", "--metrics-port", "-1", "--host", "127.0.0.1"], "cannot listen on 127.0.0.1"),
    (["serve", "--model-dir", "/no/such/model"], "model directory not found"),
    (["serve", "--max-batch", "0"], "max_batch must be at least 1"),
    (["serve", "--workers", "none"], "workers must be auto or a number of at least 1"),
    (["serve", "--workers", "2", "--grpc-port", "TAKEN", "--host", "127.0.0.1", "--metrics-port", "-1"], "cannot listen on 127.0.0.1"),
    (["serve", "--keyboard-layout", "dvorak"], "invalid choice: 'dvorak'"),
    (["serve", "--int8", "perhaps"], "expected true or false"),
    (["serve", "--provider", "abacus"], "invalid choice"),
    (["serve", "--user-ttl-days", "0"], "user_ttl_days must be more than 0"),
    (["serve", "--user-store", "mysql"], "invalid choice: 'mysql'"),
    (["serve", "--user-secret-file", "EMPTY", "--metrics-port", "-1", "--host", "127.0.0.1", "--grpc-port", "0",
      "--data-dir", "OUT"], "is too short: at least 16 characters"),
    (["user-key", "alice", "--user-secret-file", "OUT"], "no user secret at"),
    (["serve", "--data-dir", "GARBAGE", "--metrics-port", "-1", "--host", "127.0.0.1", "--grpc-port", "0"],
     "is a file: give --data-dir a directory"),
    (["serve", "--blocklist", "/no/such/list.txt", "--metrics-port", "-1", "--host", "127.0.0.1", "--grpc-port", "0"],
     "cannot read the blocklist /no/such/list.txt"),
    (["predict", "hi ", "--user", "me.", "--address", "SERVER"], "UNAUTHENTICATED: user key is not signed"),
    (["predict", "hi", "--address", "localhost"], "has no port: give host:port, e.g. localhost:50051"),
    (["predict", "hi", "--address", "http://localhost:50051"], "takes host:port, not a URL"),
    (["user-import", "/no/such/words.txt", "--user", "k.s", "--address", "SERVER"], "cannot read /no/such/words.txt"),
    (["predict", "hi ", "--user", "bob", "--address", "SERVER"], "UNAUTHENTICATED: user key is not signed"),
    (["predict", "hi ", "-k", "-1", "--address", "NO_SERVER"], "-k must be at least 1"),
    (["predict", "hi ", "--address", "NO_SERVER"], "no server at 127.0.0.1:"),
    (["predict", "hi ", "--timeout", "0", "--address", "NO_SERVER"], "--timeout must be positive"),
    (["predict", "hi ", "-k", "99", "--address", "SERVER"], "INVALID_ARGUMENT: max_suggestions is 99"),
    (["predict", "Привет как де", "--address", "SERVER"], "no suggestions"),
    (["predict"], "the following arguments are required: text"),
    (["type", "--address", "NO_SERVER"], "nextword type is a keyboard for a terminal"),
    (["web", "--address", "NO_SERVER"], "no server at 127.0.0.1:"),
    (["web", "--address", "SERVER", "--port", "TAKEN"], "cannot serve the page on 127.0.0.1:"),
    (["web", "--address", "SERVER", "--port", "70000"], "--port must be between 0 and 65535"),
    (["health", "--address", "NO_SERVER"], "no server at 127.0.0.1:"),
    (["bench", "--seconds", "0"], "--seconds must be positive"),
    (["bench", "--concurrency", "1,x"], "--concurrency must be a comma-separated list"),
    (["bench", "--providers", "cpu,gpu"], "--providers takes a comma-separated list of auto, cpu, cuda, tensorrt"),
    (["bench", "--model-batches", "1,x"], "--model-batches must be a comma-separated list"),
    (["bench", "--model-dir", "/no/such/model"], "nextword bench: error: model directory not found: /no/such/model"),
    (["bench", "--model-dir", "/no/such/model", "--seconds", "0.1", "--model-batches", "0"],
     "the server did not start: nextword serve: error: model directory not found"),
    (["soak", "--minutes", "0"], "--minutes must be positive"),
    (["launch"], "invalid choice: 'launch'"),
]


@pytest.mark.parametrize("argv, message", MISTAKES, ids=[" ".join(a[:3]) for a, _ in MISTAKES])
def test_a_mistake_is_one_line_and_a_non_zero_exit(argv, message, tmp_path, closed_port, busy_port, request):
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "garbage.pt").write_bytes(b"this is not a checkpoint")
    fill = {"EMPTY": tmp_path / "empty.txt", "OUT": tmp_path / "out", "GARBAGE": tmp_path / "garbage.pt",
            "TINY": TINY_CORPUS, "SHIPPED": SHIPPED_MODEL, "TAKEN": busy_port,
            "NO_SERVER": f"127.0.0.1:{closed_port}"}
    if "SERVER" in argv:
        fill["SERVER"] = request.getfixturevalue("server").address
    proc = nextword(*[fill.get(a, a) for a in argv], check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()  # a refused command leaves nothing behind


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_works_and_names_the_extra(command):
    proc = nextword(command, "--help")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    extra = COMMANDS[command][2]
    assert (f"the '{extra}' extra" if extra else "needs no extra") in " ".join(proc.stdout.split())


@pytest.mark.parametrize("argv, message", [
    (["train", "--help"], "usage: nextword train"),
    (["train", "--out", "OUT"], "missing the module 'torch'; it needs the 'train' extra"),
    (["export", "--checkpoint", "x.pt", "--out", "OUT"], "missing the module 'torch'; it needs the 'train' extra"),
    (["evaluate", "--checkpoint", "x.pt"], "evaluating a checkpoint needs torch"),
])
def test_without_torch_the_training_commands_say_what_to_install(argv, message, tmp_path):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    code = f"import sys; sys.modules['torch'] = None; from nextword.cli import main; sys.exit(main({argv!r}))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    said = proc.stdout + proc.stderr
    assert message in said and "Traceback" not in said
    assert (proc.returncode == 0) == (argv[-1] == "--help")
    assert not (tmp_path / "out").exists()

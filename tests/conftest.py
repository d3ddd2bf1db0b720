"""Shared fixtures: a tiny model trained and exported by the real CLI on real chat lines."""
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY_CORPUS = ROOT / "tests" / "data" / "tiny_corpus.txt"
SHIPPED_MODEL = ROOT / "model" / "pretrained"
TINY_MODEL_FLAGS = ["--vocab-size", "300", "--embedding", "16", "--hidden", "32", "--batch-size", "16", "--threads", "1"]


def nextword(*args, check=True, **kw) -> subprocess.CompletedProcess:
    """Run the `nextword` command as a user would (python -m nextword is the same entry point)."""
    proc = subprocess.run([sys.executable, "-m", "nextword", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"nextword {args[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    nextword("train", "--corpus", TINY_CORPUS, "--out", run / "ckpt", "--epochs", "2", "--seed", "3", *TINY_MODEL_FLAGS)
    return run


@pytest.fixture(scope="session")
def tiny_model(tiny_run) -> Path:
    nextword("evaluate", "--corpus", TINY_CORPUS, "--checkpoint", tiny_run / "ckpt" / "best.pt",
             "--json", tiny_run / "eval.json")
    nextword("export", "--corpus", TINY_CORPUS, "--checkpoint", tiny_run / "ckpt" / "best.pt",
             "--evaluation", tiny_run / "eval.json", "--out", tiny_run / "model", "--int8")
    return tiny_run / "model"


@pytest.fixture
def busy_port():
    """A port something already listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    """One real server on the shipped model, shared by every test that needs no special flags."""
    from helpers import (
        ServerProcess,  # tests/helpers.py imports this module: import it late
    )

    s = ServerProcess("--model-dir", SHIPPED_MODEL, "--max-text-chars", "2000")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def client(server):
    from service.client import NextWordClient

    with NextWordClient(server.address, timeout=5) as c:
        yield c


@pytest.fixture(scope="module")
def redis_server():
    """A real redis-server for the module's tests (nothing saved to disk)."""
    from helpers import Redis  # tests/helpers.py imports this module: import it late

    r = Redis()
    yield r
    r.stop()


@pytest.fixture(params=["sqlite", "redis"])
def store(request):
    """(user store, Redis URL) for servers a test makes: each test runs on SQLite and on Redis."""
    return request.param, request.getfixturevalue("redis_server").url if request.param == "redis" else ""

"""The Node.js example (@grpc/grpc-js) against a real server: what another language sees."""
import json
import subprocess

import pytest

from conftest import ROOT
from service.client import NextWordClient

pytestmark = pytest.mark.slow  # see pyproject.toml


def run_node(*args):
    return subprocess.run(["node", "examples/node/predict.js", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("text", ["how are yo", "what are you doing ", "I don"])
def test_node_client_gets_what_the_python_client_gets(server, text):
    proc = run_node(server.address, text)
    assert proc.returncode == 0, proc.stderr
    unary, stream = (json.loads(line) for line in proc.stdout.splitlines())
    with NextWordClient(server.address) as client:
        expected = [s.text for s in client.predict(text)]
    assert unary["suggestions"] == expected
    assert stream["keystrokes"] == stream["sequence"] == len(text) and stream["suggestions"] == expected


def test_node_client_reports_an_unreachable_server():
    proc = run_node("127.0.0.1:1", "hi")
    assert proc.returncode == 1 and "UNAVAILABLE" in proc.stderr

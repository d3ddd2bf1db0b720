"""Hot model swap on SIGHUP: a good model replaces the old one, a broken one is rejected."""
import json
import shutil
import signal

import pytest

from conftest import SHIPPED_MODEL
from helpers import EXPECTED_PROVIDER, ServerProcess, wait_until
from service.client import NextWordClient

pytestmark = pytest.mark.slow  # see pyproject.toml


@pytest.fixture
def models(tmp_path):
    """current -> v1 (the shipped model); v2: the same weights announced as version 9.9.9; broken."""
    v1, v2, broken = tmp_path / "v1", tmp_path / "v2", tmp_path / "broken"
    for d in (v1, v2, broken):
        shutil.copytree(SHIPPED_MODEL, d)
    manifest = json.loads((v2 / "manifest.json").read_text())
    (v2 / "manifest.json").write_text(json.dumps({**manifest, "version": "9.9.9"}))
    (broken / "model.onnx").write_bytes(b"not an onnx graph")
    (tmp_path / "current").symlink_to(v1)
    return tmp_path


def repoint(models, target):
    (models / "next").symlink_to(models / target)
    (models / "next").replace(models / "current")  # atomic, as a deploy would do it


def test_sighup_swaps_in_a_new_model_and_open_streams_keep_theirs(models):
    server = ServerProcess("--model-dir", models / "current")
    old_version = json.loads((SHIPPED_MODEL / "manifest.json").read_text())["version"]
    try:
        with NextWordClient(server.address) as client, client.session() as typing:
            assert typing.text("how are yo")[0].text == "you"
            repoint(models, "v2")
            server.proc.send_signal(signal.SIGHUP)
            assert wait_until(lambda: client.model_info().version == "9.9.9")
            assert server.sample("nextword_model_reloads_total", result="ok") == 1
            assert server.sample("nextword_model_info", name=client.model_info().name, provider=EXPECTED_PROVIDER, version="9.9.9") == 1
            typing.text("ok ")  # the stream started before the swap keeps the model it started with
            assert typing.model[1] == old_version
        with NextWordClient(server.address) as client, client.session() as typing:
            typing.text("ok ")
            assert typing.model[1] == "9.9.9"  # a new stream gets the new model
    finally:
        server.stop()


def test_a_broken_model_is_rejected_and_the_old_one_keeps_serving(models):
    server = ServerProcess("--model-dir", models / "current")
    try:
        with NextWordClient(server.address) as client:
            version = client.model_info().version
            repoint(models, "broken")
            server.proc.send_signal(signal.SIGHUP)
            assert wait_until(lambda: server.sample("nextword_model_reloads_total", result="failed") == 1)
            assert client.model_info().version == version
            assert client.predict("how are yo")[0].text == "you"
    finally:
        log = server.stop()
    assert "model reload from" in log and "failed, still serving" in log

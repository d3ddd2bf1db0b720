"""`nextword serve --workers 2`: two processes on one port, one /metrics, drain and reload in all."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2

from conftest import ROOT, SHIPPED_MODEL, nextword
from helpers import ServerProcess, free_port, wait_until
from service.client import NextWordClient
from service.server.settings import SettingsError, cores, most_workers, worker_count
from service.server.workers import Readiness

pytestmark = pytest.mark.slow  # see pyproject.toml


def worker_pids(supervisor_pid: int) -> list[int]:
    """The supervisor's child processes that are workers (from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                spawned = b"spawn_main" in f.read()  # not the resource tracker
        except (OSError, ValueError, IndexError):
            continue
        if int(fields[1]) == supervisor_pid and spawned:
            pids.append(int(entry))
    return pids


def calls_over_new_connections(address: str, n: int, call) -> list:
    """Each call on a connection of its own: the kernel spreads connections over the workers."""
    out = []
    for _ in range(n):
        channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        with NextWordClient(address) as client:
            client.channel.close()
            client.channel, client.stub = channel, type(client.stub)(channel)
            out.append(call(client))
    return out


def test_worker_count():
    assert worker_count("3") == 3 and worker_count("auto") == min(cores(), most_workers())
    for bad in ("0", "-1", "many", str(most_workers() + 1)):
        with pytest.raises(SettingsError):
            worker_count(bad)
    assert most_workers() <= 4 * cores()


def test_too_many_workers_are_refused_in_one_line():
    proc = nextword("serve", "--workers", "1000", "--grpc-port", "0", "--metrics-port", "-1", check=False)
    assert proc.returncode == 2 and "workers 1000 is more than this machine takes" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def listening_on(port: int) -> bool:
    """Does anything on this machine listen on a TCP port (from /proc/net)?"""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def start_supervisor(tmp_path, workers: int, **popen):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nextword", "serve", "--workers", str(workers), "--host", "127.0.0.1",
                             "--grpc-port", str(port), "--metrics-port", "-1", "--data-dir", str(tmp_path),
                             "--model-dir", str(SHIPPED_MODEL)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)
    return proc, port


@pytest.mark.parametrize("after", [0.0, 1.0, "serving"])
def test_a_supervisor_killed_while_workers_start_leaves_nothing_running(tmp_path, after):
    workers = min(4, most_workers())
    proc, port = start_supervisor(tmp_path, workers)
    assert wait_until(lambda: worker_pids(proc.pid), timeout=20, every=0.01)
    if after == "serving":
        assert "serving on" in proc.stdout.readline()
    else:
        time.sleep(after)  # workers just spawned (importing), or loading the model
    pids = worker_pids(proc.pid)
    proc.kill()
    proc.wait()
    assert pids
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") and not _zombie(pid) for pid in pids), timeout=20)
    assert not listening_on(port)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_stop_signal_during_start_up_stops_the_spawning_and_every_worker(tmp_path):
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc, port = start_supervisor(tmp_path, min(4, most_workers()))
        assert wait_until(lambda: worker_pids(proc.pid), timeout=20, every=0.01)
        proc.send_signal(sig)
        assert proc.wait(30) == 0
        out, err = proc.communicate()
        assert "Traceback" not in err, err
        assert not listening_on(port) and not worker_pids(proc.pid)


@pytest.mark.parametrize("after", [0.0, 0.3, 1.0, "serving"])
def test_ctrl_c_in_the_terminal_reaches_every_process_and_stops_them_cleanly(tmp_path, after):
    proc, port = start_supervisor(tmp_path, min(4, most_workers()), start_new_session=True)
    assert wait_until(lambda: worker_pids(proc.pid), timeout=20, every=0.01)
    if after == "serving":
        assert "serving on" in proc.stdout.readline()
    else:
        time.sleep(after)  # workers just spawned, importing, loading the model
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole process group
    assert proc.wait(30) == 0
    out, err = proc.communicate()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert not listening_on(port) and not worker_pids(proc.pid)


def test_health_is_serving_only_when_every_worker_is_ready():
    flags = [1, 0]
    first, second = Readiness(flags, 0), Readiness(flags, 1)
    assert not first.everyone()
    second.set(True)
    assert first.everyone() and second.everyone()
    second.set(False)
    assert not first.everyone()


def test_two_workers_answer_on_one_port_with_one_metrics_endpoint():
    server = ServerProcess("--model-dir", SHIPPED_MODEL, "--workers", "2")
    try:
        assert len(worker_pids(server.proc.pid)) == 2
        # each worker turns SERVING when it sees every flag up (it looks every 0.1 s)
        assert wait_until(lambda: server.health() == health_pb2.HealthCheckResponse.SERVING, timeout=5)
        answers = calls_over_new_connections(server.address, 12, lambda c: [s.text for s in c.predict("how are yo")])
        assert all(a == answers[0] for a in answers) and answers[0][0] == "you"
        # every call counted once on the one endpoint, whichever worker answered it
        assert wait_until(lambda: server.sample("nextword_requests_total", method="Predict", code="OK") == 12)
        assert server.sample("nextword_model_info", name="nextword-chitchat-lstm", provider="CPUExecutionProvider",
                             version=json.loads((SHIPPED_MODEL / "manifest.json").read_text())["version"]) == 1
        assert server.terminate() == 0  # SIGTERM drains every worker, then the supervisor exits 0
    finally:
        server.stop()
    assert "Traceback" not in server.log


def test_sighup_reloads_every_worker(tmp_path):
    v2 = tmp_path / "v2"
    shutil.copytree(SHIPPED_MODEL, tmp_path / "v1")
    shutil.copytree(SHIPPED_MODEL, v2)
    manifest = json.loads((v2 / "manifest.json").read_text())
    (v2 / "manifest.json").write_text(json.dumps({**manifest, "version": "9.9.9"}))
    (tmp_path / "current").symlink_to(tmp_path / "v1")
    server = ServerProcess("--model-dir", tmp_path / "current", "--workers", "2")
    try:
        (tmp_path / "next").symlink_to(v2)
        (tmp_path / "next").replace(tmp_path / "current")
        server.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: server.sample("nextword_model_reloads_total", result="ok") == 2, timeout=30)
        versions = calls_over_new_connections(server.address, 10, lambda c: c.model_info().version)
        assert set(versions) == {"9.9.9"}
    finally:
        server.stop()


def test_a_worker_that_dies_ends_the_group():
    server = ServerProcess("--model-dir", SHIPPED_MODEL, "--workers", "2")
    try:
        os.kill(worker_pids(server.proc.pid)[0], signal.SIGKILL)
        assert server.proc.wait(30) == 1  # the others drained; the orchestrator restarts the whole
        assert worker_pids(server.proc.pid) == []
    finally:
        server.stop()
    assert "exited with -9; stopping the other workers" in server.log


def test_a_start_up_mistake_in_the_workers_is_said_once_in_one_line(tmp_path):
    proc = nextword("serve", "--workers", "2", "--model-dir", tmp_path, "--host", "127.0.0.1", "--grpc-port", "0",
                    "--metrics-port", "-1", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"nextword serve: error: model directory {tmp_path} has no model.onnx (nor model.int8.onnx)"

"""A real server process on ephemeral ports, and ways to talk to it."""
from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc
import onnxruntime
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import ROOT, SHIPPED_MODEL
from model.engine.contract import graph_path
from model.engine.runtime import Runtime, choose_providers
from model.engine.strip import StripBuilder
from service.client import NextWordClient, sign_user
from service.server.users.redis import RedisStore
from service.server.security import UserKeys
from service.server.users.sqlite import SqliteStore
from service.tools.storecheck import SYLLABLES

# what `--provider auto` picks here for the shipped model: its int8 graph runs on the CPU
# even where onnxruntime-gpu finds a GPU
EXPECTED_PROVIDER = choose_providers("auto", graph_path(SHIPPED_MODEL, int8=False))[0]
CUDA_USABLE = "CUDAExecutionProvider" in onnxruntime.get_available_providers()

SECRET = b"the user secret of a test deployment"  # for stores opened directly (they seal words with it)
READY = re.compile(r"serving on \S+:(\d+) \(gRPC\), (?:metrics on \S+:(\d+)|metrics off)")


class ServerProcess:
    def __init__(self, *flags, env=None):
        flags = tuple(map(str, flags))
        if "--data-dir" not in flags:  # users' models: never in the tester's home
            self.data_dir = tempfile.mkdtemp(prefix="nextword-data-")
            flags += ("--data-dir", self.data_dir)
        else:
            self.data_dir = flags[flags.index("--data-dir") + 1]
        if "--user-secret-file" not in flags:  # nor the user secret, kept apart from the data as a deployment does
            self.secret_file = str(Path(self.data_dir).parent / (Path(self.data_dir).name + ".user-secret"))
            flags += ("--user-secret-file", self.secret_file)
        else:
            self.secret_file = flags[flags.index("--user-secret-file") + 1]
        if not self.secret_file:  # the server's default (settings.user_secret_path), for the environment given
            config = Path((env or {}).get("XDG_CONFIG_HOME") or Path.home() / ".config") / "nextword" / "user-secret"
            old = Path(self.data_dir) / "user-secret"
            self.secret_file = str(old if old.exists() and not config.exists() else config)
        cmd = [sys.executable, "-m", "nextword", "serve", "--host", "127.0.0.1", "--metrics-host", "127.0.0.1",
               "--grpc-port", "0", "--metrics-port", "0", *flags]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        line = self.proc.stdout.readline()
        match = READY.search(line)
        if not match:
            self.proc.kill()
            raise AssertionError(f"server did not start: {line}{self.proc.stderr.read()}")
        self.port, self.metrics_port = int(match.group(1)), match.group(2)
        self.log = ""
        self.address = f"127.0.0.1:{self.port}"

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address)

    def health(self, service: str = "") -> int:
        with self.channel() as ch:
            return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()

    def sample(self, name: str, /, **labels) -> float:
        """The value of one metric sample in the current scrape (0 if absent)."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            sample_name, _, label_text = key.partition("{")
            found = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
            if sample_name == name and found == want:
                return float(value)
        return 0.0

    def terminate(self, timeout: float = 20) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> str:
        """Stop the server (if still running); returns what it logged."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.proc.stderr.closed:
            self.log = self.proc.stderr.read()
            self.proc.stdout.close()
            self.proc.stderr.close()
        return self.log


def wait_until(predicate, timeout: float = 10.0, every: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A real redis-server on its own port, nothing saved to disk; it can be stopped and
    started again on the same port (the store down, then back)."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        assert self.binary, "redis-server not found: apt-get install redis-server (scripts/test installs it)"
        self.port = free_port()
        self.client = redis.Redis(port=self.port)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(self._answers), "redis-server did not start"

    def _answers(self) -> bool:
        try:
            return self.client.ping()
        except Exception:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class PersonalServer:
    """A server with a user store, keys signed with its secret, and a look into the store.
    A word the model does not know is suggested once sent (--user-min-count 1) unless the
    flags say otherwise: the threshold has tests of its own."""

    def __init__(self, store: str, redis_url: str = "", *flags, data_dir: str | None = None, env=None):
        extra = ("--redis-url", redis_url) if store == "redis" else ()
        more = ("--data-dir", data_dir) if data_dir else ()
        more += () if "--user-min-count" in flags else ("--user-min-count", "1")
        self.store = store
        self.server = ServerProcess("--model-dir", SHIPPED_MODEL, "--user-store", store, *extra, *more, *flags, env=env)
        self.secret = Path(self.server.secret_file).read_bytes().strip()
        self.redis_url = redis_url

    def key(self, name: str) -> str:
        return sign_user(self.secret, name)

    def client(self, **kw) -> NextWordClient:
        return NextWordClient(self.server.address, timeout=5, **kw)

    def store_id(self, name: str) -> str:
        return UserKeys("signed", self.secret).store_id(self.key(name))

    def open_store(self):
        """The server's store, opened here as another process would (to look into it, or to fill it)."""
        return (SqliteStore(Path(self.server.data_dir) / "users.sqlite3", 3600, self.secret) if self.store == "sqlite"
                else RedisStore(self.redis_url, 3600))

    def entries(self, name: str) -> dict:
        """What the store holds for a user, read from the store itself."""
        store = self.open_store()
        try:
            return store.load(self.store_id(name)).entries
        finally:
            store.close()

    def stored(self, name: str) -> int:
        return len(self.entries(name))

    def stop(self) -> str:
        return self.server.stop()


def made_up_words(count: int, stem: str) -> list[str]:
    """`count` made-up words a server learns like names: pronounceable (the stem, then
    syllables), unknown to the shipped model's vocabulary and dictionary, and not judged
    random (model/engine/learnable.py); for tests that need thousands of new words."""
    found, n = [], 0
    strips = _shipped_strips()
    while len(found) < count:
        word, m = stem, n
        while True:
            m, r = divmod(m, len(SYLLABLES))
            word += SYLLABLES[r]
            if not m:
                break
        n += 1
        low = word.lower()
        if not strips.looks_random(word) and not strips.dictionary.knows(low) and low not in strips.corrector.known:
            found.append(word)
    return found


_STRIPS = []


def _shipped_strips():
    if not _STRIPS:
        runtime = Runtime(SHIPPED_MODEL, "cpu")
        _STRIPS.append(StripBuilder.open(runtime.vocab, runtime.dictionary_file, unigram_file=runtime.unigram_file))
    return _STRIPS[0]


def invented(n: int, stem: str = "zq") -> str:
    """A made-up word, letters only (what holds a digit is never learned), different for each n."""
    letters = ""
    while True:
        n, r = divmod(n, 26)
        letters += "abcdefghijklmnopqrstuvwxyz"[r]
        if not n:
            return f"{stem}{letters}x"


def at(counts: dict[str, int], when: float) -> dict[str, tuple[int, float]]:
    """Counts to write to a store, all learned at `when`."""
    return {entry: (count, when) for entry, count in counts.items()}


class SmallDisk:
    """A data directory whose disk can be filled and emptied under a running server: a tmpfs of
    its own where `mount` works (as root), else the server's file-size limit (RLIMIT_FSIZE,
    set on the running process with prlimit: its files cannot grow, as on a full disk)."""

    def __init__(self, path: Path, size_mb: int = 8):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                                      capture_output=True).returncode == 0
        self.filler = path / "filler"
        self.pid = None

    def fill(self, pid: int) -> None:
        self.pid = pid
        if self.mounted:
            with open(self.filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:  # ENOSPC: full
                    pass
        else:
            size = max(p.stat().st_size for p in self.path.iterdir())  # no file may grow past the largest
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, size))

    def empty(self) -> None:
        if self.mounted:
            self.filler.unlink(missing_ok=True)
        elif self.pid:
            resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)

"""`nextword serve --workers N`: N server processes on one port, for every core of a machine.

gRPC Python answers with one core per process (the GIL); its maintainers' way to use
more is several processes listening on the same port with SO_REUSEPORT, the kernel
spreading connections over them. Each worker here has its own runtime, cache and
batcher; a stream lives on one connection, so it stays on its worker and a keystroke
costs what it costs with one process.

This process, the supervisor, serves no RPC. It picks the port, starts the workers
(spawned: fresh interpreters), and serves the one /metrics for all of them from
prometheus-client's multiprocess files. A worker's health is SERVING only while every
worker is ready (flags shared by all). SIGTERM (or SIGINT) is passed to every worker,
which drains as one server does; SIGHUP makes every worker reload the model. A worker
that dies unasked ends the group (exit 1), so that the orchestrator restarts it whole.
"""
from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import logging
import multiprocessing as mp
import os
import shutil
import signal
import socket
import tempfile
import time

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from model.engine.errors import UserError
from service.server.server import serve
from service.server.settings import Settings, SettingsError, worker_count

log = logging.getLogger("nextword.workers")


class Readiness:
    """One flag per worker in shared memory: is it ready to serve?"""

    def __init__(self, flags, index: int):
        self.flags, self.index = flags, index

    def set(self, ready: bool) -> None:
        self.flags[self.index] = 1 if ready else 0

    def everyone(self) -> bool:
        return all(self.flags)


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) with SO_REUSEPORT: it holds the port, the workers'
    listening sockets share it. Port 0 becomes a free port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise SettingsError(f"cannot listen on {host}:{port} ({e.strerror})") from None
    return sock


def _worker(settings: Settings, flags, index: int, mistakes, supervisor: int) -> None:
    """A worker's life (in its own process): one server, told about the others' readiness.
    A start-up mistake (a bad model, a busy port) goes to the supervisor, which says it once."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the server installs its own handler
    _drain_when_orphaned()
    if os.getppid() != supervisor:  # it died while this process was starting, before the line above
        raise SystemExit(1)
    try:
        status = asyncio.run(serve(settings, Readiness(flags, index)))
    except UserError as e:
        mistakes.put(str(e))
        status = 2
    raise SystemExit(status)


def _drain_when_orphaned() -> None:
    """Linux: the kernel sends this worker SIGTERM (a drain) if its supervisor dies, even by
    SIGKILL, so no worker outlives its group holding the port."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Supervisor:
    def __init__(self, s: Settings, n: int):
        self.settings, self.n = s, n
        self.stopping = False
        self.metrics_dir = tempfile.mkdtemp(prefix="nextword-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir  # read by the workers' prometheus-client
        self.ctx = mp.get_context("spawn")
        self.flags = self.ctx.Array("b", n, lock=False)
        self.mistakes = self.ctx.SimpleQueue()  # workers' start-up errors, one line each
        self.procs: list = []

    def start(self) -> int:
        """Start the workers and wait until all are ready; returns the gRPC port. A stop
        signal meanwhile (stop_all) ends the spawning, and start returns at once."""
        s = self.settings
        reserved = reserve_port(s.host, s.grpc_port)
        port = reserved.getsockname()[1]
        worker_settings = dataclasses.replace(s, grpc_port=port, metrics_port=-1, workers="1")
        try:
            for i in range(self.n):
                if self.stopping:
                    break
                self._spawn(worker_settings, i)
            while not all(self.flags) and not self.stopping:
                if any(p.exitcode is not None for p in self.procs):
                    self.stop_all()
                    if not self.mistakes.empty():
                        raise UserError(self.mistakes.get())
                    raise SystemExit(next(p.exitcode for p in self.procs if p.exitcode is not None) or 2)
                time.sleep(0.05)
            if self.stopping:
                self.signal_all(signal.SIGTERM)  # a worker born while the stop came was not told yet
        finally:
            reserved.close()
        return port

    def _spawn(self, worker_settings: Settings, i: int) -> None:
        """One worker, born with SIGINT blocked (the mask of the thread that spawns it, kept
        across exec), for good: a Ctrl-C in the terminal reaches the whole process group, and a
        worker still importing would die of it with a traceback; the supervisor stops the
        workers itself (SIGTERM). Only this thread blocks it meanwhile, so the supervisor's
        own SIGINT still reaches its handler (an ignored SIGINT here was lost, taken by
        another thread)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            proc = self.ctx.Process(target=_worker, args=(worker_settings, self.flags, i, self.mistakes, os.getpid()),
                                    name=f"nextword-worker-{i}")
            proc.start()
            self.procs.append(proc)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def serve_metrics(self):
        """The one /metrics: every worker's samples, added up as each metric says."""
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.metrics_dir)
        try:
            server, _ = start_http_server(self.settings.metrics_port, addr=self.settings.metrics_host, registry=registry)
        except OSError as e:
            raise SettingsError(f"cannot serve metrics on {self.settings.metrics_host}:{self.settings.metrics_port}: "
                                f"{e.strerror}") from None
        return server

    def signal_all(self, sig: int) -> None:
        for p in self.procs:
            if p.exitcode is None:
                os.kill(p.pid, sig)

    def stop_all(self) -> None:
        self.stopping = True
        self.signal_all(signal.SIGTERM)

    def wait(self) -> int:
        """Until every worker has exited: 0 after a drain, 1 when a worker died unasked."""
        status, alive = 0, set(self.procs)
        while alive:
            for p in list(alive):
                p.join(0.1)
                if p.exitcode is None:
                    continue
                alive.discard(p)
                mark_process_dead(p.pid, self.metrics_dir)
                if not self.stopping:
                    log.error("worker %s exited with %s; stopping the other workers", p.name, p.exitcode)
                    status = 1
                    self.stop_all()
        return status

    def close(self) -> None:
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


def run(s: Settings) -> int:
    """Serve with `s.workers` processes; returns the exit status."""
    n = worker_count(s.workers)
    supervisor = Supervisor(s, n)
    metrics_http = None
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: supervisor.stop_all())
        signal.signal(signal.SIGHUP, lambda *_: supervisor.signal_all(signal.SIGHUP))
        metrics_http = supervisor.serve_metrics() if s.metrics_port >= 0 else None
        port = supervisor.start()
        if not supervisor.stopping:
            metrics = f"metrics on {s.metrics_host}:{metrics_http.server_port}" if metrics_http else "metrics off"
            print(f"nextword: serving on {s.host}:{port} (gRPC), {metrics}; {n} workers", flush=True)
        return supervisor.wait()
    finally:
        if metrics_http:
            metrics_http.shutdown()
        supervisor.close()

"""`nextword serve`: wire runtime, batcher, predictor, servicer, health and metrics together.

Lifecycle: health is NOT_SERVING until the model is loaded and warmed up, then SERVING.
On SIGTERM (or SIGINT) health goes NOT_SERVING, new calls are refused, calls in flight
get `grace_seconds` to finish, and the process exits 0.

Hot swap: on SIGHUP the model directory is loaded again (point a symlink at a new export,
then send SIGHUP), beside the model being served: warmed up and given a smoke prediction.
Only if all that works does it replace the old one, atomically for new calls; calls and
streams already running finish on the model they started with, which is then released. A
model that fails is rejected: the old one keeps serving, and the failure is logged and
counted in nextword_model_reloads_total{result="failed"}.
"""
from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from model.engine.runtime import ModelError, Runtime
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.server.interceptor import DecodeErrorInterceptor, MetricsInterceptor
from service.server.metrics import Metrics
from service.server.predictor import Predictor
from service.server.protocol import SERVICE_NAME, NextWordServicer
from service.server.security import TokenInterceptor, UserKeys, load_user_secret, server_credentials
from service.server.dataplane import DataPlane
from service.server.settings import Settings, SettingsError, config_path, data_path, user_secret_path
from service.server.users import open_store
from service.server.users.layer import Users

log = logging.getLogger("nextword.server")

REFUSAL_WINDOW = 1.0  # seconds a stopping server refuses new calls (UNAVAILABLE) before it ends its streams


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(s: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if s.log_format == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    try:
        root.setLevel(s.log_level.upper())
    except ValueError:
        raise SettingsError(f"log_level must be DEBUG, INFO, WARNING or ERROR, got {s.log_level!r}") from None


class NextWordServer:
    """A running server; `start()` then `wait()` (or `stop()`). As one of several workers
    (service/server/workers.py) it shares its port and reports SERVING only while all are ready."""

    def __init__(self, s: Settings, readiness=None):
        self.settings, self.readiness = s, readiness
        self.runtime = Runtime(s.model_dir, s.provider, s.threads, s.int8)
        self.metrics = Metrics()
        self.metrics.set_model(self.runtime.name, self.runtime.version, self.runtime.provider)
        self.health = health.aio.HealthServicer()
        self.stopped = asyncio.Event()
        self.grpc_port = self.metrics_port = None

    async def start(self) -> None:
        s = self.settings
        self.predictor = Predictor(self.runtime, s, self.metrics)
        options = [("grpc.max_receive_message_length", s.max_message_bytes),
                   ("grpc.max_send_message_length", s.max_message_bytes),
                   ("grpc.so_reuseport", 1 if self.readiness else 0)]  # workers share the port; one server must not
        interceptors = [MetricsInterceptor(self.metrics), DecodeErrorInterceptor()]
        interceptors += [TokenInterceptor(s.auth_token)] if s.auth_token else []
        # gRPC's own admission limit sheds load before it queues up inside the server
        self.server = grpc.aio.server(interceptors=interceptors, options=options, maximum_concurrent_rpcs=s.max_concurrent_rpcs)
        self.users, keys = self._users()
        self.plane = DataPlane(self.predictor, self.metrics, s.max_streams, s.max_text_chars, self.users, keys,
                                 s.user_min_count)
        pb_grpc.add_NextWordServicer_to_server(NextWordServicer(self.plane, s.max_message_bytes), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if s.reflection:
            reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)
        credentials = server_credentials(s)
        try:
            address = f"{s.host}:{s.grpc_port}"
            self.grpc_port = (self.server.add_secure_port(address, credentials) if credentials
                              else self.server.add_insecure_port(address))
        except RuntimeError:
            self.grpc_port = 0
        if not self.grpc_port:
            raise SettingsError(f"cannot listen on {s.host}:{s.grpc_port} (port in use or address not available)")
        if s.metrics_port >= 0:
            try:
                self.metrics_http, self.metrics_port = self.metrics.serve(s.metrics_host, s.metrics_port)
            except OSError as e:
                raise SettingsError(f"cannot serve metrics on {s.metrics_host}:{s.metrics_port}: {e.strerror}") from None
        await self.server.start()
        if self.users:
            self.users.start()
        await asyncio.get_running_loop().run_in_executor(None, self.runtime.warm_up)  # health answers meanwhile
        await self.predictor.start()
        if self.readiness:
            self.readiness.set(True)
            self._following = asyncio.ensure_future(self._follow_the_group())
        else:
            await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("serving model %s %s (%s) on %s, gRPC port %s (%s%s), users: %s, %s",
                 self.runtime.name, self.runtime.version, self.runtime.graph, self.runtime.provider, self.grpc_port,
                 "mutual TLS" if s.tls_client_ca else "TLS" if s.tls_cert else "plaintext",
                 ", token required" if s.auth_token else "",
                 "off" if s.user_store == "off" else f"{s.user_store}, keys {s.user_keys}",
                 f"metrics port {self.metrics_port}" if self.metrics_port is not None
                 else "metrics through the supervisor" if self.readiness else "metrics off")

    def _users(self) -> tuple[Users | None, UserKeys | None]:
        """The users' models and the key check, as --user-store and --user-keys say."""
        s = self.settings
        if s.user_store == "off":
            return None, None
        path = user_secret_path(s)
        if path.parent == data_path(s):
            log.warning("the user secret %s lies in the data directory: a copy of the directory confirms whose data "
                        "each row is; move it to %s (or point --user-secret-file elsewhere)", path, config_path() / path.name)
        secret = load_user_secret(path, create=True)  # open keys too: it keys the store's ids and seals its words
        users = Users(open_store(s, secret), self.metrics, s.user_cache_users, s.user_max_entries)
        return users, UserKeys(s.user_keys, secret)

    async def _set_health(self, status) -> None:
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    async def _follow_the_group(self) -> None:
        """As a worker: SERVING while every worker is ready, NOT_SERVING otherwise."""
        serving = None
        while not self.plane.draining.is_set():
            everyone = self.readiness.everyone()
            if everyone != serving:
                serving = everyone
                await self._set_health(health_pb2.HealthCheckResponse.SERVING if everyone
                                       else health_pb2.HealthCheckResponse.NOT_SERVING)
            await asyncio.sleep(0.1)

    async def reload(self) -> bool:
        """Load the model directory again and swap it in if it works (see the module doc)."""
        s, loop, old = self.settings, asyncio.get_running_loop(), self.predictor
        try:
            runtime = await loop.run_in_executor(None, lambda: Runtime(s.model_dir, s.provider, s.threads, s.int8))
            await loop.run_in_executor(None, runtime.warm_up)
            new = Predictor(runtime, s, self.metrics)
            await new.start()
            smoke = (await new.predict("how are yo", 3)).candidates
            if not smoke or not all(any(ch.isalpha() for ch in w.text) for w in smoke):
                await new.close()
                raise ModelError("the smoke prediction gave no words")
        except Exception as e:  # any failure leaves the old model serving
            self.metrics.reloads.labels("failed").inc()
            log.error("model reload from %s failed, still serving %s %s: %s", s.model_dir,
                      old.runtime.name, old.runtime.version, e)
            return False
        self.predictor = new
        self.plane.swap(new)
        self.metrics.reloads.labels("ok").inc()
        self.metrics.set_model(runtime.name, runtime.version, runtime.provider)
        log.info("swapped model %s %s for %s %s", old.runtime.name, old.runtime.version, runtime.name, runtime.version)
        self._retiring = asyncio.ensure_future(old.retire())
        return True

    async def stop(self) -> None:
        """Drain: NOT_SERVING; refuse new calls and streams (UNAVAILABLE) for a moment while
        calls in flight finish and open streams go on; then end the streams at their next
        keystroke (UNAVAILABLE: their clients resume elsewhere), wait for what is left within
        the grace period, and stop the gRPC server."""
        grace = self.settings.grace_seconds
        log.info("draining: up to %.1f s for calls in flight", grace)
        if self.readiness:
            self.readiness.set(False)
        await self.health.enter_graceful_shutdown()
        self.plane.drain()
        started = time.perf_counter()
        # refuse cleanly for a moment even when idle: calls already on their way get a
        # retryable UNAVAILABLE from us, not a CANCELLED from a gRPC server going away
        await asyncio.sleep(min(REFUSAL_WINDOW, grace))
        self.plane.end_streams()
        try:
            await asyncio.wait_for(self.predictor.idle(), max(grace - (time.perf_counter() - started), 0))
        except asyncio.TimeoutError:
            log.warning("grace period over with %d calls or streams still open", self.predictor.leases)
        await self.server.stop(max(grace - (time.perf_counter() - started), 0.1))
        await self.predictor.close()
        if self.users:  # what was learned reaches the store before the process ends (tried until the grace is over)
            await self.users.close(max(grace - (time.perf_counter() - started), 1.0))
        for task in (getattr(self, "_retiring", None), getattr(self, "_following", None)):
            if task:
                await asyncio.gather(task, return_exceptions=True)
        if getattr(self, "metrics_http", None):
            self.metrics_http.shutdown()
        log.info("stopped after %.2f s", time.perf_counter() - started)
        self.stopped.set()


SWITCH_INTERVAL = 0.001  # seconds (scripts/user-store-rows, D10: a heavy learner on Redis against a Ping flood)


async def serve(s: Settings, readiness=None) -> int:
    """Serve until SIGTERM or SIGINT, then drain; as a worker, the supervisor says when ready."""
    configure_logging(s)
    # The event loop answers keystrokes while the user store's threads do Python work (a
    # Redis write of thousands of entries): let it take the GIL back within 1 ms, not 5 ms
    sys.setswitchinterval(SWITCH_INTERVAL)
    server = NextWordServer(s, readiness)
    await server.start()
    if readiness is None:
        metrics = f"metrics on {s.metrics_host}:{server.metrics_port}" if server.metrics_port is not None else "metrics off"
        print(f"nextword: serving on {s.host}:{server.grpc_port} (gRPC), {metrics}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(server.reload()))
    await stop.wait()
    await server.stop()
    return 0

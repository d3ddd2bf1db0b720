"""Prometheus metrics (docs/DESIGN.md): prefix nextword_, base units, no user text in labels.

One registry per server, so tests and several servers in one process never mix counts.
Label values come from small fixed sets only: the RPC method names and gRPC status codes.

With `--workers N` each worker process writes its samples to files in
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode, set up by
service/server/workers.py before any worker starts) and one /metrics endpoint adds them up;
the gauges say how (`livesum`: the sum over the workers alive; `max` for the model).
"""
from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

# 50 us .. 1 s: fine enough to tell 100 us from 500 us.
LATENCY_BUCKETS = (50e-6, 75e-6, 100e-6, 150e-6, 200e-6, 300e-6, 500e-6, 750e-6,
                   1e-3, 1.5e-3, 2e-3, 3e-3, 5e-3, 7.5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self.requests = Counter("nextword_requests", "RPCs finished, by method and gRPC status code",
                                ["method", "code"], registry=r)
        self.latency = Histogram("nextword_request_duration_seconds", "RPC latency (a stream message for PredictStream)",
                                 ["method"], buckets=LATENCY_BUCKETS, registry=r)
        self.inflight = Gauge("nextword_inflight_requests", "RPCs being handled now", registry=r, multiprocess_mode="livesum")
        self.inference = Histogram("nextword_inference_duration_seconds", "one onnxruntime run (a whole batch)",
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("nextword_batch_size", "model steps per onnxruntime run",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.queue_wait = Histogram("nextword_queue_wait_seconds", "time a model step waited for its batch to run",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.cache_hits = Counter("nextword_state_cache_hits", "contexts answered from cached state (exact or parent)", registry=r)
        self.cache_misses = Counter("nextword_state_cache_misses", "contexts computed from the start", registry=r)
        self.cache_entries = Gauge("nextword_state_cache_entries", "contexts held in the shared state cache", registry=r,
                                   multiprocess_mode="livesum")
        self.streams = Gauge("nextword_stream_sessions", "typing sessions (PredictStream calls) open now", registry=r,
                             multiprocess_mode="livesum")
        self.reloads = Counter("nextword_model_reloads", "model swaps asked for (SIGHUP), by result: ok or failed",
                               ["result"], registry=r)
        self.model = Gauge("nextword_model_info", "1 for the model being served and the execution provider in use",
                           ["name", "version", "provider"], registry=r, multiprocess_mode="max")
        self.store_up = Gauge("nextword_user_store_up", "1 while the user store answers reads and takes writes, "
                              "0 while it does not", registry=r, multiprocess_mode="min")
        self.store_writable = Gauge("nextword_user_store_writable", "1 while the user store takes writes; 0 after a "
                                    "write failed (a full disk included), until one succeeds: learning is STORE_DOWN "
                                    "meanwhile", registry=r, multiprocess_mode="min")
        self.store_errors = Counter("nextword_user_store_errors", "user store calls that failed, by operation "
                                    "(load, check, learn, write, probe, forget, wipe, expire)", ["operation"], registry=r)
        self.wipe_pending = Gauge("nextword_user_store_wipe_pending", "1 while deleted data still lies in SQLite's "
                                  "write-ahead log because another program reads the file; truncated as soon as it "
                                  "lets go", registry=r, multiprocess_mode="max")
        self.learned = Counter("nextword_user_messages_learned", "sent messages learned into a user's model", registry=r)
        self.learn_dropped = Counter("nextword_user_messages_dropped", "sent messages not learned, by reason: store_down, "
                                     "busy (too much waiting to be written), forgotten (the user was forgotten before "
                                     "it was written), shutdown (answered LEARNED, but the store was down until the drain ended)", ["reason"],
                                     registry=r)
        self.users_cached = Gauge("nextword_users_cached", "users' models held in memory", registry=r,
                                  multiprocess_mode="livesum")
        self._model_labels: tuple[str, str, str] | None = None

    def set_model(self, name: str, version: str, provider: str) -> None:
        """The model now serving: its labels at 1, the previous model's taken away."""
        if self._model_labels:
            self.model.labels(*self._model_labels).set(0)  # in multiprocess mode the file keeps this 0
            self.model.remove(*self._model_labels)
        self._model_labels = (name, version, provider)
        self.model.labels(*self._model_labels).set(1)

    def serve(self, host: str, port: int):
        """Start the /metrics HTTP endpoint on its own port; returns (server, port)."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return server, server.server_port

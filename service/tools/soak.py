"""`nextword soak`: hold the server above its capacity for a while and watch it cope.

Loopback only, bounded in time (--minutes) and count (--max-requests). The server runs in
its own process with a small queue; a load generator in another process runs, at once:
typing clients (unary Predict per keystroke), typing sessions (PredictStream), clients
that vanish mid-stream, and cold clients whose every request is a new context (model
steps, the expensive kind). Every --interval seconds it prints requests answered, status
counts, p50/p99, the server's memory and its state-cache size; at the end, the checks:
no INTERNAL, memory flat after warm-up, load shed with RESOURCE_EXHAUSTED rather than
latency growing without bound.
"""
from __future__ import annotations

import asyncio
import collections
import multiprocessing as mp
import os
import random
import re
import socket
import time
import urllib.request

import grpc

from model.engine.errors import UserError
from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.tools.bench import SAMPLES, start_server


def add_arguments(p) -> None:
    p.add_argument("--minutes", type=float, default=10.0, help="how long to hold the load")
    p.add_argument("--interval", type=float, default=30.0, help="seconds between progress lines")
    p.add_argument("--concurrency", type=int, default=96, help="clients at once (typing, streams, cold, vanishing)")
    p.add_argument("--max-requests", type=int, default=5_000_000, help="stop after this many requests in all")
    p.add_argument("--server-args", default="--max-concurrent-rpcs 64 --max-streams 48 --max-queue 32 --cache-size 1024",
                   help="flags for the server under test (limits below --concurrency, so it must shed)")


# ---- load generator (child process) -------------------------------------------------------

async def _typing(stub, pb, record, stop):
    while not stop():
        message = random.choice(SAMPLES)
        for n in range(1, len(message) + 1):
            await record(stub.Predict(pb.PredictRequest(text=message[:n]), timeout=5))


async def _session(stub, pb, record, stop, vanish: bool):
    while not stop():
        call = stub.PredictStream(timeout=60)
        message = random.choice(SAMPLES)
        cut = random.randrange(1, len(message)) if vanish else len(message)
        try:
            for ch in message[:cut]:
                started = time.perf_counter()
                await call.write(pb.StreamRequest(edit=pb.TextEdit(insert=ch)))
                response = await call.read()
                record.sample("OK" if response is not None else "EOF", time.perf_counter() - started)
            if vanish:
                call.cancel()  # the client goes away mid-sentence
            else:
                await call.done_writing()
        except Exception as e:  # noqa: BLE001 - every status is counted, none is fatal
            # A write into a stream the server already refused fails in the client with
            # "Internal error from Core"; what the server said is the call's own status.
            code = await asyncio.wait_for(call.code(), 5)
            record.sample(code.name, None, await call.details() or _details(e))


async def _cold(stub, pb, record, stop):
    while not stop():
        words = " ".join(w for _ in range(3) for w in random.choice(SAMPLES).split()[: random.randrange(2, 8)])
        await record(stub.Predict(pb.PredictRequest(text=f"{random.random():.6f} {words} "), timeout=5))


def _details(error: Exception) -> str:
    details = getattr(error, "details", None)
    return (details() if callable(details) else str(error))[:200]


class _Recorder:
    def __init__(self):
        self.codes, self.latencies, self.total = collections.Counter(), [], 0
        self.details: dict[str, str] = {}  # first message seen for each non-OK status

    def sample(self, code: str, latency, details: str = ""):
        if code != "OK" and code not in self.details:
            self.details[code] = details
        self.codes[code] += 1
        self.total += 1
        if latency is not None:
            self.latencies.append(latency)

    async def __call__(self, call):
        started = time.perf_counter()
        try:
            await call
            self.sample("OK", time.perf_counter() - started)
        except Exception as e:  # noqa: BLE001
            self.sample(e.code().name if hasattr(e, "code") else type(e).__name__, None, _details(e))

    def flush(self) -> dict:
        lat = sorted(self.latencies)
        out = {"codes": dict(self.codes), "count": sum(self.codes.values()), "details": dict(self.details),
               "p50": lat[len(lat) // 2] if lat else None, "p99": lat[int(len(lat) * 0.99)] if lat else None}
        self.codes, self.latencies = collections.Counter(), []
        return out


async def _load(address, concurrency, seconds, interval, max_requests, queue):
    record, end, parent = _Recorder(), time.monotonic() + seconds, os.getppid()
    # bounded in time and count, and it stops if the soak that started it is gone
    stop = lambda: time.monotonic() > end or record.total >= max_requests or os.getppid() != parent  # noqa: E731
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.NextWordStub(channel)
        kinds = [lambda: _typing(stub, pb, record, stop), lambda: _session(stub, pb, record, stop, False),
                 lambda: _session(stub, pb, record, stop, True), lambda: _cold(stub, pb, record, stop)]
        async def worker(kind):
            try:
                await kind()
            except Exception as e:  # a bug in this generator must show in the report, not vanish
                record.sample(f"LOADGEN_{type(e).__name__}", None)
        workers = [asyncio.ensure_future(worker(kinds[i % len(kinds)])) for i in range(concurrency)]
        while not stop():
            await asyncio.sleep(interval)
            queue.put(record.flush())
        await asyncio.gather(*workers)
    queue.put(record.flush())
    queue.put(None)


def _child(*args):
    asyncio.run(_load(*args))


# ---- the soak ------------------------------------------------------------------------------

def memory_kib(pid: int) -> tuple[int, int]:
    """(resident now, peak resident) of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def scrape(port: int, name: str) -> float:
    """The sum of a metric's samples whose name and labels start as given."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(v) for v in re.findall(rf"^{re.escape(name)}\S* (\S+)$", text, re.M))


def main(args) -> int:
    for name in ("minutes", "interval", "concurrency", "max_requests"):
        if getattr(args, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    metrics_port = _free_port()
    proc, address = start_server(None, f"{args.server_args} --metrics-host 127.0.0.1 --metrics-port {metrics_port}")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    load = ctx.Process(target=_child, args=(address, args.concurrency, args.minutes * 60, args.interval,
                                            args.max_requests, queue))
    load.start()
    totals, rss, t0, details = collections.Counter(), [], time.monotonic(), {}
    print(f"soak: {args.concurrency} clients for {args.minutes:g} min against {address} ({args.server_args})")
    print(f"{'t (s)':>7}{'answered':>10}{'p50 ms':>9}{'p99 ms':>9}{'RSS MiB':>9}{'cache':>7}{'streams':>8}  statuses")
    try:
        while (window := queue.get(timeout=args.interval * 4 + 120)) is not None:
            totals.update(window["codes"])
            details = {**window["details"], **details}
            now_kib, _ = memory_kib(proc.pid)
            rss.append(now_kib)
            cache, streams = scrape(metrics_port, "nextword_state_cache_entries"), scrape(metrics_port, "nextword_stream_sessions")
            ms = lambda v: f"{v * 1e3:.2f}" if v is not None else "-"  # noqa: E731
            print(f"{time.monotonic() - t0:>7.0f}{window['codes'].get('OK', 0):>10,}{ms(window['p50']):>9}{ms(window['p99']):>9}"
                  f"{now_kib / 1024:>9.1f}{cache:>7.0f}{streams:>8.0f}  {dict(window['codes'])}", flush=True)
        load.join()
        _, peak = memory_kib(proc.pid)
        server_codes = {c: scrape(metrics_port, f'nextword_requests_total{{code="{c}"') for c in ("INTERNAL", "UNKNOWN")}
    finally:
        proc.terminate()
        proc.wait(30)
    return report(totals, rss, peak, details, server_codes)


def report(totals: collections.Counter, rss: list[int], peak_kib: int, details: dict, server_codes: dict) -> int:
    print(f"\nanswered {totals.get('OK', 0):,} of {sum(totals.values()):,} requests; statuses seen by the clients {dict(totals)}")
    for code, message in sorted(details.items()):
        print(f"  first {code}: {message}")
    print(f"statuses the server answered with (its own counters): INTERNAL {server_codes['INTERNAL']:.0f}, "
          f"UNKNOWN {server_codes['UNKNOWN']:.0f}")
    if totals.get("INTERNAL") and not server_codes["INTERNAL"]:
        print("  (a gRPC aio client writing into a stream that gRPC refused at admission sees its write fail as\n"
              "   INTERNAL 'Internal error from Core'; the server sent RESOURCE_EXHAUSTED)")
    print(f"server memory: peak {peak_kib / 1024:.1f} MiB; resident after the first interval "
          f"{rss[0] / 1024 if rss else 0:.1f} MiB, at the end {rss[-1] / 1024 if rss else 0:.1f} MiB")
    # warm-up: the first third (the cache fills, allocators find their size); its highest
    # resident size is the level the rest of the run must stay near
    warm = max(rss[: max(1, len(rss) // 3)]) if rss else 0
    growth = (rss[-1] - warm) / warm if warm else 0.0
    print("resident MiB per interval: " + " ".join(f"{r / 1024:.0f}" for r in rss))
    checks = {
        "the server answered no call with INTERNAL or UNKNOWN": not (server_codes["INTERNAL"] or server_codes["UNKNOWN"]),
        "the load generator itself ran clean": not any(code.startswith("LOADGEN") for code in totals),
        f"memory flat after warm-up (end vs warm-up high: {growth:+.1%}, limit +10%)": growth < 0.10,
        "overload shed with RESOURCE_EXHAUSTED": totals.get("RESOURCE_EXHAUSTED", 0) > 0,
    }
    for check, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {check}")
    return 0 if all(checks.values()) else 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

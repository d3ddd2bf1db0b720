"""`nextword bench`: Predict against the floor (an empty RPC) on the same server, in one run.

The server runs in its own process, the load generator in another (both on loopback,
sharing this machine's cores). Every figure is printed next to the floor measured in the
same run: on a noisy machine an absolute time means little, a ratio means a lot.

Workloads are real typing: each client types sample chat messages one character at a
time and asks for suggestions at every keystroke, as a keyboard does; the same typing as
a user with a history of 20,000 learned entries, and Learn calls, are measured too.
"""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time

import grpc
import numpy as np

from model.engine.errors import UserError
from model.engine.personal import message_entries
from model.engine.runtime import Runtime
from model.evaluate.typist import mistype
from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.server.settings import PROVIDERS, Settings

SAMPLES = [
    "hey how are you doing today?", "I'm good thanks, what about you", "what are you up to this weekend",
    "I think I'm going to stay home and watch a movie", "that sounds like a lot of fun", "do you have any plans for tonight",
    "I don't know yet, maybe I'll go out with some friends", "haha yeah that's true", "where are you from originally",
    "I grew up in a small town but I live in the city now", "what kind of music do you like to listen to",
    "I love going hiking in the mountains when the weather is nice", "did you see the game last night",
    "I have so much homework to do this week", "we should get lunch sometime next week",
]
LONG_CONTEXT = " ".join(SAMPLES * 3).split()


def context_of(words: int) -> str:
    return " ".join(LONG_CONTEXT[:words]) + " "


def add_arguments(p) -> None:
    p.add_argument("--model-dir", default=None,
                   help="model directory to serve (default: the shipped model); several, comma-separated, are measured "
                        "one after the other in this run (e.g. an older export beside a newer one)")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    p.add_argument("--concurrency", default="1,16,64", help="client concurrency levels for the throughput table")
    p.add_argument("--server-args", default="", help="extra flags for the server, e.g. \"--max-batch 1\"")
    p.add_argument("--workers", default="1", help="comma-separated worker counts to run the throughput table with, e.g. 1,2")
    p.add_argument("--providers", default="cpu", help="comma-separated execution providers, e.g. cpu,cuda (side by side)")
    p.add_argument("--model-batches", default="1,64,256,1024",
                   help="batch sizes for the model-alone rows (one token step in this process, per provider); 0: none")
    p.add_argument("--workload", default="typing", choices=["typing", "cold"],
                   help="typing: keystrokes of chat messages; cold: every request a new context (model steps, for batching)")
    p.add_argument("--personal-only", action="store_true",
                   help="only the rows of typing as a user (200 and 20,000 entries) against no user, and Learn against Ping")
    p.add_argument("--dictionary-only", action="store_true",
                   help="only compare one server with the model's main dictionary and one without (--dictionary false): "
                        "completions of 1-3 letters, the widest prefixes, and the servers' memory")


# ---- load generator (runs in a child process) -------------------------------------------


def mistyped_samples(rate: float = 0.05) -> list[str]:
    """SAMPLES as the noisy typist of `nextword evaluate --typos` types them (seeded)."""

    rng = np.random.default_rng(1)
    return [" ".join(mistype(word, rate, rng) for word in message.split(" ")) for message in SAMPLES]


async def _worker(stub, pb, kind: str, prefix: str, deadline: float, latencies: list, offset: int) -> None:
    i = offset
    if kind == "ping":
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            await stub.Ping(pb.PingRequest())
            latencies.append(time.perf_counter() - t)
        return
    if kind == "cold":  # every request a context never seen: always a model step of several tokens
        while time.perf_counter() < deadline:
            i += 1
            t = time.perf_counter()
            await stub.Predict(pb.PredictRequest(text=f"{offset} {i} {SAMPLES[i % len(SAMPLES)]} "))
            latencies.append(time.perf_counter() - t)
        return
    if kind == "learn":  # a sent message each time, learned for one user
        while time.perf_counter() < deadline:
            i += 1
            t = time.perf_counter()
            await stub.Learn(pb.LearnRequest(user="bench-learner", text=SAMPLES[i % len(SAMPLES)]))
            latencies.append(time.perf_counter() - t)
        return
    if kind == "prefixes":  # the first 1-3 letters of each word, after the words before it
        while time.perf_counter() < deadline:
            words = SAMPLES[i % len(SAMPLES)].split(" ")
            i += 1
            for w, word in enumerate(words):
                for n in range(1, min(3, len(word)) + 1):
                    t = time.perf_counter()
                    await stub.Predict(pb.PredictRequest(text=" ".join(words[:w] + [word[:n]])))
                    latencies.append(time.perf_counter() - t)
        return
    if kind == "stream":
        call = stub.PredictStream()
        await call.write(pb.StreamRequest(text=prefix))
        await call.read()
    messages = mistyped_samples() if kind == "typos" else SAMPLES
    user = kind.split(":", 1)[1] if kind.startswith("user:") else ""  # typing as a user with a history
    options = pb.PredictOptions(exact_only=kind == "exact", user=user)
    while time.perf_counter() < deadline:
        message = messages[i % len(messages)]
        i += 1
        for n in range(1, len(message) + 1):
            t = time.perf_counter()
            if kind == "stream":
                await call.write(pb.StreamRequest(edit=pb.TextEdit(insert=message[n - 1])))
                await call.read()
            else:
                await stub.Predict(pb.PredictRequest(text=prefix + message[:n], options=options))
            latencies.append(time.perf_counter() - t)
            if time.perf_counter() >= deadline:
                break
        if kind == "stream":  # clear the message (not timed), keep the long context
            await call.write(pb.StreamRequest(text=prefix))
            await call.read()
    if kind == "stream":
        await call.done_writing()


async def _load(address: str, kind: str, concurrency: int, seconds: float, context_words: int, offset: int) -> dict:
    # a connection per 8 clients, each its own (a local subchannel pool): with --workers the
    # kernel spreads connections, not calls, over the server's processes
    channels = [grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(max(1, concurrency // 8))]
    try:
        stubs = [pb_grpc.NextWordStub(channel) for channel in channels]
        prefix = context_of(context_words) if context_words else ""
        clients = range(offset, offset + concurrency)
        warm: list = []
        await asyncio.gather(*(_worker(stubs[w % len(stubs)], pb, kind, prefix, time.perf_counter() + 0.5, warm, w) for w in clients))
        latencies: list = []
        start = time.perf_counter()
        await asyncio.gather(*(_worker(stubs[w % len(stubs)], pb, kind, prefix, start + seconds, latencies, w) for w in clients))
        elapsed = time.perf_counter() - start
    finally:
        for channel in channels:
            await channel.close()
    return {"latencies": latencies, "elapsed": elapsed}


def _child(queue, *args) -> None:
    queue.put(asyncio.run(_load(*args)))


def measure(address: str, kind: str, concurrency: int, seconds: float, context_words: int = 0, processes: int = 1) -> dict:
    """One measurement by load generators in their own processes (the clients split among them)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    processes = max(1, min(processes, concurrency))
    shares = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    procs = [ctx.Process(target=_child, args=(queue, address, kind, share, seconds, context_words, sum(shares[:i])))
             for i, share in enumerate(shares)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join()
    latencies = sorted(x for r in results for x in r["latencies"])
    elapsed = max(r["elapsed"] for r in results)
    return {"count": len(latencies), "rps": len(latencies) / elapsed,
            "p50": latencies[len(latencies) // 2], "p99": latencies[int(len(latencies) * 0.99)]}


# ---- the benchmark -----------------------------------------------------------------------


def start_server(model_dir: str | None, extra: str):
    """A `nextword serve` process on a free port; its own one-line error if it cannot start."""
    cmd = [sys.executable, "-m", "nextword", "serve", "--host", "127.0.0.1", "--grpc-port", "0", "--metrics-port", "-1",
           "--log-level", "WARNING", "--user-keys", "open", "--data-dir", tempfile.mkdtemp(prefix="nextword-bench-"),
           *(["--model-dir", model_dir] if model_dir else []), *extra.split()]
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: nobody reads it while the server runs
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True)
        line = proc.stdout.readline()
        match = re.search(r":(\d+) \(gRPC\)", line)
        if not match:
            proc.kill()
            proc.wait()
            errors.seek(0)
            said = [l for l in errors.read().splitlines() if l.strip()]
            raise UserError(f"the server did not start: {said[-1] if said else 'no reason given'}")
    return proc, f"127.0.0.1:{match.group(1)}"


def positive_numbers(text: str, flag: str) -> list[int]:
    try:
        numbers = [int(c) for c in text.split(",")]
    except ValueError:
        numbers = []
    if not numbers or min(numbers) < 1:
        raise UserError(f"{flag} must be a comma-separated list of positive numbers, got {text!r}")
    return numbers


def row(label: str, setup: str, conc: int, r: dict, note: str = "") -> str:
    return f"{label:<34}{setup:>12}{conc:>5}{r['rps']:>10,.0f}{r['p50'] * 1e6:>10,.0f}{r['p99'] * 1e6:>10,.0f}  {note}"


def throughput_rows(address: str, setup: str, levels: list[int], args, workers: int) -> None:
    """Ping then Predict at each concurrency, on one server; ratios to its own floor."""
    kind = "predict" if args.workload == "typing" else "cold"
    for conc in levels:
        floor = measure(address, "ping", conc, args.seconds, processes=workers)
        predict = measure(address, kind, conc, args.seconds, processes=workers)
        print(row("Ping (empty RPC, the floor)", setup, conc, floor))
        print(row(f"Predict ({'typing, per keystroke' if args.workload == 'typing' else 'cold contexts'})", setup, conc, predict,
                  f"p50 {predict['p50'] / floor['p50']:.2f}x floor, throughput {predict['rps'] / floor['rps']:.2f}x floor"),
              flush=True)


def keystroke_rows(address: str, setup: str, args) -> None:
    """At one client: the cost of corrections, and per-keystroke cost against the text's length."""
    exact = measure(address, "exact", 1, args.seconds)
    print(row("keystroke, exact completions only", setup, 1, exact))
    for kind, label in (("predict", "with corrections"), ("typos", "corrections, 5% typos")):
        r = measure(address, kind, 1, args.seconds)
        print(row(f"keystroke, {label}", setup, 1, r, f"p50 {r['p50'] / exact['p50']:.2f}x exact only"))
    for kind, label in (("predict", "unary"), ("stream", "stream")):
        short = measure(address, kind, 1, args.seconds, context_words=5)
        long = measure(address, kind, 1, args.seconds, context_words=200)
        print(row(f"keystroke, {label}, 5 words before", setup, 1, short))
        print(row(f"keystroke, {label}, 200 words before", setup, 1, long, f"p50 {long['p50'] / short['p50']:.2f}x the 5-word p50"),
              flush=True)


def grow_user(address: str, key: str, entries: int) -> int:
    """Learn made-up messages for a user until it holds `entries` entries; returns how many."""

    words = sorted(set(" ".join(SAMPLES).split()))
    rng, held = np.random.default_rng(7), set()
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.NextWordStub(channel)
        while len(held) < entries:
            message = " ".join([*rng.choice(words, 6), f"zq{len(held)}x"])  # an unseen word each time
            stub.Learn(pb.LearnRequest(user=key, text=message))
            held |= set(message_entries(message))
    return len(held)


def alternating(conditions: dict, rounds: int = 3) -> dict[object, list[dict]]:
    """Each condition's measurement, taken in alternating rounds: the machine's drift falls on all."""
    runs: dict[object, list[dict]] = {key: [] for key in conditions}
    for _ in range(rounds):
        for key, take in conditions.items():
            runs[key].append(take())
    return runs


def median_round(runs: list[dict]) -> dict:
    """The round of the median p50."""
    return sorted(runs, key=lambda m: m["p50"])[len(runs) // 2]


def personal_rows(address: str, setup: str, args) -> None:
    """Typing as a user with a history of 200 and of 20,000 entries against no user, in
    alternating rounds (the machine's drift falls on all three); learning against the floor."""
    users = {"": "no user"}
    for size in (200, 20000):
        users[f"bench-{size}"] = f"user of {grow_user(address, f'bench-{size}', size):,} entries"
    runs = alternating({user: lambda user=user: measure(address, f"user:{user}", 1, args.seconds) for user in users})
    median = {user: median_round(r) for user, r in runs.items()}
    plain = median[""]["p50"]
    for user, label in users.items():
        rounds = ", ".join(f"{m['p50'] * 1e6:,.0f}" for m in runs[user])
        ratio = f"p50 {median[user]['p50'] / plain:.2f}x no user, " if user else ""
        print(row(f"keystroke, {label}", setup, 1, median[user], f"{ratio}p50 of 3 rounds: {rounds}"), flush=True)
    floor = measure(address, "ping", 1, args.seconds)
    learn = measure(address, "learn", 1, args.seconds)
    print(row("Ping (empty RPC, the floor)", setup, 1, floor))
    print(row("Learn (a sent message)", setup, 1, learn, f"p50 {learn['p50'] / floor['p50']:.2f}x floor"), flush=True)


def resident_mb(proc) -> float:
    """A process's resident memory (Linux /proc), in MB."""
    with open(f"/proc/{proc.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def dictionary_rows(args) -> None:
    """Completions of 1-3 letters on a server with the main dictionary and one without, in
    alternating rounds (the machine's noise falls on both), and each server's memory."""
    model_dir = model_dirs(args)[0]
    servers = {on: start_server(model_dir, f"--dictionary {str(on).lower()} {args.server_args}") for on in (True, False)}
    try:
        runs = alternating({on: lambda address=address: measure(address, "prefixes", 1, args.seconds)
                            for on, (_, address) in servers.items()})
        memory = {on: resident_mb(proc) for on, (proc, _) in servers.items()}
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(30)
    p50 = {on: median_round(r)["p50"] for on, r in runs.items()}
    for on, label in ((False, "without the dictionary"), (True, "with the dictionary")):
        rounds = ", ".join(f"{m['p50'] * 1e6:,.0f}" for m in runs[on])
        print(f"completion of 1-3 letters, {label:<24} p50 {p50[on] * 1e6:>8,.0f} us (rounds: {rounds}); "
              f"server resident memory {memory[on]:,.0f} MB")
    print(f"with / without: p50 {p50[True] / p50[False]:.2f}x, memory {memory[True] - memory[False]:+,.0f} MB")


def time_step(runtime, batch: int, seconds: float = 1.0, steps: int = 1) -> float:
    """Median seconds of feeding `steps` tokens to `batch` contexts (after one unmeasured run)."""
    tokens = np.random.default_rng(batch).integers(4, len(runtime.vocab), (batch, steps))
    h, c = runtime.zero_state(batch)
    runtime.run(tokens, h, c)
    times, deadline = [], time.perf_counter() + seconds
    while len(times) < 3 or time.perf_counter() < deadline:
        t = time.perf_counter()
        runtime.run(tokens, h, c)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def agreement(cpu, other) -> tuple[float, int, int]:
    """Another runtime's log-probabilities against the CPU's on the same contexts: the
    largest difference, in how many contexts the top 10 differ, of how many."""
    text = np.resize(cpu.vocab.encode_text(" ".join(SAMPLES)), 4 * 32 + 12)
    tokens = np.stack([text[4 * i: 4 * i + 12] for i in range(32)]).astype(np.int64)  # 32 overlapping windows
    h, c = cpu.zero_state(len(tokens))
    want, got = cpu.run(tokens, h, c).logprobs, other.run(tokens, h, c).logprobs
    differ = int(np.sum(np.any(np.argsort(-want, 1)[:, :10] != np.argsort(-got, 1)[:, :10], axis=1)))
    return float(np.abs(want - got).max()), differ, len(tokens)


def model_dirs(args) -> list[str]:
    return args.model_dir.split(",") if args.model_dir else [Settings().model_dir]


def model_rows(args, providers: list[str]) -> None:
    """The model alone in this process, per model and provider: what batching can win before
    gRPC and Python; with the ratio of batch 64 to 64 single calls, and a context of 8 tokens."""
    if args.model_batches == "0":
        return
    batches = positive_numbers(args.model_batches, "--model-batches")
    threads = Settings().threads
    for model_dir in model_dirs(args):
        runtimes = {p: Runtime(model_dir, p, threads=threads) for p in providers}
        first = next(iter(runtimes.values()))
        fed = "one row and one token per call" if first.one_at_a_time else "batched, a sequence in one call"
        print(f"model alone ({model_dir}, {first.graph}, {fed}): median microseconds per call")
        print(f"{'provider':<12}" + "".join(f"{f'batch {b}':>14}" for b in batches) + f"{'64 / (64 x 1)':>15}{'8 tokens':>10}")
        for provider, runtime in runtimes.items():
            times = {b: time_step(runtime, b) for b in sorted(set(batches) | {1, 64})}
            print(f"{provider:<12}" + "".join(f"{times[b] * 1e6:>14,.0f}" for b in batches)
                  + f"{times[64] / (64 * times[1]):>15.2f}{time_step(runtime, 1, steps=8) * 1e6:>10,.0f}", flush=True)
        cpu = runtimes.get("cpu") or Runtime(model_dir, "cpu", threads=threads)
        for provider, runtime in runtimes.items():
            if provider != "cpu":
                diff, differ, n = agreement(cpu, runtime)
                print(f"logprobs on {provider} vs cpu, after 12 tokens: max |diff| {diff:.1e}, top-10 differs in {differ} of {n} contexts")
        print()


def main(args) -> int:
    if args.seconds <= 0:
        raise UserError(f"--seconds must be positive, got {args.seconds}")
    levels = positive_numbers(args.concurrency, "--concurrency")
    workers = [w for w in args.workers.split(",")]
    providers = [p for p in args.providers.split(",")]
    if not set(providers) <= set(PROVIDERS):
        raise UserError(f"--providers takes a comma-separated list of {', '.join(PROVIDERS)}, got {args.providers!r}")
    if args.dictionary_only:
        dictionary_rows(args)
        return 0
    if args.personal_only:
        proc, address = start_server(model_dirs(args)[0], args.server_args)
        try:
            personal_rows(address, "cpu/1", args)
        finally:
            proc.terminate()
            proc.wait(30)
        return 0
    model_rows(args, providers)
    print(f"{args.seconds:g} s per measurement; latencies in microseconds; server flags: {args.server_args or '(none)'}")
    print(f"{'':<34}{'provider/wk':>12}{'conc':>5}{'req/s':>10}{'p50':>10}{'p99':>10}")
    first, several = True, len(model_dirs(args)) > 1
    for model_dir, provider, w in ((m, p, w) for m in model_dirs(args) for p in providers for w in workers):
        if several:
            print(f"model {model_dir}:", flush=True)
        proc, address = start_server(model_dir, f"--provider {provider} --workers {w} {args.server_args}")
        n = int(w) if w.isdigit() else (os.cpu_count() or 1)
        setup = f"{provider}/{w}"
        try:
            throughput_rows(address, setup, levels, args, n)
            if first and args.workload == "typing":
                keystroke_rows(address, setup, args)
                personal_rows(address, setup, args)
            first = False
        finally:
            proc.terminate()
            proc.wait(30)
    return 0

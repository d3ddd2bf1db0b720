"""`nextword store-check`: try to break the user store's promises, with real servers and faults.

Jepsen-style: --servers real `nextword serve` processes share one store (a SQLite file, or a
Redis). Concurrent clients run a seeded random schedule of Learn, Forget and Predict on any
of them, while servers are restarted (SIGTERM, a drain) or killed (SIGKILL) and started again,
and the store fills up for a few seconds (SQLite: the servers' files may not grow, as on a
full disk; Redis: maxmemory reached, no eviction). At the end every user is exported
(ExportStream), every server drains, the store is read directly, and a checker compares
what was observed with what must hold (README, "Personal suggestions"):

- kept: a Learn answered LEARNED is in the store, unless a Forget of its user ended after
  the Learn began, or its server was killed within KILL_WINDOW of the answer (the
  write-behind window, plus a write in flight on a loaded machine);
- final: a Predict begun FORGET_WINDOW after a Forget returned shows no word learned before
  that Forget began, and the store holds none after the drain;
- bounded: no user holds more than --user-max-entries entries (one user learns long messages
  to get there; the others are forgotten often enough never to);
- export: what Export gave each user at the end is what the store holds for them;
- quiet: no server logs a traceback or an error.

It prints the runs, operations, faults and violations, and exits 1 on any violation. The
suite runs it for about half a minute per store (tests/service/test_user_store.py).
"""
from __future__ import annotations

import asyncio
import itertools
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import redis

from model.engine.errors import UserError
from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.server.users.redis import RedisStore
from service.server.security import UserKeys, load_user_secret
from service.server.users.sqlite import SqliteStore
from service.server.users.layer import FLUSH_EVERY, REFRESH_EVERY, RETRY_EVERY

KILL_WINDOW = FLUSH_EVERY + 2.0     # seconds after a Learn's answer within which a kill -9 may lose it
FORGET_WINDOW = REFRESH_EVERY + 0.5  # seconds after a Forget after which nothing before it may show
USERS = 8
BOUNDED = "bounded"  # the user that learns long messages, to meet the bound
CALL_TIMEOUT = 3.0


def add_arguments(p) -> None:
    p.add_argument("--store", default="sqlite", choices=["sqlite", "redis"], help="the user store the servers share")
    p.add_argument("--redis-url", default="redis://localhost:6379/0", help="with --store redis: a Redis to use (it is written to)")
    p.add_argument("--seconds", type=float, default=600.0, help="how long to run the schedule (per run)")
    p.add_argument("--runs", type=int, default=1, help="runs, each with its own seed and servers")
    p.add_argument("--servers", type=int, default=3, help="server processes sharing the store")
    p.add_argument("--clients", type=int, default=6, help="concurrent clients")
    p.add_argument("--seed", type=int, default=1, help="seed of the first run's schedule")
    p.add_argument("--user-max-entries", type=int, default=400, help="the servers' bound on entries per user")
    p.add_argument("--model-dir", default=None, help="model directory to serve (default: the shipped model)")


SYLLABLES = ("ba", "de", "ki", "lo", "ma", "ra", "se", "ti", "no", "pa", "le", "ga", "ri", "sa", "la", "me", "di", "ko", "na", "te")


@dataclass
class Op:
    kind: str            # learn, forget, predict
    user: str
    server: int
    start: float
    end: float = 0.0
    outcome: str = ""    # LEARNED, OK, an error code, ...
    word: str = ""       # learn: the word; predict: the word probed
    shown: list = field(default_factory=list)


class Servers:
    """The server processes, started and stopped on demand, sharing one data dir and store."""

    def __init__(self, args, data_dir: Path):
        self.args, self.data_dir = args, data_dir
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.addresses: dict[int, str] = {}
        self.logs: dict[int, list[Path]] = {}
        self.kills: list[tuple[int, float]] = []  # (server, when)
        self.restarts = 0

    async def start(self, i: int) -> None:
        a = self.args
        log = self.data_dir / f"server{i}-{len(self.logs.get(i, []))}.log"
        self.logs.setdefault(i, []).append(log)
        flags = ["--host", "127.0.0.1", "--grpc-port", "0", "--metrics-port", "-1", "--data-dir", str(self.data_dir),
                 "--user-secret-file", str(self.data_dir / "user-secret"),
                 "--user-store", a.store, "--redis-url", a.redis_url, "--user-keys", "open", "--grace-seconds", "2",
                 "--user-max-entries", str(a.user_max_entries), "--log-level", "WARNING"]
        flags += ["--model-dir", a.model_dir] if a.model_dir else []
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "nextword", "serve", *flags,
                                                    stdout=asyncio.subprocess.PIPE, stderr=log.open("w"))
        line = (await proc.stdout.readline()).decode()
        if "(gRPC)" not in line:
            raise UserError(f"server {i} did not start: {log.read_text().strip().splitlines()[-1:]}")
        self.procs[i], self.addresses[i] = proc, line.split("serving on ")[1].split(" ")[0]

    async def stop(self, i: int, sig: int) -> None:
        proc = self.procs.pop(i)
        self.addresses.pop(i)
        if sig == signal.SIGKILL:
            self.kills.append((i, time.monotonic()))
        proc.send_signal(sig)
        await proc.wait()

    def fill(self, full: bool) -> None:
        """The store full (True) or with room again: SQLite, the servers' files may not grow past
        the largest of them (their soft RLIMIT_FSIZE, as a full disk); Redis, maxmemory at what it
        uses, without eviction (writes fail with OOM)."""
        if self.args.store == "redis":
            r = redis.Redis.from_url(self.args.redis_url)
            used = int(r.info("memory")["used_memory"])
            r.config_set("maxmemory-policy", "noeviction")
            r.config_set("maxmemory", used if full else 0)
            r.close()
            return
        largest = max(p.stat().st_size for p in self.data_dir.glob("users.sqlite3*"))
        for proc in self.procs.values():
            hard = resource.prlimit(proc.pid, resource.RLIMIT_FSIZE)[1]
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (largest if full else hard, hard))

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(i, signal.SIGTERM) for i in list(self.procs)))

    def complaints(self) -> list[str]:
        found = []
        for i, logs in self.logs.items():
            for log in logs:
                found += [f"server {i}: {line[:200]}" for line in log.read_text().splitlines()
                          if "Traceback" in line or " ERROR " in line]
        return found


class Schedule:
    """One run: the clients' operations and the faults, then the checks."""

    def __init__(self, args, seed: int, servers: Servers):
        self.args, self.rng, self.servers = args, random.Random(seed), servers
        self.users = [f"user{n}" for n in range(USERS)] + [BOUNDED]
        self.ops: list[Op] = []
        self.channels: dict[str, grpc.aio.Channel] = {}
        self.fills = 0

    def stub(self, address: str):
        if address not in self.channels:
            self.channels[address] = grpc.aio.insecure_channel(address)
        return pb_grpc.NextWordStub(self.channels[address])

    def word(self) -> str:
        """A made-up word a server learns (pronounceable: letters that look random are never
        learned, model/engine/learnable.py), one of 20^5 kinds."""
        return "zo" + "".join(self.rng.choice(SYLLABLES) for _ in range(5))

    async def call(self, op: Op, make) -> None:
        address = self.servers.addresses.get(op.server)
        self.ops.append(op)
        try:
            if address is None:
                raise ConnectionError
            response = await make(self.stub(address))
            op.outcome = pb.LearnResponse.Outcome.Name(response.outcome) if op.kind == "learn" else "OK"
            if op.kind == "predict":
                op.shown = [s.text for s in response.suggestions]
        except grpc.aio.AioRpcError as e:
            op.outcome = e.code().name
        except ConnectionError:
            op.outcome = "NO_SERVER"
            await asyncio.sleep(0.05)  # restarting: a moment before the next try
        op.end = time.monotonic()

    async def client(self, until: float) -> None:
        while time.monotonic() < until:
            user = self.rng.choice(self.users)
            server = self.rng.choice(range(self.args.servers))
            op = Op(self.rng.choices(["learn", "forget", "predict"], [6, 1, 3])[0], user, server, time.monotonic())
            if user == BOUNDED:
                op.kind, op.word = "learn", ""
                text = " ".join(self.word() for _ in range(60))
                await self.call(op, lambda stub: stub.Learn(pb.LearnRequest(user=user, text=text), timeout=CALL_TIMEOUT))
            elif op.kind == "learn":
                op.word = self.word()
                await self.call(op, lambda stub: stub.Learn(pb.LearnRequest(user=user, text=op.word), timeout=CALL_TIMEOUT))
            elif op.kind == "forget":
                await self.call(op, lambda stub: stub.Forget(pb.ForgetRequest(user=user), timeout=CALL_TIMEOUT))
            else:
                op.word = self.probe(user)
                if not op.word:
                    continue
                request = pb.PredictRequest(text=op.word[:-1], max_suggestions=10, options=pb.PredictOptions(user=user))
                await self.call(op, lambda stub: stub.Predict(request, timeout=CALL_TIMEOUT))

    def probe(self, user: str) -> str:
        """A word of the user's to look for: often one learned before its last Forget."""
        learned = [o.word for o in self.ops if o.kind == "learn" and o.user == user and o.word and o.end]
        return self.rng.choice(learned) if learned else ""

    async def faults(self, until: float) -> None:
        """A fault every 2-5 s, each kind in turn (in a seeded order), so a short run has all three."""
        kinds = ["SIGTERM", "SIGKILL", "full"]
        self.rng.shuffle(kinds)
        for n in itertools.count():
            await asyncio.sleep(self.rng.uniform(2.0, 5.0))
            if time.monotonic() > until:
                return
            fault = kinds[n % len(kinds)]
            if fault == "full":
                self.servers.fill(True)
                await asyncio.sleep(self.rng.uniform(1.0, 3.0))
                self.servers.fill(False)
                self.fills += 1
                continue
            i = self.rng.choice(list(self.servers.procs))
            await self.servers.stop(i, getattr(signal, fault))
            await self.servers.start(i)
            self.servers.restarts += 1

    async def run(self) -> None:
        until = time.monotonic() + self.args.seconds
        await asyncio.gather(*(self.client(until) for _ in range(self.args.clients)), self.faults(until))

    async def exports(self) -> dict[str, dict]:
        """Every user's entries as ExportStream gives them (after the write-behind and the
        store's retry after a failure have had their time)."""
        await asyncio.sleep(FLUSH_EVERY + RETRY_EVERY + 0.5)
        stub = self.stub(next(iter(self.servers.addresses.values())))
        found = {}
        for user in self.users:
            pages = stub.ExportStream(pb.ExportRequest(user=user), timeout=30)
            found[user] = {e.text.lower(): e.count async for page in pages for e in page.entries}
        for channel in self.channels.values():
            await channel.close()
        return found


def check(ops: list[Op], kills: list[tuple[int, float]], stored: dict[str, dict], exported: dict[str, dict],
          most: int) -> Counter:
    """Violations of each promise (see the module doc), printed as found."""
    found = Counter()
    forgets = [o for o in ops if o.kind == "forget"]
    done_forgets = [o for o in forgets if o.outcome == "OK"]

    def report(kind: str, what: str) -> None:
        found[kind] += 1
        print(f"violation ({kind}): {what}", flush=True)

    learns = [o for o in ops if o.kind == "learn" and o.word]
    for learn in learns:
        if learn.outcome != "LEARNED":
            continue
        forgotten = any(f.user == learn.user and f.end >= learn.start for f in forgets)
        killed = any(s == learn.server and learn.start <= t <= learn.end + KILL_WINDOW for s, t in kills)
        if not forgotten and not killed and learn.word not in stored.get(learn.user, {}):
            report("kept", f"{learn.user}: a word answered LEARNED at {learn.end:.2f} is not in the store")
    before = {}  # word -> the Forget that followed its Learn entirely (answered LEARNED: its timing is known)
    for learn in learns:
        f = next((f for f in done_forgets if f.user == learn.user and learn.outcome == "LEARNED" and learn.end < f.start),
                 None)
        if f is not None:
            before[learn.word] = f
    for probe in (o for o in ops if o.kind == "predict" and o.outcome == "OK"):
        for word in probe.shown:
            f = before.get(word.lower())
            if f is not None and probe.start > f.end + FORGET_WINDOW:
                report("final", f"{probe.user}: shown {probe.start - f.end:.2f} s after a Forget that followed it")
    for user, entries in stored.items():
        for word, f in before.items():
            if f.user == user and word in entries:
                report("final", f"{user}: a word learned before a Forget is in the store after the drain")
        if len(entries) > most:
            report("bounded", f"{user}: {len(entries)} entries, the bound is {most}")
        if exported.get(user) != entries:
            report("export", f"{user}: Export gave {len(exported.get(user, {}))} entries, the store holds {len(entries)}")
    return found


def read_store(args, data_dir: Path, users: list[str]) -> dict[str, dict]:
    secret = load_user_secret(data_dir / "user-secret", create=False)
    keys = UserKeys("open", secret)
    store = (SqliteStore(data_dir / "users.sqlite3", 3600, secret) if args.store == "sqlite"
             else RedisStore(args.redis_url, 3600))
    try:
        return {u: {e.lower(): c for e, (c, _) in store.load(keys.store_id(u)).entries.items()} for u in users}
    finally:
        store.close()


async def one_run(args, seed: int) -> tuple[Counter, Counter, int, int, int]:
    data_dir = Path(tempfile.mkdtemp(prefix="nextword-store-check-"))
    servers = Servers(args, data_dir)
    try:
        for i in range(args.servers):
            await servers.start(i)
        schedule = Schedule(args, seed, servers)
        await schedule.run()
        exported = await schedule.exports()
        await servers.stop_all()
        stored = read_store(args, data_dir, schedule.users)
        violations = check(schedule.ops, servers.kills, stored, exported, args.user_max_entries)
        for complaint in servers.complaints():
            violations["quiet"] += 1
            print(f"violation (quiet): {complaint}", flush=True)
        counts = Counter(f"{o.kind}{' (long)' if o.user == BOUNDED else ''} {o.outcome}" for o in schedule.ops)
        return violations, counts, servers.restarts, len(servers.kills), schedule.fills
    finally:
        for proc in servers.procs.values():
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


def main(args) -> int:
    if args.seconds <= 0 or args.runs < 1 or args.servers < 1 or args.clients < 1:
        raise UserError("--seconds, --runs, --servers and --clients must be positive")
    total = Counter()
    for run in range(args.runs):
        violations, counts, restarts, kills, fills = asyncio.run(one_run(args, args.seed + run))
        total.update(violations)
        print(f"run {run + 1} (seed {args.seed + run}, {args.store}, {args.servers} servers, {args.seconds:g} s): "
              f"{sum(counts.values()):,} operations ({', '.join(f'{k} {n:,}' for k, n in sorted(counts.items()))}); "
              f"faults: {restarts - kills} restarts, {kills} kill -9, {fills} full store; "
              f"violations: {sum(violations.values())}", flush=True)
    print(f"{args.runs} runs: violations kept {total['kept']}, final {total['final']}, bounded {total['bounded']}, "
          f"export {total['export']}, quiet {total['quiet']}")
    return 1 if total else 0

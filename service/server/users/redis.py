"""The user store on Redis: the same contract as SQLite's (store.py). Per user six keys under
one hash tag (so a cluster keeps them on one node): the entries' counts and last-seen times,
the suppressed words with the version each was suppressed at (hashes), meta (generation,
version, suppressions: how many words were ever suppressed), `order` (a sorted set of the
entries by store.prune_score, so pruning pops the first ones instead of sorting them all)
and `writes` (the ids of writes applied in the last WRITES_KEPT seconds).

No command runs long, whatever one user sends: a write goes in chunks of at most WRITE_STEP
entries (each one script, applied once by its id), and pruning in steps of PRUNE_STEP."""
from __future__ import annotations

import uuid

import redis

from model.engine.personal import MAX_COUNT
from service.server.users.store import (DAY, PRUNE_STEP, TOMBSTONE_DAYS, WRITES_KEPT, Entries, Forgotten,
                                        Snapshot, Written, down, mentions, prune_count, prune_score, score_lua,
                                        unsuppressed)

WRITE_STEP = 1000  # entries one write script adds at most

_WRITE = f"""
-- KEYS: count, seen, suppressed, meta, order, writes
-- ARGV: generation, suppressions read, write id, now, ttl, n, n (entry, count, seen) triples, words to lift
local version = tonumber(redis.call('HGET', KEYS[4], 'version') or '0')
if tonumber(redis.call('HGET', KEYS[4], 'generation') or '0') ~= tonumber(ARGV[1]) then
  return {{0, version, 0, 0}}
end
if redis.call('ZSCORE', KEYS[6], ARGV[3]) then
  return {{3, version, 0, 0}}  -- applied before: a retry of a write that landed
end
if tonumber(redis.call('HGET', KEYS[4], 'suppressions') or '0') ~= tonumber(ARGV[2]) then
  return {{2, 0, 0, 0}}  -- a word was suppressed since the caller read them: it reads them again
end
local n = tonumber(ARGV[6])
for i = 7, 6 + 3 * n, 3 do
  local count = redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  if count > {MAX_COUNT} then
    count = {MAX_COUNT}
    redis.call('HSET', KEYS[1], ARGV[i], count)
  end
  local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  if tonumber(ARGV[i + 2]) > seen then
    seen = tonumber(ARGV[i + 2])
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  end
  local score = {score_lua("count", "seen")}  -- store.prune_score
  redis.call('ZADD', KEYS[5], score, ARGV[i])
end
for i = 7 + 3 * n, #ARGV do redis.call('HDEL', KEYS[3], ARGV[i]) end
redis.call('ZADD', KEYS[6], ARGV[4], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', tonumber(ARGV[4]) - {WRITES_KEPT})
version = redis.call('HINCRBY', KEYS[4], 'version', 1)
for i = 1, 6 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return {{1, version, redis.call('HLEN', KEYS[1]), redis.call('ZCARD', KEYS[5])}}
"""

_PRUNE = """
-- KEYS: count, seen, order, meta; ARGV: entries to take at most. The first of `order` go.
local gone = redis.call('ZPOPMIN', KEYS[3], ARGV[1])
for i = 1, #gone, 2 do
  redis.call('HDEL', KEYS[1], gone[i])
  redis.call('HDEL', KEYS[2], gone[i])
end
if #gone > 0 then redis.call('HINCRBY', KEYS[4], 'version', 1) end
return #gone / 2
"""

_FORGET = """
-- KEYS: count, seen, suppressed, meta, order, writes; ARGV: how long the tombstone stays
local gone = redis.call('HLEN', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[6])
local generation = redis.call('HINCRBY', KEYS[4], 'generation', 1)
redis.call('HINCRBY', KEYS[4], 'version', 1)
redis.call('EXPIRE', KEYS[4], ARGV[1])
return {generation, gone}
"""

_FORGET_WORD = """
-- KEYS: count, seen, suppressed, meta, order; ARGV: version read, ttl, the word, entries holding it
if tonumber(redis.call('HGET', KEYS[4], 'version') or '0') ~= tonumber(ARGV[1]) then
  return -1  -- changed since the caller read the entries: it reads them again
end
for i = 4, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[2], ARGV[i])
  redis.call('ZREM', KEYS[5], ARGV[i])
end
local version = redis.call('HINCRBY', KEYS[4], 'version', 1)
redis.call('HINCRBY', KEYS[4], 'suppressions', 1)
redis.call('HSET', KEYS[3], ARGV[3], version)
for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
return #ARGV - 3
"""


class RedisStore:
    """The same store on Redis; every key expires after the time to live, renewed by each
    write (a tombstone's meta key after max(time to live, TOMBSTONE_DAYS))."""

    def __init__(self, url: str, ttl_seconds: float):
        self.redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.errors = (redis.RedisError, OSError)
        self.ttl = max(int(ttl_seconds), 1)
        self.tombstone_ttl = max(self.ttl, int(TOMBSTONE_DAYS * DAY))
        self._write, self._prune, self._forget, self._forget_word = map(
            self.redis.register_script, (_WRITE, _PRUNE, _FORGET, _FORGET_WORD))

    @staticmethod
    def _keys(user: str) -> list[str]:
        return [f"nextword:{{{user}}}:{name}" for name in ("count", "seen", "suppressed", "meta", "order", "writes")]

    def _read(self, user: str, *more: str):
        """The user's counts, last-seen times, suppressed words and meta fields, at one instant."""
        counts_key, seen_key, suppressed_key, meta_key = self._keys(user)[:4]
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(counts_key).hgetall(seen_key).hgetall(suppressed_key).hmget(meta_key, "generation", "version", *more)
        counts, seen, suppressed, meta = pipe.execute()
        return counts, seen, {w.decode(): int(at) for w, at in suppressed.items()}, [int(v or 0) for v in meta]

    def load(self, user: str) -> Snapshot:
        with down("Redis", self.errors):
            counts, seen, suppressed, (generation, version) = self._read(user)
        entries = {e.decode(): (int(c), float(seen.get(e, 0))) for e, c in counts.items()}
        return Snapshot(entries, set(suppressed), generation, version)

    def stamp(self, user: str) -> tuple[int, int]:
        with down("Redis", self.errors):
            generation, version = self.redis.hmget(self._keys(user)[3], "generation", "version")
        return int(generation or 0), int(version or 0)

    def write(self, user: str, generation: int, since: int, added: Entries, most: int,
              write_id: str | None = None) -> Written:
        """In chunks of WRITE_STEP entries, each applied once (its id: the write's and its number)."""
        write_id, items = write_id or uuid.uuid4().hex, sorted(added.items())
        result = Written(True, 0, repeated=True)
        with down("Redis", self.errors):
            for n, start in enumerate(range(0, max(len(items), 1), WRITE_STEP)):
                chunk = self._write_chunk(user, generation, since, dict(items[start:start + WRITE_STEP]), most,
                                          f"{write_id}:{n}")
                if not chunk.kept:
                    return chunk
                result = Written(True, chunk.version, result.pruned + chunk.pruned,
                                 result.suppression or chunk.suppression, result.repeated and chunk.repeated)
        return result

    def _write_chunk(self, user: str, generation: int, since: int, added: Entries, most: int, chunk_id: str) -> Written:
        keys = self._keys(user)
        now = max((seen for _, seen in added.values()), default=0.0)
        while True:
            suppressed = {w.decode(): int(at) for w, at in self.redis.hgetall(keys[2]).items()}
            seen_suppressions = int(self.redis.hget(keys[3], "suppressions") or 0)
            kept, lifted = unsuppressed(added, suppressed, since)
            triples = [part for entry, (count, seen) in kept.items() for part in (entry, count, repr(float(seen)))]
            done, version, size, ordered = self._write(keys=keys, args=[generation, seen_suppressions, chunk_id, now,
                                                                        self.ttl, len(kept), *triples, *lifted])
            if done != 2:
                break
        if done == 0:
            return Written(False, int(version))
        if done == 3:
            return Written(True, int(version), repeated=True)
        if ordered < size:  # entries written before `order` existed: index them once
            self._index(user)
        pruned = self._prune_to(user, prune_count(int(size), most))
        return Written(True, int(version), pruned, bool(lifted) or len(kept) < len(added))

    def _prune_to(self, user: str, gone: int) -> int:
        """Take `gone` entries in prune order, PRUNE_STEP at a time."""
        keys, taken = self._keys(user), 0
        while taken < gone:
            step = int(self._prune(keys=[keys[0], keys[1], keys[4], keys[3]], args=[min(PRUNE_STEP, gone - taken)]))
            if not step:
                break
            taken += step
        return taken

    def _index(self, user: str) -> None:
        """Put every entry of the user into `order` (a user written before it existed)."""
        counts_key, seen_key, order_key = (self._keys(user)[i] for i in (0, 1, 4))
        cursor = None
        while cursor != 0:
            cursor, counts = self.redis.hscan(counts_key, cursor or 0, count=PRUNE_STEP)
            entries = list(counts)
            seen = self.redis.hmget(seen_key, entries) if entries else []
            scores = {e: prune_score(int(counts[e]), float(s or 0)) for e, s in zip(entries, seen)}
            if scores:
                self.redis.zadd(order_key, scores)

    def forget(self, user: str) -> Forgotten:
        with down("Redis", self.errors):
            generation, gone = self._forget(keys=self._keys(user), args=[self.tombstone_ttl])
        return Forgotten(int(generation), int(gone), True)

    def forget_word(self, user: str, word: str) -> Forgotten:
        with down("Redis", self.errors):
            while True:
                counts, _, _, (generation, version) = self._read(user)
                entries = [e for e in (k.decode() for k in counts) if mentions(e, word)]
                gone = int(self._forget_word(keys=self._keys(user)[:5], args=[version, self.ttl, word, *entries]))
                if gone >= 0:
                    return Forgotten(generation, gone, True)

    def wipe(self, wait_s: float = 0.0) -> bool:
        return True  # nothing outside memory (persistence: README, "Redis keeps what its persistence keeps")

    def probe(self) -> None:
        """A real write, to learn whether writes work again after they failed (maxmemory, a replica)."""
        with down("Redis", self.errors):
            self.redis.set("nextword:probe", 1, ex=60)

    def expire(self, now: float | None = None) -> int:
        return 0  # Redis expires the keys itself

    def close(self) -> None:
        self.redis.close()

"""The user store on Redis: the same promises as SQLite's (store.py), per user four keys under
one hash tag (so a cluster keeps them on one node), each write one Lua script."""
from __future__ import annotations

import redis

from service.server.users.store import KEEP, TOMBSTONE_DAYS, Entries, Snapshot, Written, down, mentions, unsuppressed

# Redis: per user four keys under one hash tag (so a cluster keeps them on one node): counts
# and last-seen times of the entries, suppressed words with the version they were suppressed
# at (hashes), and meta (generation, version, suppressions: how many words were ever suppressed).
_WRITE = """
-- KEYS: count, seen, suppressed, meta
-- ARGV: generation, suppressions read, (unused), ttl, most, keep, n, n (entry, count, seen) triples, words to lift
local generation = tonumber(redis.call('HGET', KEYS[4], 'generation') or '0')
if generation ~= tonumber(ARGV[1]) then
  return {0, tonumber(redis.call('HGET', KEYS[4], 'version') or '0'), 0}
end
if tonumber(redis.call('HGET', KEYS[4], 'suppressions') or '0') ~= tonumber(ARGV[2]) then
  return {2, 0, 0}  -- a word was suppressed since the caller read them: it reads them again
end
local n = tonumber(ARGV[7])
for i = 8, 7 + 3 * n, 3 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  if tonumber(ARGV[i + 2]) > seen then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2]) end
end
for i = 8 + 3 * n, #ARGV do redis.call('HDEL', KEYS[3], ARGV[i]) end
local pruned, size = 0, redis.call('HLEN', KEYS[1])
if size > tonumber(ARGV[5]) then
  local counts, last, seen, order = redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), {}, {}
  for i = 1, #last, 2 do seen[last[i]] = tonumber(last[i + 1]) end
  for i = 1, #counts, 2 do
    local s = seen[counts[i]] or 0
    order[#order + 1] = {counts[i], math.floor(s / 86400), tonumber(counts[i + 1]), s}
  end
  table.sort(order, function(a, b)  -- prune_order: oldest day, then rarest, then oldest
    if a[2] ~= b[2] then return a[2] < b[2] end
    if a[3] ~= b[3] then return a[3] < b[3] end
    return a[4] < b[4]
  end)
  pruned = size - tonumber(ARGV[6])
  for i = 1, pruned do redis.call('HDEL', KEYS[1], order[i][1]); redis.call('HDEL', KEYS[2], order[i][1]) end
end
local version = redis.call('HINCRBY', KEYS[4], 'version', 1)
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[4]) end
return {1, version, pruned}
"""

_FORGET = """
-- KEYS: count, seen, suppressed, meta; ARGV: how long the tombstone stays
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local generation = redis.call('HINCRBY', KEYS[4], 'generation', 1)
redis.call('HINCRBY', KEYS[4], 'version', 1)
redis.call('EXPIRE', KEYS[4], ARGV[1])
return generation
"""

_FORGET_WORD = """
-- KEYS: count, seen, suppressed, meta; ARGV: version read, ttl, the word, entries holding it
if tonumber(redis.call('HGET', KEYS[4], 'version') or '0') ~= tonumber(ARGV[1]) then
  return -1  -- changed since the caller read the entries: it reads them again
end
for i = 4, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]); redis.call('HDEL', KEYS[2], ARGV[i]) end
local version = redis.call('HINCRBY', KEYS[4], 'version', 1)
redis.call('HINCRBY', KEYS[4], 'suppressions', 1)
redis.call('HSET', KEYS[3], ARGV[3], version)
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
return #ARGV - 3
"""


class RedisStore:
    """The same store on Redis; every key expires after the time to live, renewed by each
    write (a tombstone's meta key after max(time to live, TOMBSTONE_DAYS))."""

    def __init__(self, url: str, ttl_seconds: float):
        self.redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.errors = (redis.RedisError, OSError)
        self.ttl = max(int(ttl_seconds), 1)
        self.tombstone_ttl = max(self.ttl, int(TOMBSTONE_DAYS * 86400))
        self._write, self._forget, self._forget_word = map(self.redis.register_script, (_WRITE, _FORGET, _FORGET_WORD))

    @staticmethod
    def _keys(user: str) -> list[str]:
        return [f"nextword:{{{user}}}:{name}" for name in ("count", "seen", "suppressed", "meta")]

    def _read(self, user: str, *more: str):
        """The user's counts, last-seen times, suppressed words and meta fields, at one instant."""
        counts_key, seen_key, suppressed_key, meta_key = self._keys(user)
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

    def write(self, user: str, generation: int, since: int, added: Entries, most: int) -> Written:
        keys = self._keys(user)
        with down("Redis", self.errors):
            while True:
                suppressed = {w.decode(): int(at) for w, at in self.redis.hgetall(keys[2]).items()}
                seen_suppressions = int(self.redis.hget(keys[3], "suppressions") or 0)
                kept, lifted = unsuppressed(added, suppressed, since)
                triples = [part for entry, (count, seen) in kept.items() for part in (entry, count, seen)]
                done, version, pruned = self._write(keys=keys, args=[generation, seen_suppressions, 0, self.ttl, most,
                                                                     int(most * KEEP), len(kept), *triples, *lifted])
                if done != 2:
                    return Written(bool(done), int(version), int(pruned), bool(lifted) or len(kept) < len(added))

    def forget(self, user: str) -> int:
        with down("Redis", self.errors):
            return int(self._forget(keys=self._keys(user), args=[self.tombstone_ttl]))

    def forget_word(self, user: str, word: str) -> int:
        with down("Redis", self.errors):
            while True:
                counts, _, _, (_, version) = self._read(user)
                entries = [e for e in (k.decode() for k in counts) if mentions(e, word)]
                gone = int(self._forget_word(keys=self._keys(user), args=[version, self.ttl, word, *entries]))
                if gone >= 0:
                    return gone

    def expire(self, now: float | None = None) -> int:
        return 0  # Redis expires the keys itself

    def close(self) -> None:
        self.redis.close()

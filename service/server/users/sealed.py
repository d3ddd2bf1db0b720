"""Users' words at rest in SQLite: sealed with a key of the user's own, so Forget can make
every copy unreadable, wherever SQLite left it.

Why: SQLite's secure_delete zeroes deleted rows, but when it rebalances a B-tree it rebuilds
pages and leaves stale copies of moved rows in the unused gap of a page (seen: a deleted
user's word in the gap between a leaf's cell pointers and its cells, after other users'
writes). No schema avoids that. So no word is ever stored readable: an entry or a word is
kept as `seal(text)`, found by `digest(text)`, both under the user's key

    key = HMAC-SHA256(deployment secret, "store-key:" + user + salt)

where `salt` is random, kept in the user's row, and replaced at every Forget. A stale copy
of a sealed word is then noise: its key is gone with the salt, and even a stale copy of the
salt opens nothing without the deployment's secret, which lives outside the data directory.

The cipher is BLAKE2b (Python's hashlib) as a keyed pseudo-random function in counter mode:
pad = BLAKE2b(key, digest(text) + block number); sealed = text XOR pad. A pad is used for
one text only (the digest names it), and equal texts seal alike, which tells nothing the
unique index on digests does not tell already. BLAKE2b costs about a microsecond a word, so
a user of 50,000 entries loads in tens of milliseconds, as before.
"""
from __future__ import annotations

import hashlib
import hmac
import os

SALT_BYTES = 16
DIGEST_BYTES = 12
PAD_BYTES = 64  # BLAKE2b's longest output: one block of pad


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


class Sealer:
    """One user's key (for one generation): digests to find words, and sealing itself."""

    def __init__(self, secret: bytes, user: str, salt: bytes):
        key = hmac.new(secret, b"store-key:" + user.encode() + salt, hashlib.sha256).digest()
        # keyed states made once and copied per word: the key's own block is hashed once
        self._digest = hashlib.blake2b(key=key, digest_size=DIGEST_BYTES, person=b"nw-digest")
        self._pad_state = hashlib.blake2b(key=key, person=b"nw-pad")

    def digest(self, text: str) -> bytes:
        h = self._digest.copy()
        h.update(text.encode())
        return h.digest()

    def seal(self, text: str) -> bytes:
        """The text sealed: its digest, then its bytes XOR the pad the digest names."""
        data, digest = text.encode(), self.digest(text)
        return digest + _xor(data, self._pad(digest, len(data)))

    def open(self, sealed: bytes) -> str:
        digest, body = sealed[:DIGEST_BYTES], sealed[DIGEST_BYTES:]
        return _xor(body, self._pad(digest, len(body))).decode()

    def _pad(self, digest: bytes, size: int) -> bytes:
        blocks = []
        for n in range(-(-size // PAD_BYTES)):
            h = self._pad_state.copy()
            h.update(digest + n.to_bytes(4, "big"))
            blocks.append(h.digest())
        return b"".join(blocks)[:size]


def _xor(data: bytes, pad: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(len(data), "big")

"""`nextword user-import --user KEY FILE`: a personal word list into a user's model.

FILE: plain text, one word a line, optionally followed by a count ("Anneke 3"); '#' starts a
comment. A word without a count is counted as the server's --user-min-count times, so it is
suggested at once. What is not a single word, or looks like a secret, is refused and listed.
"""
from __future__ import annotations

import sys

import grpc

from service.client import ClientError
from service.client.connect import add_address_flags, connection, first_contact


def add_arguments(p) -> None:
    p.add_argument("file", help="the word list: one word a line, optionally a count after it ('-': standard input)")
    p.add_argument("--user", required=True, help="the user's key (signed: nextword user-key NAME)")
    add_address_flags(p, timeout=10.0)


def read_words(path: str) -> dict[str, int]:
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as e:
        raise ClientError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    words: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
            raise ClientError(f"{path}:{n}: expected a word and maybe a count, got {line.strip()[:60]!r}")
        words[parts[0]] = words.get(parts[0], 0) + (int(parts[1]) if len(parts) == 2 else 0)
    if not words:
        raise ClientError(f"{path} has no words")
    return words


def main(args) -> int:
    words = read_words(args.file)
    conn = connection(args)
    first_contact(conn)
    address = conn.address
    with conn.client() as client:
        try:
            learned = client.import_words(args.user, words)
        except grpc.RpcError as e:
            raise ClientError(f"{address}: {e.code().name}: {e.details()}") from None
    for word in learned.refused:
        print(f"refused: {word} (not one word, or looks like a secret)", file=sys.stderr)
    if not learned.kept:
        raise ClientError(f"nothing imported: {learned.outcome.replace('_', ' ')}")
    print(f"imported {len(words) - len(learned.refused)} words ({learned.words} counted)")
    return 0

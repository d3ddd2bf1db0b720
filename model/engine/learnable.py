"""What of a sent message may be learned: never what looks like a secret, nor a piece of one.

A message is cut at white space into chunks (punctuation around a chunk is not part of it).
A chunk that looks like a secret is dropped whole, and with it every link across it: the
words before and after it are learned as if the message were cut there. The rules (README,
"Privacy"), each a kind of secret that keyboards are asked never to learn:

- a digit anywhere: numbers, PINs, one-time codes, card and phone numbers, "Hunter2xyz",
  "kittycat99", "B7c9x2";
- "@": e-mail addresses and handles ("jane@example.com" teaches neither "jane" nor "example");
- a symbol inside it other than an apostrophe or a hyphen: URLs ("https://...",
  "example.com"), "jane.doe", "p@ss", "x_y", "Tr0ub4dor&3";
- three or more capitals after the first letter, in a chunk not all in capitals
  ("ghpAbCdEfGh"): generated tokens;
- more than MAX_LETTERS letters;
- the chunk right after a word that announces a secret ("password", "pin", "login", ...,
  optionally followed by "is", ":" or "="): "my password is kittycat".
"""
from __future__ import annotations

from model.engine.text import normalize

AROUND = ".,!?;:\"'()[]{}<>«»“”‘’*_~"   # punctuation around a chunk, not part of it
INSIDE_OK = frozenset("'-")            # the only symbols a learnable word holds inside
MAX_LETTERS = 20
MAX_INNER_CAPITALS = 2
ANNOUNCE = frozenset({"password", "passwords", "passwd", "passcode", "passphrase", "pw", "pwd", "pin", "login",
                      "username", "otp"})
BETWEEN = frozenset({"is", "was", "are", ":", "=", "-"})  # may stand between the announcing word and the secret


def secret(chunk: str) -> bool:
    """Does a white-space-delimited chunk look like a secret (see the module doc)?"""
    core = chunk.strip(AROUND)
    if any(c.isdigit() for c in core) or "@" in core:
        return True
    if any(not c.isalpha() and c not in INSIDE_OK for c in core[1:-1]):
        return True
    letters = [c for c in core if c.isalpha()]
    if len(letters) > MAX_LETTERS:
        return True
    return sum(c.isupper() for c in core[1:]) > MAX_INNER_CAPITALS and not core.isupper()


def learnable_parts(message: str) -> list[tuple[str, bool]]:
    """The runs of a message that may be learned, in order, each with whether it starts the
    message (so that only the first run's first word follows the start of a message)."""
    parts, run, starts, announced = [], [], True, False
    for chunk in normalize(message).split():
        core = chunk.strip(AROUND).lower()
        if secret(chunk) or announced and core not in BETWEEN:
            if run:
                parts.append((" ".join(run), starts))
            run, starts, announced = [], False, False
            continue
        run.append(chunk)
        if core in ANNOUNCE:
            announced = True
    if run:
        parts.append((" ".join(run), starts))
    return parts

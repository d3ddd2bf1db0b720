"""What of a sent message may be learned: never what looks like a secret, nor a piece of one.

A message is cut at white space into chunks (punctuation around a chunk is not part of it).
A chunk that looks like a secret is dropped whole, and with it every link across it: the
words before and after it are learned as if the message were cut there. The rules (README,
"Privacy") follow one principle, *learn words, not what stands for a secret*:

- what a word never holds: a digit (numbers, PINs, one-time codes, "Hunter2xyz"), "@"
  (e-mail addresses, handles), a symbol inside it other than an apostrophe or a hyphen
  (URLs, "jane.doe", "Tr0ub4dor&3"), three or more capitals after the first letter in a
  chunk not all in capitals ("ghpAbCdEfGh"), more than MAX_LETTERS letters;
- what looks made up at random: a word that neither the vocabulary nor the main dictionary
  knows and whose letters are improbable for a word (model/engine/dictionary.py: a letter
  trigram model of the dictionary), codes of letters only ("qzvkxbt");
- what a cue announces, in the languages the keyboard layouts serve (English, German,
  French): after "password", "passwort", "mot de passe", "pin", "code", "pass:", ... the
  next CUE_WINDOW chunks, and past a linking word ("is", "ist", "est", ":") the two after
  it: "the password for my bank is tulip";
- numbers spelled out: a run of SPELLED_RUN or more number words ("four seven two nine",
  "vier sieben", "quatre sept");
- the rest of a message after "seed" or "recovery" (a wallet's recovery phrase, returned
  word by word otherwise).

Only a message's first MAX_CHUNKS chunks are read: a typed message is far shorter, and a
pasted page would otherwise cost every other typist a burst of work (tens of ms held).
"""
from __future__ import annotations

import re
from typing import Callable

from model.engine.text import normalize

AROUND = ".,!?;:\"'()[]{}<>«»“”‘’*_~"   # punctuation around a chunk, not part of it
INSIDE_OK = frozenset("'-")            # the only symbols a learnable word holds inside
MAX_LETTERS = 20
MAX_INNER_CAPITALS = 2
CUES = frozenset({  # a secret follows
    "password", "passwords", "passwd", "passcode", "passphrase", "pw", "pwd", "pin", "login", "username", "otp", "code",
    "passwort", "kennwort", "geheimzahl", "zugangscode", "benutzername", "geheimcode",   # German
    "mdp", "identifiant", "motdepasse",                                                 # French
})
COLON_CUES = frozenset({"pass", "key", "token", "secret", "user", "schlüssel", "clé", "cle"})  # a cue when ":" follows
LINKS = frozenset({"is", "was", "are", "ist", "lautet", "war", "est", "c'est", "sont", ":", "=", "-"})
CUE_WINDOW = 4   # chunks after a cue that are never learned
AFTER_LINK = 2   # ... and at least this many after a linking word within that window
PHRASE_CUES = frozenset({"seed", "recovery", "mnemonic", "wiederherstellungsphrase", "récupération", "recuperation"})
NUMBER_WORDS = frozenset({
    "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun",
    "zéro", "un", "deux", "trois", "quatre", "cinq", "sept", "huit", "neuf",
})
SPELLED_RUN = 3
MAX_CHUNKS = 200  # chunks of a message read at most (the first): bounded work per sent message
_REPEATS = re.compile(r"(.)\1\1+")  # "soooo": a letter three or more times, read once


def secret(chunk: str, looks_random: Callable[[str], bool] | None = None) -> bool:
    """Does a white-space-delimited chunk look like a secret by itself (see the module doc)?
    `looks_random` (a word unknown to the keyboard with improbable letters) where known."""
    core = chunk.strip(AROUND)
    if any(c.isdigit() for c in core) or "@" in core:
        return True
    if any(not c.isalpha() and c not in INSIDE_OK for c in core[1:-1]):
        return True
    letters = [c for c in core if c.isalpha()]
    if len(letters) > MAX_LETTERS:
        return True
    if sum(c.isupper() for c in core[1:]) > MAX_INNER_CAPITALS and not core.isupper():
        return True
    return looks_random is not None and bool(core) and looks_random(_REPEATS.sub(r"\1", core))


def cue(core: str, chunk: str, before: list[str]) -> bool:
    """Does this chunk announce a secret ("password", "pass:", "mot de passe")?"""
    return (core in CUES or (core in COLON_CUES and chunk.rstrip(AROUND.replace(":", "")).endswith(":"))
            or (core == "passe" and before[-2:] == ["mot", "de"]))


def learnable_parts(message: str, looks_random: Callable[[str], bool] | None = None) -> list[tuple[str, bool]]:
    """The runs of a message that may be learned, in order, each with whether it starts the
    message (so that only the first run's first word follows the start of a message)."""
    chunks, dropped = dropped_chunks(message, looks_random)
    parts, run, starts = [], [], True
    for chunk, gone in zip(chunks, dropped):
        if gone:
            if run:
                parts.append((" ".join(run), starts))
            run, starts = [], False
            continue
        run.append(chunk)
    if run:
        parts.append((" ".join(run), starts))
    return parts


def dropped_chunks(message: str, looks_random: Callable[[str], bool] | None = None) -> tuple[list[str], list[bool]]:
    """The normalized message's white-space-delimited chunks, and for each whether it is never learned."""
    chunks = normalize(message).split(maxsplit=MAX_CHUNKS)[:MAX_CHUNKS]
    cores = [c.strip(AROUND).lower() for c in chunks]
    dropped = [secret(c, looks_random) for c in chunks]
    window = 0
    for i, core in enumerate(cores):
        if window:
            dropped[i] = True
            window = max(window - 1, AFTER_LINK if core in LINKS else 0)
        if core in PHRASE_CUES:
            dropped[i + 1:] = [True] * (len(chunks) - i - 1)
            break
        if cue(core, chunks[i], cores[:i]):
            window = CUE_WINDOW
    for start in range(len(cores)):  # runs of spelled-out numbers
        end = start
        while end < len(cores) and cores[end] in NUMBER_WORDS:
            end += 1
        if end - start >= SPELLED_RUN:
            dropped[start:end] = [True] * (end - start)
    return chunks, dropped

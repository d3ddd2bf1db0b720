"""What the keyboard learns and shows, through real servers on SQLite and Redis: no secrets,
no junk in the strip, a threshold for new words, a blocklist, and the user in control (one
word forgotten, export, import, incognito)."""
import random
import time
from pathlib import Path

import pytest

from conftest import SHIPPED_MODEL
from helpers import PersonalServer, invented, wait_until
from model.data import load_chitchat
from model.engine.personal import GAINED, GIVEN, TRUST, message_entries
from model.engine.runtime import Runtime
from model.engine.strip import StripBuilder
from model.engine.suggest import Suggester, blocklist, elongated, shown
from model.evaluate import quality
from model.evaluate.command import onnx_scorer

pytestmark = pytest.mark.slow  # real servers


def texts(strip) -> list[str]:
    return [s.text for s in strip]


# ---- never learn a secret ------------------------------------------------------------------

def planted_secrets(rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """100 (message, secret, invented pieces) of the kinds keyboards must never learn."""
    def piece(n: int) -> str:
        return invented(n, rng.choice(["vq", "kz", "jx", "qv"]))

    def luhn(n: int) -> str:
        digits = [4] + [rng.randrange(10) for _ in range(14)]
        total = sum(d if i % 2 else (2 * d - 9 if 2 * d > 9 else 2 * d) for i, d in enumerate(reversed(digits)))
        card = "".join(map(str, digits + [(10 - total % 10) % 10]))
        return " ".join(card[i : i + 4] for i in range(0, 16, 4))

    found = []
    for n in range(100):
        a, b, c = piece(3 * n), piece(3 * n + 1), piece(3 * n + 2)
        kind = n % 11
        secret = [f"{a.capitalize()}{n % 9 + 1}{b}", f"{a[:2].upper()}{n % 10}{b[:2]}{n % 7}{c[:1]}",
                  f"ghp{a.capitalize()}{n}{b.upper()}{n % 5}", f"{a}{n % 90 + 10}", f"{a.capitalize()}{n % 9}{b}&{n % 7}",
                  f"{a}.{b}@{c}.com", f"https://{a}.example.org/{b}", luhn(n), f"+1 (555) {n:03d}-{n * 37 % 10000:04d}",
                  f"{rng.randrange(10 ** 5, 10 ** 6)}", f"x{a[:3].capitalize()}{b[:3].capitalize()}{c[:3].capitalize()}"][kind]
        message = [f"my password is {secret} ok", "the door code is {} see you", "token {} dont share",
                   "login is {} thanks", "wifi key {} for the guests", "mail me at {} tonight", "look at {} later",
                   "my card is {} please", "call me on {} tomorrow", "your code is {} bye", "use {} to sign in"][kind]
        found.append((message if kind == 0 else message.format(secret), secret, [a, b, c]))
    for n in range(100, 110):  # letters only, caught by the word before them
        a, b = piece(3 * n), piece(3 * n + 1)
        found[n - 100] = (f"my password is {a}{b} ok", f"{a}{b}", [a, b])
    for n in range(110, 150):  # shapes beyond the first rules: cues phrased otherwise and in German and
        a, b, c = piece(3 * n), piece(3 * n + 1), piece(3 * n + 2)  # French, codes of letters, a recovery phrase
        code = "".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(9))
        phrase = " ".join(piece(1000 + 12 * n + i) for i in range(12))
        kind = n % 8
        secret = [f"{a}{b}", f"{a}{b}", f"{a}{b}", f"{a}{b}", code, code, phrase, f"{a} {b} {c}"][kind]
        message = ["the password for my bank is {} ok", "pass: {} see you", "mein Passwort ist {} danke",
                   "mon mot de passe est {} merci", "use {} to get in", "the code {} works", "my recovery phrase is {}",
                   "seed words {} keep them"][kind].format(secret)
        found.append((message, secret, [a, b, c] if kind < 4 or kind == 7 else secret.split() if kind == 6 else [code]))
    return found


SPELLED = [("my pin is four seven two nine", "four seven two nine"), ("call five five five two one eight", "five five five two one eight"),
           ("der Code ist vier acht null eins", "vier acht null eins"), ("c'est trois sept huit deux", "trois sept huit deux")]


def test_canary_no_secret_nor_a_piece_of_one_is_ever_shown(store):
    """140 secrets and 4 numbers spelled out among 2,000 ordinary messages of one user; every
    word start of their messages and every prefix of each secret probed, next words and
    completions, k = 10."""
    kind, url = store
    rng = random.Random(5)
    ordinary = load_chitchat().splits["train"][:2000]
    planted = planted_secrets(rng)
    messages = ordinary[:]
    for message, _, _ in planted + [(m, s, []) for m, s in SPELLED]:
        messages.insert(rng.randrange(len(messages) + 1), message)
    pieces = {p.lower() for _, _, ps in planted for p in ps} | {s.lower() for _, s, _ in planted}
    a = PersonalServer(kind, url)
    try:
        key = a.key("canary")
        with a.client() as c:
            for message in messages:
                c.learn(key, message)
            probes = []
            for message, secret, _ in planted:
                starts = [i for i in range(len(message)) if i == 0 or message[i - 1] == " "]
                probes += [message[:i] for i in starts]
                before = message[: message.index(secret.split()[0])]
                probes += [before + secret[:n] for n in range(1, len(secret) + 1)]
            shown_words = {s.text.lower() for probe in probes for s in c.predict(probe, k=10, user=key)}
        leaked = sorted(w for w in shown_words if any(p in w for p in pieces))
        assert not leaked, leaked
        assert len(probes) > 2000
        entries = a.entries("canary")
        assert not [e for e in entries if any(p in e.lower() for p in pieces)]
        spelled_pairs = {" ".join(pair) for _, run in SPELLED for pair in zip(run.split(), run.split()[1:])}
        assert not spelled_pairs & set(entries)  # no two digits of a spelled-out number learned in a row
    finally:
        a.stop()


# ---- the strip ------------------------------------------------------------------------------

def test_a_clean_strip_over_the_typing_simulation():
    """The shipped model over test messages, typed as `nextword evaluate` types them: no strip
    shows a stray letter, an elongation or a non-word."""
    runtime = Runtime(SHIPPED_MODEL, "cpu", threads=0)
    messages = load_chitchat().splits["test"][:300]
    figures = quality.evaluate(messages, StripBuilder.open(runtime.vocab, runtime.dictionary_file, blocklist("default")),
                               onnx_scorer(runtime))
    assert figures["strips"] > 10000 and figures["unclean_strips"] == 0
    unclean = [t for t in runtime.vocab.tokens if t.isalpha() and not shown(t)]
    assert len(unclean) > 100  # there is something to keep out: 102 elongations and 24 letters
    suggester = Suggester(runtime.vocab)
    hm = [runtime.vocab.tokens[i] for i in suggester.candidates("hm")]
    assert hm and not [w for w in hm if elongated(w)]
    assert [w for w in (runtime.vocab.tokens[i] for i in suggester.candidates("hmmm")) if elongated(w)]
    assert "y" in [runtime.vocab.tokens[i] for i in suggester.candidates("y")]  # the letter typed


def test_no_junk_from_the_model_or_the_user(store):
    kind, url = store
    a = PersonalServer(kind, url)
    try:
        key = a.key("junk")
        with a.client() as c:
            for _ in range(3):
                c.learn(key, "soooo y f hmmmm ok")
            for text in ("shut the ", "oh ", "so", "hm", "ok "):
                for strip in (c.predict(text, k=10), c.predict(text, k=10, user=key)):
                    for word in texts(strip):
                        assert shown(word), (text, word)
            assert "soooo" in [w.lower() for w in texts(c.predict("sooo", k=10, user=key))]  # typed as one already
    finally:
        a.stop()


def test_a_word_the_model_does_not_know_is_shown_once_sent_enough():
    a = PersonalServer("sqlite", "", "--user-min-count", "2")
    try:
        key = a.key("threshold")
        with a.client() as c:
            c.learn(key, "see you at Quibblecon")
            assert "Quibblecon" not in texts(c.predict("at Qui", k=10, user=key))
            c.learn(key, "Quibblecon again")
            assert texts(c.predict("at Qui", user=key))[0] == "Quibblecon"
    finally:
        a.stop()


def test_the_blocklist(tmp_path):
    blocked = tmp_path / "blocklist.txt"
    blocked.write_text("# ours\npizza\nzorbleflax\n")
    a = PersonalServer("sqlite", "", "--blocklist", str(blocked))
    try:
        key = a.key("blocklist")
        with a.client() as c:
            everyone = [texts(c.predict(t, k=10)) for t in ("I love ", "I love pi", "I love pizzq", "I love pizzq ")]
            assert not [w for strip in everyone for w in strip if w.lower() == "pizza"]  # not suggested, not a correction
            assert c.predict("I love pizzq ").autocorrect is None or c.predict("I love pizzq ").autocorrect.replacement != "pizza"
            assert c.predict("a zorbleflax ").autocorrect is None  # typed in full: never corrected away
            c.learn(key, "I love pizza")
            assert "pizza" in texts(c.predict("I love pi", k=10, user=key))  # this user sent it
    finally:
        a.stop()
    default = PersonalServer("sqlite", "")
    try:
        with default.client() as c:
            for word in sorted(blocklist("default"))[:40]:
                assert word not in [w.lower() for w in texts(c.predict(word[:-1], k=10))]
    finally:
        default.stop()


# ---- the user in control ----------------------------------------------------------------------

def test_one_word_forgotten_leaves_every_process_and_the_store(store, tmp_path):
    kind, url = store
    a = PersonalServer(kind, url, data_dir=str(tmp_path))
    b = PersonalServer(kind, url, data_dir=str(tmp_path))
    try:
        key = a.key("forget-word")
        with a.client() as ca, b.client() as cb:
            ca.learn(key, "dinner with Zorblax and Quux")
            assert wait_until(lambda: "Zorblax" in a.entries("forget-word"), timeout=5)
            assert "Zorblax" in texts(cb.predict("with Zo", k=5, user=key))     # b holds the user
            love = texts(cb.predict("I love ", k=3, user=key))[0]                # the model's own best word
            ca.forget(key, word="Zorblax")
            ca.forget(key, word=love)
            assert not [e for e in a.entries("forget-word") if "zorblax" in e.lower()]
            assert "Quux" in a.entries("forget-word")
            time.sleep(1.5)
            assert "Zorblax" not in texts(cb.predict("with Zo", k=10, user=key))
            assert love not in texts(cb.predict("I love ", k=10, user=key))      # suppressed for this user
            assert love in texts(cb.predict("I love ", k=3))                     # and only for them
            cb.learn(key, f"I love {love}")                                     # sent again: back
            assert love in texts(cb.predict("I love ", k=10, user=key))
    finally:
        a.stop()
        b.stop()


def test_export_holds_exactly_what_was_learned_and_import_adds_words(store):
    kind, url = store
    a = PersonalServer(kind, url)
    try:
        key, other = a.key("export"), a.key("someone-else")
        sent = ["dinner with Anneke", "see you at Quibble's", "dinner again"]
        with a.client() as c:
            c.learn(other, "Zorblax is another user's word")
            for message in sent:
                c.predict(message[:3], user=key)  # typed first: the scale's evidence is taken (a typist's model is at hand)
                assert c.learn(key, message).kept
            exported = c.export(key)
            want = {}
            for message in sent:
                for entry, count in message_entries(message).items():
                    want[entry] = want.get(entry, 0) + count
            assert {e["text"]: e["count"] for e in exported["entries"] if not e["text"].startswith(TRUST)} == want
            assert {e["text"] for e in exported["entries"] if e["text"].startswith(TRUST)} == {GAINED, GIVEN}  # the scale
            assert all(e["last_seen"] > time.time() - 60 for e in exported["entries"])
            assert exported["suppressed"] == []
            imported = c.import_words(key, {"Plimsollqa": 3, "Hunter2": 1, "Quibblecon": 0})
            assert imported.kept and imported.refused == ("Hunter2",)
            assert texts(c.predict("a Plim", user=key))[0] == "Plimsollqa"
            counts = {e["text"]: e["count"] for e in c.export(key)["entries"]}
            assert counts["Plimsollqa"] == 3 and counts["Quibblecon"] == 1 and "Hunter2" not in counts
    finally:
        a.stop()


def test_incognito_learns_nothing_even_on_send(store):
    kind, url = store
    a = PersonalServer(kind, url)
    try:
        key = a.key("incognito")
        with a.client() as c:
            c.learn(key, "dinner with Anneke")
            with c.session(user=key, incognito=True) as typing:
                assert "Anneke" not in texts(typing.text("with Ann"))
                typing.text("my secret plans with Vexquirt")
                learned = typing.send().learned
                assert learned.outcome == "incognito" and not learned.kept
                typing.incognito = False
                assert texts(typing.text("with Ann"))[0] == "Anneke"
            assert "Anneke" not in texts(c.predict("with Ann", k=10, user=key, incognito=True))
            time.sleep(0.8)
        assert "Vexquirt" not in a.entries("incognito") and not [e for e in a.entries("incognito") if "vexquirt" in e]
    finally:
        a.stop()


def test_the_command_line_exports_and_imports(tmp_path):
    from conftest import nextword

    a = PersonalServer("sqlite", "")
    try:
        key = a.key("cli")
        words = tmp_path / "words.txt"
        words.write_text("Quibblecon 2\nAnneke\n# a comment\nHunter2\n")
        done = nextword("user-import", words, "--user", key, "--address", a.server.address)
        assert "imported 2 words" in done.stdout and "refused: Hunter2" in done.stderr
        out = nextword("user-export", "--user", key, "--address", a.server.address)
        import json

        data = json.loads(out.stdout)
        assert {e["text"] for e in data["entries"]} == {"Quibblecon", "Anneke"} and data["suppressed"] == []
        bad = nextword("user-import", tmp_path / "missing.txt", "--user", key, "--address", a.server.address, check=False)
        assert bad.returncode == 2 and "cannot read" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        a.stop()
    assert Path(a.server.data_dir).exists()

"""`nextword dictionary`: the main dictionary of a model directory (model/engine/dictionary.py).

Words and frequencies come from wordfreq's large English list (drawn from subtitles, chat,
Twitter, Reddit, Wikipedia, books and the web: rspeer/wordfreq, data CC BY-SA 4.0); a word is
kept only when a spelling dictionary made for people lists it too (Debian's SCOWL lists,
`wamerican-huge`), which also gives its casing ("Utah", "iPhone") and leaves out the
misspellings that are frequent on the web ("definately", "recieve"): a dictionary that knew
them would stop autocorrect from fixing them. Then the strip's own rules (no elongations,
stray letters or digits: model/engine/suggest.shown) and the default blocklist, and a
frequency floor (--min-zipf). `nextword export` runs the same build, so a retrained model
gets a dictionary too.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from model.engine.contract import CARD, DICTIONARY, MANIFEST, SHIPPED_MODEL
from model.engine.errors import UserError
from model.engine.suggest import blocklist, shown
from model.engine.text import keyboard_form

WORDLIST = Path("/usr/share/dict/american-english-huge")     # Debian's wamerican-huge (SCOWL size 70)
COMMON = Path("/usr/share/dict/american-english")            # Debian's wamerican (SCOWL size 50)
MIN_ZIPF = 1.0  # wordfreq's floor for its large list: keep all it has (chosen by measurement: docs/DESIGN.md)
SOURCE = ("wordfreq 3.1.1 'large' English list (rspeer/wordfreq; data CC BY-SA 4.0), kept where SCOWL "
          "(Debian wamerican-huge; SCOWL's permissive licence) lists the word, with SCOWL's casing")


def read_words(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").split()
    except OSError as e:
        raise UserError(f"cannot read the word list {path}: {e.strerror} (Debian: apt-get install wamerican-huge "
                        "wamerican)") from None


def casings(path: Path, common: Path) -> dict[str, str]:
    """lower-cased word -> its written form in a word list. Where the list has it both ways,
    lower case wins only when the list of common words has it so ("bill", not "Bill"): SCOWL's
    largest list also holds rare lower-case senses of names ("hamburg", a kind of grape)."""
    lower = {w for w in read_words(common) if w.islower()}
    forms: dict[str, str] = {}
    for word in read_words(path):
        low = word.lower()
        if low not in forms or (word == low and (low in lower or forms[low].lower() == forms[low])):
            forms[low] = keyboard_form(word)
        elif word != low and forms[low] == low and low not in lower:
            forms[low] = keyboard_form(word)
    return forms


def build(wordlist: Path = WORDLIST, common: Path = COMMON, min_zipf: float = MIN_ZIPF) -> list[tuple[str, float]]:
    """(written form, Zipf frequency) of every kept word, most frequent first."""
    try:
        from wordfreq import get_frequency_dict
    except ImportError:
        raise UserError("building the dictionary needs wordfreq: pip install -e '.[train]'") from None
    forms, blocked = casings(wordlist, common), blocklist("default")
    entries = []
    for low, frequency in get_frequency_dict("en", "large").items():
        form = forms.get(low)
        zipf = round(math.log10(frequency * 1e9), 2)
        if form is not None and zipf >= min_zipf and shown(form) and low not in blocked:
            entries.append((form, zipf))
    entries.sort(key=lambda e: (-e[1], e[0]))
    return entries


def write(model_dir: Path, entries: list[tuple[str, float]], min_zipf: float) -> dict:
    """dictionary.txt into a model directory; returns the manifest's "dictionary" block."""
    (model_dir / DICTIONARY).write_text("".join(f"{form}\t{zipf:.2f}\n" for form, zipf in entries), encoding="utf-8")
    return {"file": DICTIONARY, "words": len(entries), "min_zipf": min_zipf, "source": SOURCE}


def add_arguments(p) -> None:
    p.add_argument("--model-dir", required=True, help="the model directory to give a dictionary (its manifest is updated)")
    p.add_argument("--wordlist", default=str(WORDLIST), help="a spelling word list, one word a line: which words are kept, and their casing")
    p.add_argument("--common-wordlist", default=str(COMMON), help="a smaller list of common words: where a word is written "
                   "both ways, lower case wins only if this list has it so")
    p.add_argument("--min-zipf", type=float, default=MIN_ZIPF, help="leave out words rarer than this Zipf frequency")
    p.add_argument("--evaluation", nargs="+", default=[], metavar="LABEL=JSON",
                   help="figures to record beside it: JSON written by `nextword evaluate --model-dir MODEL_DIR --json` "
                        "(its dictionary and the same graph), each with a label for the text it measured")
    p.add_argument("--replace-shipped-model", action="store_true", help="allow MODEL_DIR to be model/pretrained (maintainers only)")


COLUMNS = {"lstm": "LSTM + dictionary", "lstm_no_dictionary": "LSTM alone", "trigram_kn": "KN trigram + dictionary"}


def evaluations(pairs: list[str], model_dir: Path) -> list[dict]:
    """The figures of `nextword evaluate --json` files, as the manifest keeps them."""
    found = []
    for pair in pairs:
        label, _, path = pair.rpartition("=")
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read evaluation {path}: {e}") from None
        graph = model_dir / data.get("graph", "")
        if not data.get("dictionary") or not graph.is_file() or hashlib.sha1(graph.read_bytes()).hexdigest() != data.get("graph_sha1"):
            raise UserError(f"{path} was not measured on this model's graph with a dictionary")
        figures = {COLUMNS[k]: {f: data[k][f] for f in ("ksr_3", "top3_accuracy", "oov_completed")} for k in COLUMNS if k in data}
        found.append({"text": label or Path(path).stem, "messages": data["messages"], "figures": figures})
    return found


def main(args) -> int:
    model_dir = Path(args.model_dir)
    if model_dir.resolve() == SHIPPED_MODEL.resolve() and not args.replace_shipped_model:
        raise UserError(f"{model_dir} is the shipped model; pass --replace-shipped-model to write into it")
    manifest_path = model_dir / MANIFEST
    try:
        meta = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {manifest_path}: {e}") from None
    meta["dictionary"] = write(model_dir, build(Path(args.wordlist), Path(args.common_wordlist), args.min_zipf), args.min_zipf)
    if args.evaluation:
        meta["dictionary"]["evaluation"] = evaluations(args.evaluation, model_dir)
    manifest_path.write_text(json.dumps(meta, indent=2) + "\n")
    from model.export import card
    card_path = model_dir / CARD
    if card_path.is_file():
        card_path.write_text(card.with_dictionary(card_path.read_text(), meta))
    size = (model_dir / DICTIONARY).stat().st_size
    print(f"wrote {model_dir / DICTIONARY}: {meta['dictionary']['words']:,} words ({size / 1e6:.1f} MB)")
    return 0

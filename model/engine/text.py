"""Tokenizer and vocabulary: the one piece of code shared by training and serving.

Pure Python (no torch, no numpy) so the service imports exactly what training used.

Choices (docs/DESIGN.md, "Tokens"):
- Chat text as typed: a word is letters with inner apostrophes, so "don't", "I'm",
  "y'all" are one token; curly apostrophes are read as "'".
- A number is its own token ("2018", "3.5"); rare numbers map to <num>, not <unk>.
- Every other visible character is a token of its own (punctuation, emoji), and an
  emoji keeps its modifiers (skin tone, variation selector, ZWJ sequence) attached.
- The vocabulary is case-insensitive: ids are looked up by the lower-cased token, and
  vocab.txt stores each word in its usual written form ("I", "iOS", "Provo", "hello"),
  the most common casing seen away from the start of a sentence. The service uses that
  form, then applies keyboard casing (sentence start, typed prefix) on top.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

TOKENIZER_VERSION = "1"

UNK, BOS, EOS, NUM = "<unk>", "<s>", "</s>", "<num>"
SPECIALS = (UNK, BOS, EOS, NUM)
UNK_ID, BOS_ID, EOS_ID, NUM_ID = range(4)

_LETTER = r"[^\W\d_]"
_EMOJI_TAIL = "(?:[\uFE0E\uFE0F\u20E3\U0001F3FB-\U0001F3FF\U000E0020-\U000E007F]|\u200D\\S)*"
TOKEN_RE = re.compile(
    rf"(?P<word>{_LETTER}[^\W_]*(?:'{_LETTER}[^\W_]*)*)"  # letters, inner digits/apostrophes
    r"|(?P<num>\d+(?:[.,:]\d+)*)"
    rf"|(?P<other>\S{_EMOJI_TAIL})"
)
# The partial word at the end of typed text: what a completion must start with.
PARTIAL_RE = re.compile(rf"(?:{_LETTER}[^\W_]*(?:'[^\W_]*)*)$")
SENTENCE_END = frozenset(".!?")


def normalize(text: str) -> str:
    """Read curly apostrophes as straight ones, as most keyboards type both."""
    return text.replace("\u2019", "'").replace("\u02bc", "'")


def tokenize(text: str) -> list[str]:
    """Split typed text into tokens; never raises, never drops a visible character."""
    return [m.group() for m in TOKEN_RE.finditer(normalize(text))]


def token_spans(text: str) -> list[tuple[str, int, int, bool]]:
    """(token, start, end, is_word) for each token of already-normalized text."""
    return [(m.group(), m.start(), m.end(), m.lastgroup == "word") for m in TOKEN_RE.finditer(text)]


def is_word(token: str) -> bool:
    """A suggestible token: contains a letter and is not a special token."""
    return token not in SPECIALS and any(c.isalpha() for c in token)


def is_number(token: str) -> bool:
    return token[:1].isdigit()


def split_typed(text: str) -> tuple[str, str]:
    """Split typed text into (context, partial word being typed; '' after a separator)."""
    return split_normalized(normalize(text))


def split_normalized(text: str) -> tuple[str, str]:
    """split_typed for text that is normalized already (no second pass over it)."""
    if not text or text[-1].isspace():
        return text, ""
    last = text.rsplit(None, 1)[-1]  # scan from the end only: cost independent of length
    m = PARTIAL_RE.search(last)
    if m is None:
        return text, ""
    return text[: len(text) - len(last) + m.start()], m.group()


def parent_context(context: str) -> str:
    """The context without its last whitespace-delimited chunk: 'how are you ' -> 'how are '.

    Tokens never span white space, so tokenize(parent) + tokenize(rest) == tokenize(context):
    the state after a context can be extended from its parent's. Scans from the end only:
    the cost does not grow with the length of the text.
    """
    stripped = context.rstrip()
    if not stripped:
        return ""
    last = stripped.rsplit(None, 1)[-1]
    return context[: len(stripped) - len(last)]


def keyboard_form(word: str) -> str:
    """The usual written form of a word in a chat: "i" and its contractions are "I"."""
    low = word.lower()
    if low == "i" or low.startswith("i'"):
        return "I" + word[1:]
    return word


@dataclass(frozen=True)
class Vocab:
    """Token list (id = index) with case-insensitive lookup."""

    tokens: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "_ids", {t.lower(): i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        i = self._ids.get(token.lower())
        if i is not None and i >= len(SPECIALS):
            return i
        return NUM_ID if is_number(token) else UNK_ID

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.id(t) for t in tokens]

    def encode_text(self, text: str) -> list[int]:
        return self.encode(tokenize(text))

    @classmethod
    def build(cls, messages: Iterable[str], size: int, min_count: int = 1) -> "Vocab":
        """The `size` most frequent tokens (specials included) of the messages."""
        if size <= len(SPECIALS):
            raise ValueError(f"vocabulary size must be greater than {len(SPECIALS)}, got {size}")
        counts: Counter[str] = Counter()
        forms: Counter[str] = Counter()
        for message in messages:
            sentence_start = True
            for tok in tokenize(message):
                low = tok.lower()
                counts[low] += 1
                if not sentence_start:
                    forms[tok] += 1
                sentence_start = tok in SENTENCE_END
        best_form: dict[str, tuple[int, str]] = {}
        for form, n in forms.items():
            low = form.lower()
            if n > best_form.get(low, (0, ""))[0] or (n == best_form[low][0] and form == low):
                best_form[low] = (n, form)
        kept = [w for w, n in counts.most_common() if n >= min_count][: size - len(SPECIALS)]
        kept.sort(key=lambda w: (-counts[w], w))
        return cls(SPECIALS + tuple(keyboard_form(best_form.get(w, (0, w))[1]) for w in kept))

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(self.tokens) + "\n")

    @classmethod
    def load(cls, path) -> "Vocab":
        with open(path, encoding="utf-8") as f:
            tokens = tuple(line.rstrip("\n") for line in f if line.rstrip("\n"))
        if tokens[: len(SPECIALS)] != SPECIALS:
            raise ValueError(f"{path}: first lines must be the special tokens {', '.join(SPECIALS)}")
        return cls(tokens)

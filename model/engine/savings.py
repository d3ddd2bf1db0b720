"""Keystroke savings, the one rule (docs/DESIGN.md, "How quality is measured").

Every character typed by hand costs 1; accepting a suggestion costs ACCEPT and inserts the
word and a space, and that space is free (typing punctuation right after it replaces it, as
phone keyboards do). Savings = 1 - keystrokes / characters of the text sent. `nextword
evaluate` (model/evaluate/quality.py, typist.py), the terminal keyboard (service/keyboard/
state.py) and the web page (through service/keyboard/web.py) all count by these functions.
"""
from __future__ import annotations

ACCEPT = 1  # keystrokes to accept a suggestion from the strip


def savings(keystrokes: int, characters: int) -> float:
    return 1 - keystrokes / characters if characters else 0.0


def characters(text: str, auto_space: bool) -> int:
    """Characters of a message: the space an accepted word brought, still last, is not one."""
    return len(text) - (1 if auto_space and text.endswith(" ") else 0)


class Gaps:
    """The keystrokes of what lies between words, typing a message from its start: every
    character, but the space right after an accepted word was inserted with it."""

    def __init__(self):
        self.position, self.free_space = 0, False

    def before(self, start: int) -> int:
        """Keystrokes of the gap up to a token starting at `start`."""
        return start - self.position - (1 if self.free_space and start > self.position else 0)

    def entered(self, end: int, accepted: bool) -> None:
        """A token ending at `end` stands; `accepted`: taken from the strip (its space comes free)."""
        self.position, self.free_space = end, accepted

"""A typing client's state, like a phone keyboard's: the text, the strip, the keystrokes.

No UI and no network here (the terminal and web clients draw it and fetch the strip).
Keystrokes are counted by the rule `nextword evaluate` counts by (model/engine/savings.py): a
typed character is 1, accepting a suggestion inserts the word and a space, and that space is
free: typing punctuation right after it replaces it ("you" + "?" -> "you?"), as phone
keyboards do. So typing a message by the same rule gives the same savings.

Autocorrect, as on a phone: when the strip for a text ending in a separator carries an
autocorrect, the word is replaced (no keystroke); a backspace right after undoes it
(that backspace is the keystroke) and leaves the word as typed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from model.engine.savings import ACCEPT, characters, savings
from model.engine.text import split_typed


def strip_order(suggestions: list) -> list:
    """Phone layout, three slots: the most likely in the middle, the second on the left, the
    third on the right; None where there is nothing (a lone suggestion sits in the middle)."""
    ranked = list(suggestions[:3]) + [None] * (3 - min(len(suggestions), 3))
    return [ranked[1], ranked[0], ranked[2]]


@dataclass
class Keyboard:
    text: str = ""
    suggestions: list = field(default_factory=list)  # best first, for `suggestions_for`
    suggestions_for: str | None = None               # the text the suggestions answer
    keystrokes: int = 0
    auto_space: bool = False                          # text ends with the space of an accepted word
    session_keystrokes: int = 0
    session_characters: int = 0
    undo: tuple[str, str] | None = None               # (text after an autocorrect, text before it)
    declined: str | None = None                       # a text whose autocorrect was taken back
    accepted: bool = False                            # a suggestion was accepted since the server last heard

    def type(self, char: str) -> None:
        if self.auto_space and not char.isspace() and not char.isalnum():
            self.text = self.text[:-1]  # punctuation takes the place of the automatic space
        self.text += char
        self.keystrokes += 1
        self.auto_space, self.undo = False, None

    def backspace(self) -> None:
        if self.undo and self.undo[0] == self.text:  # right after an autocorrect: take it back
            self.text = self.declined = self.undo[1]
            self.undo = None
            self.keystrokes += 1
            return
        if self.text:
            self.text = self.text[:-1]
            self.keystrokes += 1
            self.auto_space, self.undo = False, None

    def show(self, suggestions, for_text: str) -> bool:
        """Take the server's answer for `for_text`: the strip, and its autocorrect if the
        text is still that. Returns True when the text changed (it was autocorrected)."""
        self.suggestions, self.suggestions_for = list(suggestions), for_text
        fix = getattr(suggestions, "autocorrect", None)
        if fix is None or for_text != self.text or self.undo is not None or for_text == self.declined:
            return False
        corrected = fix.apply(self.text)
        if corrected == self.text:
            return False
        self.undo, self.text = (corrected, self.text), corrected
        return True

    def accept(self, rank: int) -> bool:
        """Accept the rank-th best suggestion (0 = best): replaces the partial word, adds a space."""
        if self.suggestions_for != self.text or rank >= len(self.suggestions):
            return False
        _, partial = split_typed(self.text)
        self.text = self.text[: len(self.text) - len(partial)] + self.suggestions[rank].text + " "
        self.keystrokes += ACCEPT
        self.auto_space, self.undo, self.accepted = True, None, True
        return True

    def characters(self) -> int:
        """Characters of the message: the automatic space after a last accepted word is not one."""
        return characters(self.text, self.auto_space)

    def clear(self) -> None:
        """Start a new message; the session totals keep what this one saved."""
        self.session_keystrokes += self.keystrokes
        self.session_characters += self.characters()
        self.text, self.keystrokes, self.auto_space, self.undo = "", 0, False, None
        self.suggestions, self.suggestions_for = [], None

    def savings(self) -> tuple[float, float]:
        """(this message, session so far): 1 - keystrokes / characters."""
        keys, chars = self.session_keystrokes + self.keystrokes, self.session_characters + self.characters()
        return savings(self.keystrokes, self.characters()), savings(keys, chars)

"""The typing clients' keyboard state: accepting a suggestion, the automatic space, savings."""
from dataclasses import dataclass

from service.client import Autocorrect, Strip
from service.keyboard.state import Keyboard, strip_order


@dataclass
class Word:
    text: str


def showing(kb: Keyboard, *words: str) -> None:
    kb.suggestions, kb.suggestions_for = [Word(w) for w in words], kb.text


def test_accept_replaces_the_partial_word_and_adds_a_space():
    kb = Keyboard()
    for ch in "how are yo":
        kb.type(ch)
    showing(kb, "you", "your")
    assert kb.accept(0) and kb.text == "how are you " and kb.auto_space
    assert kb.keystrokes == len("how are yo") + 1


def test_a_stale_strip_cannot_be_accepted():
    kb = Keyboard()
    kb.type("h")
    showing(kb, "hi")
    kb.type("e")  # the strip answered "h", not "he"
    assert not kb.accept(0) and kb.text == "he"
    showing(kb, "hey")
    assert not kb.accept(3)  # no fourth suggestion


def test_punctuation_takes_the_place_of_the_automatic_space():
    kb = Keyboard()
    kb.type("y")
    showing(kb, "you")
    kb.accept(0)
    kb.type("?")
    assert kb.text == "you?" and not kb.auto_space
    kb.type(" ")
    kb.type("o")
    showing(kb, "ok")
    kb.accept(0)
    kb.type("k")  # a letter after the automatic space keeps it
    assert kb.text == "you? ok k"


def test_savings_count_the_message_without_its_last_automatic_space():
    kb = Keyboard()
    kb.type("y")
    showing(kb, "you")
    kb.accept(0)  # 2 keystrokes for "you" (3 characters; the space after it is not one)
    now, session = kb.savings()
    assert kb.characters() == 3 and now == session == 1 - 2 / 3
    kb.clear()
    for ch in "ok":
        kb.type(ch)
    assert kb.savings() == (0.0, 1 - (2 + 2) / (3 + 2))
    kb.backspace()
    assert kb.text == "o" and kb.keystrokes == 3


def test_the_strip_puts_the_best_in_the_middle():
    assert strip_order(["a", "b", "c"]) == ["b", "a", "c"]
    assert strip_order(["a"]) == [None, "a", None] and strip_order([]) == [None, None, None]
    assert strip_order(["a", "b"]) == ["b", "a", None]


def test_autocorrect_on_space_and_a_backspace_takes_it_back():
    kb = Keyboard()
    for ch in "how are ypu ":
        kb.type(ch)
    strip = Strip([Word("doing")], Autocorrect("ypu", "you", 0.98, 1))
    assert kb.show(strip, "how are ypu ") and kb.text == "how are you "
    assert kb.keystrokes == len("how are ypu ")  # the correction costs no keystroke
    kb.backspace()  # right after: undo, not a deleted space
    assert kb.text == "how are ypu " and kb.keystrokes == len("how are ypu ") + 1
    assert not kb.show(strip, "how are ypu ") and kb.text == "how are ypu "  # taken back: not again


def test_autocorrect_is_not_applied_to_a_text_that_moved_on():
    kb = Keyboard()
    for ch in "ypu d":
        kb.type(ch)
    assert not kb.show(Strip([], Autocorrect("ypu", "you", 0.98, 1)), "ypu ")  # answers an older text
    assert kb.text == "ypu d"
    kb.text = "ypu "
    kb.show(Strip([], Autocorrect("ypu", "you", 0.98, 1)), "ypu ")
    kb.type("d")
    kb.backspace()  # a backspace after other typing is an ordinary one
    assert kb.text == "you "

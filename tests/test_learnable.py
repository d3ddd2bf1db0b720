"""What of a sent message may be learned (model/engine/learnable.py): each rule, with what it
must catch and what it must leave alone."""
from test_dictionary import STRIPS

from model.engine.learnable import MAX_CHUNKS, learnable_parts, secret
from model.engine.personal import message_entries


def learned(message: str) -> str:
    """The learnable runs of a message, joined with " | " where something was dropped."""
    return " | ".join(part for part, _ in learnable_parts(message, STRIPS.looks_random))


def test_what_a_word_never_holds():
    for chunk in ("Hunter2xyz", "jane@example.com", "https://example.org/x", "Tr0ub4dor&3", "ghpAbCdEfGh", "a" * 21):
        assert secret(chunk), chunk
    for chunk in ("don't", "well-known", "NASA", "McDonald's", "hello!"):
        assert not secret(chunk), chunk


def test_letters_that_look_made_up_at_random():
    for code in ("qzvkxbtw", "xkqzvbt", "bvnmrtxl"):
        assert STRIPS.looks_random(code) and learned(f"use {code} to get in") == "use | to get in"
    for word in ("Anneke", "indefatigable", "doesnt", "sooooooo", "kittycat", "Uchtdorf", "hehehe"):
        assert not STRIPS.looks_random(word), word
    assert not STRIPS.without_dictionary().looks_random("qzvkxbtw")  # no dictionary, no judge


def test_cues_in_three_languages_and_phrased_otherwise():
    assert learned("the password for my bank is tulip ok thanks") == "the password | thanks"
    assert learned("pass: tulip see you at noon") == "pass: | noon"  # the window: four chunks
    assert learned("I'll pass on that") == "I'll pass on that"  # no colon: not a cue
    assert learned("mein Passwort ist tulpe danke dir sehr") == "mein Passwort | sehr"
    assert learned("mon mot de passe est tulipe merci bien mon ami") == "mon mot de passe | mon ami"
    assert learned("my password is kittycat") == "my password"


def test_numbers_spelled_out_and_recovery_phrases():
    assert learned("my number is five five five two one eight ok") == "my number is | ok"
    assert learned("one or two of them") == "one or two of them"  # a run of two is no number
    assert learned("my recovery phrase is apple river stone cloud") == "my recovery"
    assert learned("I planted a seed today") == "I planted a seed"  # the cost of the rule: rare in chat


def test_only_a_messages_first_chunks_are_read():
    words = [f"word{chr(97 + n % 26)}{chr(97 + n // 26 % 26)}" for n in range(MAX_CHUNKS + 50)]
    learned = message_entries(" ".join(words))
    assert words[MAX_CHUNKS - 1] in learned and words[MAX_CHUNKS] not in learned  # bounded work per message

"""The user model and its evaluation, on examples worked by hand (model/engine/personal.py)."""
import numpy as np
import pytest
from test_quality import VOCAB, constant_scorer

from model.data import encode_messages
from model.engine import personal
from model.engine.personal import Personalizer, UserModel, contexts_of, message_entries
from model.engine.strip import StripBuilder
from model.engine.suggest import Suggester
from model.evaluate import personal as evaluate_personal


def test_a_message_gives_words_as_sent_and_lower_cased_contexts():
    assert message_entries("Hi, Zork!") == {"Hi": 1, "<s> hi": 1, "Zork": 1, ", zork": 1, "hi , zork": 1}
    assert contexts_of("") == ("<s>",)
    assert contexts_of("Hi ") == ("hi", "<s> hi")
    assert contexts_of("well how are ") == ("are", "how are")  # the message did not start at "how"
    assert contexts_of("ok. so ") == ("so", ". so")


def test_counts_saturate():
    user = UserModel()
    user.add("Zork", personal.MAX_COUNT - 1, 1.0)
    user.add("Zork", 5, 2.0)
    assert user.entries["Zork"] == [personal.MAX_COUNT, 2.0] and user.words["zork"] == personal.MAX_COUNT


def test_an_empty_user_model_changes_nothing():
    row = constant_scorer([np.zeros(3)])[0][0]
    plain = Suggester(VOCAB).strip(row, "", "th", 3)
    mixed = Personalizer(VOCAB).strip(row, UserModel(), "", "th", 3)
    assert [c.text for c in mixed] == [c.text for c in plain]


def test_evaluation_counting_worked_example():
    # "hi zork." typed twice by one user; constant LSTM: the .4, there .3, hi .15, them .05, . .04,
    # </s> .04, <unk> .01, <s> .005, <num> .005; tempered (p ** .7, renormalized): the .3203,
    # there .2619, hi .1612, them .0747, <unk> .0242.
    # 1st time the user model is empty: both columns as in test_quality (3 suggestions: 6 keys,
    # 1: 7 keys, 5: 6 keys). Then it learns hi, zork, "<s> hi", "hi zork", "<s> hi zork".
    # 2nd time, before "zork": contexts "<s> hi" and "hi", each followed once by one word:
    #   .4 * 1/(1 + 8) = .0444 for "<s> hi", (1 - .0444) * .2/9 = .0212 for "hi"; b = .02 * 2/1002;
    #   r = .03 (recent: hi, zork); the LSTM keeps 1 - .0444 - .0212 - b - .03 = .9043.
    #   P(zork) = .9043 * .0242/2 + .0444 + .0212 + b/2 + .03/64 = .077: 4th after the .290,
    #   there .237, hi .146; after 'z' it is 1st. So: 5 suggestions 1 key, 1 and 3 suggestions 2 keys.
    #   Before "hi" (context <s>): P(hi) = .175, 3rd: as without the user.
    # Without: 12 of 16 keys (3), 14 (1), 12 (5). With: 6+4 (3), 7+5 (1), 6+3 (5).
    # worked with a threshold of 1 (zork shown once sent once); the default's effect is tested below
    result = evaluate_personal.run(constant_scorer, StripBuilder(VOCAB, min_count=1), "test", ["hi zork.", "hi zork."])["one user"]
    without, with_user = result["without"], result["with"]
    assert without["characters"] == with_user["characters"] == 16
    assert without["ksr_3"] == pytest.approx(1 - 12 / 16) and with_user["ksr_3"] == pytest.approx(1 - 10 / 16)
    assert without["ksr_1"] == pytest.approx(1 - 14 / 16) and with_user["ksr_1"] == pytest.approx(1 - 12 / 16)
    assert without["ksr_5"] == pytest.approx(1 - 12 / 16) and with_user["ksr_5"] == pytest.approx(1 - 9 / 16)
    # the figures above were worked with these constants
    assert (personal.CONTEXT_WEIGHT, personal.CONTEXT_TRUST, personal.TEMPERATURE) == ((0.2, 0.4), 8.0, 0.7)


def test_the_mixture_is_as_worked_by_hand():
    user = UserModel()
    user.learn("hi zork.", 0.0)
    row = constant_scorer([np.zeros(3)])[0][0]
    top = {s.word: s.probability for s in Personalizer(VOCAB, min_count=1).top(row, user, contexts_of("hi "), "", 5)}
    assert list(top) == ["the", "there", "hi", "zork", "them"]
    assert top["zork"] == pytest.approx(0.077, abs=5e-4) and top["the"] == pytest.approx(0.2897, abs=5e-4)


def test_a_new_word_is_shown_only_once_sent_min_count_times():
    row = constant_scorer([np.zeros(3)])[0][0]
    user = UserModel()
    for _ in range(personal.MIN_COUNT):
        assert "zork" not in [s.word for s in Personalizer(VOCAB).top(row, user, contexts_of("hi "), "z", 5)]
        user.learn("hi zork.", 0.0)
    assert "zork" in [s.word for s in Personalizer(VOCAB).top(row, user, contexts_of("hi "), "z", 5)]


def test_the_evidence_for_the_users_scale_is_as_worked_by_hand():
    # "hi zork." learned once, then sent again (threshold 1, the constant LSTM above):
    # "hi" after <s>: the user's weight .2/9 (followers) + b + .03 (recent) = .0523 unscaled;
    #   its part of P(hi) = .0222 + b/2 + .03/64 = .0227 of .175: gained .129.
    # "zork" after "hi": weight .0444 + .0212 + b + .03 = .0956; part .0661 of .077: gained .858.
    # So gained .987 and given .148, in hundredths; what the part earned per weight goes from the
    # reference 1.19 to (3 * 1.19 + .987) / (3 + .148) = 1.45, and the scale to that / 1.19 = 1.22.
    user = UserModel()
    row = constant_scorer([np.zeros(3)])[0][0]
    personalizer = Personalizer(VOCAB, min_count=1)
    assert personalizer.evidence(user, [(row, "", "hi", False), (row, "hi ", "zork", False)]) == {}  # nothing known: nothing to weigh
    user.learn("hi zork.", 0.0)
    text, words = personal.learned_words("hi zork.")
    assert [(start, word) for _, start, word in words] == [(0, "hi"), (3, "zork")]
    evidence = personalizer.evidence(user, [(row, text[:start], word, False) for _, start, word in words])
    assert evidence[personal.GAINED] == pytest.approx(98.7, abs=1) and evidence[personal.GIVEN] == pytest.approx(14.8, abs=1)
    assert user.scale() == 1.0
    for entry, count in evidence.items():
        user.add(entry, count, 1.0)
    assert user.scale() == pytest.approx((3 * 1.19 + evidence[personal.GAINED] / 100) / (3 + evidence[personal.GIVEN] / 100) / 1.19)
    assert user.scale() == pytest.approx(1.22, abs=0.01)
    assert "<trust>" not in user.followers and user.total == 2  # evidence is no word and no context
    assert (personal.EVIDENCE_PRIOR, personal.EVIDENCE_UNIT, personal.REFERENCE_RATIO) == (3.0, 100, 1.19)


def scale_after(messages: list[str], score=constant_scorer) -> float:
    """A user's scale after sending these messages in turn, as evaluation and server learn them."""
    user = UserModel()
    strips = StripBuilder(VOCAB, min_count=1)
    for when, (message, ids) in enumerate(zip(messages, encode_messages(messages, VOCAB))):
        evaluate_personal.learn(strips, user, message, score([ids])[0], float(when))
    return user.scale()


def oracle_scorer(seqs):
    """An LSTM that gives each next token .9: nothing a user model adds can help it."""
    rows = []
    for ids in seqs:
        p = np.full((len(ids) - 1, len(VOCAB.tokens)), 0.1 / (len(VOCAB.tokens) - 1), np.float32)
        p[np.arange(len(ids) - 1), ids[1:]] = 0.9
        rows.append(np.log(p))
    return rows


def test_a_user_whose_words_their_model_predicts_gets_more_weight_and_one_it_misleads_less():
    mixed = ["hi zork.", "hi the.", "hi there.", "hi them."] * 30
    assert scale_after(mixed) > 2                  # the constant LSTM misses what follows "hi": their part earns
    assert scale_after(mixed, oracle_scorer) < 0.75  # an LSTM that knows: their part mostly dilutes it
    user = UserModel()
    for entry, count in {personal.GAINED: 10**6, personal.GIVEN: 1}.items():
        user.add(entry, count, 0.0)
    assert user.scale() == personal.MAX_SCALE
    for _ in range(100):
        user.learn("hi zork.", 1.0)
    weights, word, recent = user.weights(contexts_of("hi "))
    assert sum(weights) + word + recent == pytest.approx(personal.MAX_USER_WEIGHT)  # never more than that


def test_evidence_stops_once_settled_and_never_reads_a_secret():
    user = UserModel()
    user.learn("hi zork.", 0.0)
    row = constant_scorer([np.zeros(3)])[0][0]
    user.add(personal.GIVEN, personal.MAX_COUNT - 5, 0.0)
    assert Personalizer(VOCAB, min_count=1).evidence(user, [(row, "hi ", "zork", False)]) == {}  # saturated: settled
    _, words = personal.learned_words("my password is zork hi")
    assert [word for _, _, word in words] == ["my", "password"]  # the window after a cue is never read

"""The user's bias over the LSTM's words (model/engine/personal.py, `Personalizer.biased`) and
the training split's counts it is measured against (unigram.txt, `nextword unigram`)."""
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SHIPPED_MODEL
from test_quality import VOCAB, constant_scorer

from model.engine import personal
from model.engine.contract import UNIGRAM, ModelError
from model.engine.personal import Personalizer, UserModel
from model.engine.runtime import Runtime
from model.engine.text import is_word

# the training split's counts of VOCAB's tokens: the 40, there 30, hi 20, them 10 (words), the rest not words
CORPUS = np.array([5, 0, 9, 1, 40, 30, 20, 10, 4])
ROW = constant_scorer([np.zeros(2)])[0][0]
WORDS = np.array([is_word(t) for t in VOCAB.tokens])


def tempered(personalizer: Personalizer, row: np.ndarray) -> np.ndarray:
    p = personalizer.tempered(row)
    return np.array([p(float(lp)) for lp in row])


def user_sending(counts: dict[str, int]) -> UserModel:
    user = UserModel()
    for word, count in counts.items():
        user.add(word, count, 1.0)
    return user


def test_a_user_who_writes_like_the_corpus_gets_the_lstm_as_it_is():
    personalizer = Personalizer(VOCAB, unigram=CORPUS)
    user = user_sending({"the": 400, "there": 300, "hi": 200, "them": 100})
    assert np.allclose(tempered(personalizer, personalizer.biased(ROW, user)), tempered(personalizer, ROW))


def test_a_users_own_words_are_lifted_and_the_words_mass_is_kept():
    personalizer = Personalizer(VOCAB, unigram=CORPUS)
    user = user_sending({"them": 30000, "hi": 1000})  # them far above its corpus share, the and there never sent
    before, after = tempered(personalizer, ROW), tempered(personalizer, personalizer.biased(ROW, user))
    them, the = VOCAB.id("them"), VOCAB.id("the")
    assert after[them] > 1.5 * before[them] and after[the] < before[the]
    assert after.sum() == pytest.approx(1.0)
    assert after[WORDS].sum() == pytest.approx(before[WORDS].sum())  # what goes to words stays with words
    assert np.allclose(after[~WORDS], before[~WORDS])                # punctuation, <unk> and </s> untouched
    # the strip ranks by it: "them" was 4th of the words after an empty prefix, now it is shown
    assert "them" not in [c.text.lower() for c in Personalizer(VOCAB).strip(ROW, user, "", "", 3)]
    assert "them" in [c.text.lower() for c in personalizer.strip(ROW, user, "", "", 3)]


def test_the_bias_follows_what_the_user_sends():
    personalizer = Personalizer(VOCAB, unigram=CORPUS)
    user = user_sending({"them": 3000})
    first = tempered(personalizer, personalizer.biased(ROW, user))[VOCAB.id("hi")]
    user.add("hi", 5000, 2.0)
    assert tempered(personalizer, personalizer.biased(ROW, user))[VOCAB.id("hi")] > first


def test_a_history_that_does_not_predict_its_user_biases_little():
    """The power follows the user's scale up to 1: a user whose part earned nothing (many
    people's messages on one account) keeps nearly the LSTM as it is."""
    personalizer = Personalizer(VOCAB, unigram=CORPUS)
    user = user_sending({"them": 30000, "hi": 1000})
    them = VOCAB.id("them")
    before = tempered(personalizer, ROW)[them]
    trusted = tempered(personalizer, personalizer.biased(ROW, user))[them]
    user.add(personal.GIVEN, 100 * 100, 2.0)  # weight given for 100 words, nothing gained: the scale falls
    assert user.scale() < 0.1
    distrusted = tempered(personalizer, personalizer.biased(ROW, user))[them]
    assert before < distrusted < before * 1.1 < trusted


def test_no_corpus_or_no_words_sent_no_bias():
    user = user_sending({"them": 3000})
    assert Personalizer(VOCAB).biased(ROW, user) is ROW
    assert Personalizer(VOCAB, unigram=CORPUS).biased(ROW, UserModel()) is ROW
    assert personal.BIAS_POWER > 0  # the shipped strip has one


def test_a_model_directory_with_wrong_or_missing_counts_is_refused(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model)
    assert Runtime(model, "cpu").unigram_file == model / UNIGRAM
    (model / UNIGRAM).write_text("1\n2\n")
    with pytest.raises(ModelError, match="unigram.txt has 2 counts, the vocabulary 10000 tokens"):
        Runtime(model, "cpu")
    (model / UNIGRAM).unlink()
    with pytest.raises(ModelError, match="no unigram.txt, which its manifest declares"):
        Runtime(model, "cpu")


def test_nextword_unigram_rebuilds_the_shipped_file_from_the_training_split(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model)
    (model / UNIGRAM).unlink()
    proc = subprocess.run([sys.executable, "-m", "nextword", "unigram", "--model-dir", str(model)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (model / UNIGRAM).read_bytes() == (SHIPPED_MODEL / UNIGRAM).read_bytes()
    other = tmp_path / "other.txt"
    other.write_text("".join(f"line {n} of another corpus\n" for n in range(100)))
    proc = subprocess.run([sys.executable, "-m", "nextword", "unigram", "--model-dir", str(model), "--corpus", str(other)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0 and "is not the one" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

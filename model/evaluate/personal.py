"""`nextword evaluate --personal`: the same model with and without each user's own model.

Every message is typed with the user model as it stands, then learned, in time order:
- chitchat (a split): the users with at least MIN_HISTORY messages in the train split,
  and apart, everyone else. A user's history is all their earlier messages (train split
  included); the messages of the chosen split are the ones typed and counted.
- `--messages FILE`: one user typing the file's lines in order, from an empty model (e.g.
  text of another domain than the one the model was trained on).
- `--crowd`: one user whose history is CROWD[0] messages of the split drawn at random (`--seed`)
  from many people, typing CROWD[1] more: a user with no style of their own, whom the user
  model must not make worse off.

Both columns count keystrokes the same way (model/evaluate/quality.py) in the strip a server
gives (model/engine/strip.py: main dictionary and corrections included), without and with the
user's model; a word is found in the strip by its lower-cased text, so a word outside the
vocabulary counts once the dictionary or the user's model suggests it.
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict

from model.data import SPLITS, chitchat_messages, clean, encode_messages, split_of
from model.engine.personal import UserModel, learned_words
from model.engine.strip import StripBuilder
from model.evaluate import quality

SCORE_BATCH = 128  # a user's messages scored together (rows are kept for a batch only)
MIN_HISTORY = 200
CROWD = (1000, 300)  # --crowd: messages learned, then messages typed  # train-split messages that make a user one "with history"
ROWS = [row for row in quality.FIGURES if row[0] in ("top1_accuracy", "top3_accuracy", "ksr_1", "ksr_3", "ksr_5")]


class Comparison:
    """Tallies of the same messages typed without and with the user model."""

    def __init__(self, strips: StripBuilder, adapt: bool = True):
        self.strips, self.adapt = strips, adapt  # adapt: the user's scale learned (else 1 throughout)
        self.plain, self.personal = quality.Tally(), quality.Tally()
        self.messages = 0
        self.scales: list[float] = []  # each user's scale after their history

    def type(self, message: str, ids, rows, user: UserModel) -> set[int]:
        """Type the message both ways; returns the tokens taken from the strip with the user's model."""
        self.messages += 1
        quality.tally_message(self.plain, message, rows, ids, quality.strip_ranker(self.strips, rows, message))
        return quality.tally_message(self.personal, message, rows, ids, quality.strip_ranker(self.strips, rows, message, user=user))

    def result(self) -> dict:
        """Both columns, without perplexity: the user model ranks words, it is not scored as a
        distribution (the rows' perplexity would be the LSTM's in both)."""
        columns = {name: {k: v for k, v in t.result().items() if k != "perplexity"}
                   for name, t in (("without", self.plain), ("with", self.personal))}
        scales = sorted(self.scales)
        return {"messages": self.messages, **columns, "median_scale": round(scales[len(scales) // 2], 3) if scales else None}


def type_history(history: list[tuple[str, bool]], score, comparison: Comparison) -> UserModel:
    """One user's messages in order, (text, typed?): typed ones are counted, then all learned
    as a server learns them (the user's scale moved by the evidence of each)."""
    user = UserModel()
    for first in range(0, len(history), SCORE_BATCH):
        chunk = history[first : first + SCORE_BATCH]
        seqs = encode_messages([m for m, _ in chunk], comparison.strips.vocab)
        for when, ((message, counted), ids, rows) in enumerate(zip(chunk, seqs, score(seqs)), first):
            accepted = comparison.type(message, ids, rows, user) if counted else set()
            learn(comparison.strips, user, message, rows, float(when), comparison.adapt, accepted)
    comparison.scales.append(user.scale())
    return user


def learn(strips: StripBuilder, user: UserModel, message: str, rows, when: float, adapt: bool = True,
          accepted: set[int] | None = None) -> None:
    """Learn a sent message as a server does: its entries, and the evidence for the user's
    scale from the model before it (rows: the LSTM's log-probabilities before each token;
    accepted: the tokens the typist took from the strip, as a client tells a stream)."""
    evidence = {}
    if adapt:
        text, words = learned_words(message, strips.looks_random)
        accepted = accepted or set()
        evidence = strips.personalizer.evidence(user, [(rows[i], text[:start], word, i in accepted) for i, start, word in words])
    user.learn(message, when, strips.looks_random)
    for entry, count in evidence.items():
        user.add(entry, count, when)


def chitchat_histories(split: str) -> tuple[dict[str, list[tuple[str, bool]]], set[str]]:
    """Each sender's messages in time order, marked True where in `split`; and the senders
    with at least MIN_HISTORY train messages."""
    timeline = defaultdict(list)
    train = Counter()
    for conv_id, sender, timestamp, text in chitchat_messages():
        message, where = clean(text), split_of(conv_id)
        if message:
            timeline[sender].append((timestamp, message, where == split))
            train[sender] += where == "train"
    histories = {s: [(m, counted) for _, m, counted in sorted(t, key=lambda x: x[0])] for s, t in timeline.items()}
    return ({s: h for s, h in histories.items() if any(c for _, c in h)},
            {s for s, n in train.items() if n >= MIN_HISTORY})


def crowd_history(split: str, seed: int) -> list[tuple[str, bool]]:
    """Messages of many senders of the split drawn at random, as one user's history (text, typed?)."""
    messages = sorted({m for conv_id, _, _, text in chitchat_messages() if split_of(conv_id) == split and (m := clean(text))})
    chosen = random.Random(seed).sample(messages, sum(CROWD))
    return [(m, n >= CROWD[0]) for n, m in enumerate(chosen)]


def run(score, strips: StripBuilder, split: str, messages: list[str] | None, crowd_seed: int | None = None,
        adapt: bool = True) -> dict:
    """The comparison, in the strip a server with these strips (dictionary, blocklist, threshold) gives."""
    if messages is not None or crowd_seed is not None:
        one = Comparison(strips, adapt)
        history = [(m, True) for m in messages] if messages is not None else crowd_history(split, crowd_seed)
        type_history(history, score, one)
        return {"one user" if messages is not None else f"a crowd as one user (seed {crowd_seed})": one.result()}
    assert split in SPLITS
    histories, heavy = chitchat_histories(split)
    groups = {"with history": Comparison(strips, adapt), "others": Comparison(strips, adapt)}
    for sender in sorted(histories):
        type_history(histories[sender], score, groups["with history" if sender in heavy else "others"])
    result = {name: c.result() for name, c in groups.items()}
    result["with history"]["users"] = len(heavy & set(histories))
    result["others"]["users"] = len(set(histories) - heavy)
    return result


def table(result: dict) -> str:
    lines = []
    for name, group in result.items():
        users = f", {group['users']:,} users" if "users" in group else ""
        lines.append(f"{name}: {group['messages']:,} messages{users}, {group['with']['words']:,} words; "
                     f"the user's scale after it (median): {group['median_scale']}")
        lines.append(f"{'':<36}{'LSTM':>12}{'LSTM + user':>14}{'gain':>10}")
        for key, label, fmt in ROWS:
            a, b = group["without"][key], group["with"][key]
            lines.append(f"{label:<36}{fmt.format(a):>12}{fmt.format(b):>14}{(b - a) * 100:>+9.2f}p")
    return "\n".join(lines)

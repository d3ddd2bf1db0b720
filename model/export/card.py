"""MODEL_CARD.md, written by `nextword export` from what it knows: nothing typed by hand."""
from __future__ import annotations

import argparse

from model.evaluate import quality
from model.train import command as train


def train_command(args: dict) -> str:
    """The `nextword train` command line that reproduces a run (flags that differ from defaults)."""
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    defaults = vars(parser.parse_args([]))
    flags = []
    for key, value in args.items():
        if key in defaults and value != defaults[key] and key not in ("resume",):
            flags.append(f"--{key.replace('_', '-')} {' '.join(value) if isinstance(value, list) else value}")
    return "nextword train " + " ".join(flags)


def render(manifest: dict, train_args: dict, hardware: str, export_command: str, total_bytes: int) -> str:
    ev, tr, sizes = manifest.get("evaluation") or {}, manifest["training"], manifest["sizes"]
    checks = manifest.get("export_checks", {})
    lines = [
        f"# {manifest['name']} {manifest['version']}",
        "",
        "Next-word LSTM language model for the nextword service (one message = one context).",
        "",
        "## Data and licence",
        f"- Corpus: `{manifest['corpus'].get('source')}`"
        + (" (PyPI package `chitchat-dataset`, MIT licence: chat messages typed by people, BYU PCC lab)"
           if manifest["corpus"].get("source") == "chitchat-dataset" else ""),
        "- Split (docs/DESIGN.md): sha1(conversation id) % 20: 0 test, 1 valid, else train; trained on train only.",
        f"- Train split fingerprint (sha1 of its messages): `{manifest['corpus'].get('fingerprint')}`",
        "",
        "## Model",
        f"- LSTM: vocabulary {sizes['vocab']:,}, embedding {sizes['embedding']} (tied with the output layer "
        f"through a linear projection), hidden {sizes['hidden']}, {sizes['layers']} layer(s): "
        f"{sizes['parameters']:,} parameters; directory size {total_bytes / 1e6:.1f} MB.",
        f"- Graphs: {', '.join(manifest.get('graphs', []))}"
        + (f" (int8: weights int8 per output column, the tied embedding/output matrix stored once, activations "
           f"quantised row by row, so a row's answer is the same alone and in a batch (largest difference seen: "
           f"{checks.get('int8_rows_alone_vs_batch', 0):.0e}); top-1 the same as "
           f"fp32's on {checks['int8_top1_agreement']:.2%} of the contexts of {checks['int8_check_messages']:,} test "
           f"messages, KSR@3 {checks['int8_ksr_3']:.2%} vs fp32's {checks['fp32_ksr_3']:.2%})"
           if "int8_top1_agreement" in checks else "") + ".",
        f"- Blocklist: the vocabulary was checked against the default blocklist (model/engine/blocklist.txt, LDNOOBW "
        f"English, CC BY 4.0): {manifest['blocklist']['in_vocabulary']} of its {manifest['blocklist']['words']} words "
        f"are in it, and a server with the default --blocklist never suggests them (unless a user sent them)."
        if manifest.get("blocklist") else "- Blocklist: not checked.",
        f"- Tokenizer version {manifest['tokenizer_version']} (model/engine/text.py).",
        f"- Trained {tr.get('epoch')} epochs ({tr.get('step'):,} steps) in {tr.get('train_seconds', 0) / 60:.0f} minutes "
        f"on {hardware}" + (f", {tr['tokens'] / max(tr['train_seconds'], 1):,.0f} tokens/s with validation"
                            if tr.get("tokens") else "") + f"; best validation perplexity {tr.get('best_valid_ppl', 0):.2f}.",
        "",
        "## Rebuild it",
        "```",
        train_command(train_args),
        export_command,
        "```",
        "",
    ]
    if ev:
        lines += [f"## Evaluation: {ev['split']} split, {ev['messages']:,} messages, {ev['lstm']['words']:,} words, "
                  f"{ev['lstm']['characters']:,} characters",
                  "",
                  f"Scored through {ev.get('scored_by', 'the torch checkpoint')}, one token per step as the service "
                  "feeds it. Same vocabulary and train split for both; definitions in model/evaluate/quality.py "
                  "(KSR: each typed code point 1 key, accepting a suggestion 1 key, the space after it free).",
                  "",
                  "| metric | this LSTM | KN trigram baseline |", "|---|---:|---:|"]
        for key, label, fmt in quality.FIGURES:
            if key in ev["lstm"]:  # an older evaluation may lack a figure added since
                lines.append(f"| {label} | {fmt.format(ev['lstm'][key])} | {fmt.format(ev['trigram_kn'][key])} |")
        lines.append("")
    if manifest.get("typing"):
        lines += ["## Typing with typos", "",
                  "A seeded noisy typist types the test split (model/evaluate/typist.py; `nextword evaluate --typos RATE`): per "
                  "letter, with probability RATE, a neighbouring key (40%), a missed letter (20%), a doubled one (20%) or "
                  "two letters swapped (20%). It takes the intended word from a strip of 3 and lets autocorrect act on "
                  "space. Words left wrong: the final word differs from the intended one.", "",
                  "| typo rate | KSR@3 plain | KSR@3 with corrections | words left wrong, plain | with corrections |",
                  "|---:|---:|---:|---:|---:|"]
        for t in manifest["typing"]:
            p, c = t["plain"], t["corrected"]
            lines.append(f"| {t['rate']:g} | {p['ksr_3']:.2%} | {c['ksr_3']:.2%} | {p['words_left_wrong']:.2%} | "
                         f"{c['words_left_wrong']:.2%} |")
        lines.append("")
    for figures in manifest.get("personal") or []:
        lines += [f"## Personal suggestions: {figures['corpus']}", "",
                  "Each user's messages typed in time order with their user model as it stands, then learned "
                  "(`nextword evaluate --personal`; model/engine/personal.py).", "",
                  "| users | messages | | KSR@1 | KSR@3 | KSR@5 | top-1 | top-3 |", "|---|---:|---|---:|---:|---:|---:|---:|"]
        for name, group in figures["groups"].items():
            for column, label in (("without", "LSTM"), ("with", "LSTM + user")):
                g = group[column]
                lines.append(f"| {name} | {group['messages']:,} | {label} | {g['ksr_1']:.2%} | {g['ksr_3']:.2%} | "
                             f"{g['ksr_5']:.2%} | {g['top1_accuracy']:.2%} | {g['top3_accuracy']:.2%} |")
        lines.append("")
    lines += dictionary_lines(manifest)  # last: `nextword dictionary` rewrites it there
    return "\n".join(lines)


DICTIONARY_HEADING = "## Main dictionary"


def dictionary_lines(manifest: dict) -> list[str]:
    """The card's section on the main dictionary (model/engine/dictionary.py), if there is one."""
    d = manifest.get("dictionary")
    if not d:
        return []
    lines = [DICTIONARY_HEADING, "",
             f"`{d['file']}`: {d['words']:,} words with their frequencies, Zipf ≥ {d['min_zipf']:g}: {d['source']}. "
             "A word outside the vocabulary gets P(<unk> | context) times its share of those words' frequency; "
             "rebuilt by `nextword dictionary`.", ""]
    if d.get("evaluation"):
        lines += ["Measured by `nextword evaluate --model-dir DIR` (the strip a server gives: corrections, blocklist) "
                  "on the same lines with and without the dictionary:", "",
                  "| text | messages | strip | KSR@3 | next word, top-3 | words outside the vocabulary completed |",
                  "|---|---:|---|---:|---:|---:|"]
        for text in d["evaluation"]:
            for column, f in text["figures"].items():
                lines.append(f"| {text['text']} | {text['messages']:,} | {column} | {f['ksr_3']:.2%} | "
                             f"{f['top3_accuracy']:.2%} | {f['oov_completed']:.2%} |")
        lines.append("")
    return lines


def with_dictionary(text: str, manifest: dict) -> str:
    """A card with its dictionary section written anew (at the end)."""
    head = text.split(f"\n{DICTIONARY_HEADING}\n", 1)[0].rstrip("\n")
    return head + "\n\n" + "\n".join(dictionary_lines(manifest))

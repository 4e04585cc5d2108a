"""Litigation and collective flags (model/flags.py) on the corpus held-out split, next to a keyword rule.

Trains on the `train` split of data/petitions.jsonl (threshold chosen on out-of-fold probabilities of
train), reports precision and recall on the fixed `test` split, and prints what the flags mark among
the held-out petitions (the first characters of the masked text, true label alongside).

With `--messages DIR` (the real-text dev set, ../shared/datasets/teddy2020c), also what the flags
mark among real messages. They carry no flag labels; the nearest is the department label: a
litigation flag should mostly fall on 政法 (political_legal) messages. Printed for a person to look
at, never stored.

    .venv/bin/python benchmarks/flags.py [--messages ../shared/datasets/teddy2020c]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.flags import FLAGS, FlagModel  # noqa: E402
from model.text import prepare_text  # noqa: E402
from training.dataset import CORPUS_PATH  # noqa: E402

# The baseline: words a reader would look for.
KEYWORDS = {
    "litigation": ("法院", "判决", "执行", "仲裁", "起诉", "诉讼", "立案", "裁定"),
    "collective": ("业主们", "我们", "集体", "联名", "多名", "等人", "家长们", "投资人", "代表"),
}


def precision_recall(predicted: list[bool], truth: list[bool]) -> tuple[float, float, int]:
    hits = sum(p and t for p, t in zip(predicted, truth, strict=True))
    return hits / max(1, sum(predicted)), hits / max(1, sum(truth)), sum(predicted)


def real_messages(model: FlagModel, folder: Path) -> None:
    from benchmarks.real_data import load_dev

    if not (folder / "messages_labeled.csv").is_file():
        print(f"real-text dev set not found in {folder}; skipped")
        return
    dev = load_dev(folder)
    scores = model.predict(dev.texts)
    legal = dev.labels["department"] == "political_legal"
    print(f"real messages: {len(dev.texts)}, of them {int(legal.sum())} labelled political_legal (涉法涉诉 department)")
    for name in FLAGS:
        flagged = [score[name].flagged for score in scores]
        hits = sum(f and bool(t) for f, t in zip(flagged, legal, strict=True))
        print(
            f"{name}: {sum(flagged)} flagged ({sum(flagged) / len(flagged):.1%}); {hits} of them political_legal"
            + (f"; {hits / max(1, int(legal.sum())):.1%} of political_legal flagged" if name == "litigation" else "")
        )
        ranked = sorted(range(len(dev.texts)), key=lambda i: -scores[i][name].probability)
        for index in ranked[:8]:
            department = dev.labels["department"][index]
            print(f"    {scores[index][name].probability:.2f} [{department}] {prepare_text(dev.texts[index])[:40]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=Path, help="real-text dev set folder (optional)")
    args = parser.parse_args()
    rows = [json.loads(line) for line in CORPUS_PATH.read_text(encoding="utf-8").splitlines()]
    train = [row for row in rows if row["split"] == "train"]
    test = [row for row in rows if row["split"] == "test"]
    started = time.perf_counter()
    model = FlagModel.fit([row["text"] for row in train], {name: [row[name] for row in train] for name in FLAGS})
    print(f"trained on {len(train)} rows in {time.perf_counter() - started:.1f}s; held-out {len(test)} rows")
    scores = model.predict([row["text"] for row in test])
    for name in FLAGS:
        truth = [bool(row[name]) for row in test]
        flagged = [score[name].flagged for score in scores]
        keyword = [any(word in row["text"] for word in KEYWORDS[name]) for row in test]
        precision, recall, count = precision_recall(flagged, truth)
        base_p, base_r, base_count = precision_recall(keyword, truth)
        print(
            f"{name}: {sum(truth)} positives; model precision {precision:.3f} recall {recall:.3f} ({count} flagged, "
            f"threshold {model.weights[name][2]:.2f}); keyword rule precision {base_p:.3f} recall {base_r:.3f} "
            f"({base_count} flagged)"
        )
        ranked = sorted(range(len(test)), key=lambda i: -scores[i][name].probability)
        for index in ranked[:6]:
            mark = "✓" if truth[index] else "✗"
            print(f"    {mark} {scores[index][name].probability:.2f} {prepare_text(test[index]['text'])[:48]}")
    if args.messages is not None:
        real_messages(model, args.messages)


if __name__ == "__main__":
    main()

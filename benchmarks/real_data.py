"""5-fold stratified CV of the triage pipeline on real public messages, next to a plain baseline.

Data: ../shared/datasets/teddy2020c/messages_labeled.csv (7 labels; see its README). It is used
for measurement only and never copied into the project. Text = 留言主题 + " " + 留言详情.
Baseline (same folds, same run): jieba word TF-IDF + LinearSVC, default settings.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import jieba
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.classifier import TriageModel  # noqa: E402

DEFAULT_PATH = ROOT.parent / "shared" / "datasets" / "teddy2020c" / "messages_labeled.csv"


def jieba_words(text: str) -> list[str]:
    return jieba.lcut(text)


def load(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [f"{row['留言主题']} {row['留言详情']}" for row in rows], np.array([row["一级标签"] for row in rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH, help="teddy2020c messages_labeled.csv")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--C", type=float, default=2.0)
    parser.add_argument("--lead-tokens", type=int, default=20)
    parser.add_argument("--calibration", default="sigmoid")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"dataset not found: {args.data} (this benchmark needs ../shared/datasets/teddy2020c)")
        return 2
    texts, labels = load(args.data)
    print(
        f"{len(texts)} messages, {len(set(labels))} labels, {args.folds}-fold stratified CV (shuffle, random_state 0)"
    )
    splitter = StratifiedKFold(args.folds, shuffle=True, random_state=0)
    scores: dict[str, list[tuple[float, float, float]]] = {"baseline": [], "pipeline": []}
    for fold, (train, test) in enumerate(splitter.split(texts, labels), 1):
        train_texts, test_texts = [texts[i] for i in train], [texts[i] for i in test]
        started = time.perf_counter()
        baseline = make_pipeline(TfidfVectorizer(tokenizer=jieba_words, token_pattern=None), LinearSVC())
        predicted = baseline.fit(train_texts, labels[train]).predict(test_texts)
        scores["baseline"].append(
            (
                f1_score(labels[test], predicted, average="macro"),
                accuracy_score(labels[test], predicted),
                time.perf_counter() - started,
            )
        )
        started = time.perf_counter()
        model = TriageModel(C=args.C, lead_tokens=args.lead_tokens, calibration=args.calibration)
        model.fit(train_texts, labels[train])
        proba = model.predict_proba(test_texts)
        predicted = np.array(model.classes("domain"))[proba.argmax(axis=1)]
        scores["pipeline"].append(
            (
                f1_score(labels[test], predicted, average="macro"),
                accuracy_score(labels[test], predicted),
                time.perf_counter() - started,
            )
        )
        print(
            f"fold {fold}: baseline macro-F1 {scores['baseline'][-1][0]:.3f}, "
            f"pipeline macro-F1 {scores['pipeline'][-1][0]:.3f}",
            flush=True,
        )
    print()
    print(f"{'system':<10} {'macro-F1':>14} {'accuracy':>14} {'seconds/fold':>13}")
    for name, rows in scores.items():
        f1, accuracy, seconds = (np.array(column) for column in zip(*rows, strict=True))
        print(
            f"{name:<10} {f1.mean():.3f} ± {f1.std():.3f} {accuracy.mean():.3f} ± {accuracy.std():.3f} "
            f"{seconds.mean():13.1f}"
        )
    gain = np.mean([r[0] for r in scores["pipeline"]]) - np.mean([r[0] for r in scores["baseline"]])
    print(f"pipeline - baseline macro-F1: {gain:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

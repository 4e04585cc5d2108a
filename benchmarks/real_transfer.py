"""How the default model (trained only on the hand-written corpus) transfers to real citizens' text.

Runs the registry's current model on the real messages of ../shared/datasets/teddy2020c (used for
measurement only, never copied) and scores its department ranking against the messages' own 7
labels through a coarse label map fixed before looking at any prediction: a message counts as
correct when the predicted department is one that label's work can belong to. The map is
generous where the 7-label scheme mixes several offices (城乡建设 covers housing, city management
and planning), so read top-1 as an upper bound and compare runs with each other, not with the
corpus's held-out numbers. Nothing here feeds back into training or thresholds.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.persistence import load_model  # noqa: E402
from model.registry import Registry  # noqa: E402
from service.settings import Settings  # noqa: E402

DEFAULT_PATH = ROOT.parent / "shared" / "datasets" / "teddy2020c" / "messages_labeled.csv"
LABEL_MAP: dict[str, set[str]] = {
    "城乡建设": {"housing", "urban_management", "natural_resources"},
    "环境保护": {"ecology_environment"},
    "交通运输": {"transport", "public_security"},
    "教育文体": {"education", "general"},
    "劳动和社会保障": {"human_resources", "civil_affairs"},
    "商贸旅游": {"market_regulation", "general"},
    "卫生计生": {"health"},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--registry", type=Path, default=Settings().registry)
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"dataset not found: {args.data} (this benchmark needs ../shared/datasets/teddy2020c)")
        return 2
    model, manifest = load_model(Registry(args.registry).current_folder())
    with args.data.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    predictions = model.predict([f"{row['留言主题']} {row['留言详情']}" for row in rows], explain=False)
    counts, top1, top3, review, routed_ok = Counter(), Counter(), Counter(), Counter(), Counter()
    for row, prediction in zip(rows, predictions, strict=True):
        label, allowed = row["一级标签"], LABEL_MAP[row["一级标签"]]
        ranking = [department for department, _ in prediction.heads["department"].ranking]
        counts[label] += 1
        top1[label] += ranking[0] in allowed
        top3[label] += any(department in allowed for department in ranking)
        review[label] += prediction.needs_review
        routed_ok[label] += (not prediction.needs_review) and ranking[0] in allowed
    print(f"model {manifest.version} on {len(rows)} real messages (department head, coarse label map)")
    print(f"{'label':<10} {'n':>5} {'top-1':>7} {'top-3':>7} {'needs review':>13} {'top-1 if routed':>16}")

    def line(name: str, n: int, one: int, three: int, flagged: int, right: int) -> str:
        routed = n - flagged
        return (
            f"{name:<10} {n:>5} {one / n:7.3f} {three / n:7.3f} {flagged / n:13.3f} "
            f"{right / routed if routed else float('nan'):16.3f}"
        )

    for label in LABEL_MAP:
        print(line(label, counts[label], top1[label], top3[label], review[label], routed_ok[label]))
    print(line("all", len(rows), sum(top1.values()), sum(top3.values()), sum(review.values()), sum(routed_ok.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())

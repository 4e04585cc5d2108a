"""Learning curve of an office's own history: corpus + office rows vs office rows alone vs the corpus alone.

Simulates an office with labelled history on the real-text development set
(../shared/datasets/teddy2020c: messages_labeled.csv + labels_triage.tsv; evaluation use only, never
copied): in each of `--folds` stratified folds, k office rows are drawn from the other folds and
the model is tested on the held-out fold. "corpus + office" is what `triage train --data` ships:
the built-in corpus mixed in, office rows weighted, thresholds chosen on the office rows' out-of-fold
predictions (target 0.95). "office only" is the same on the k rows alone; "corpus only" is the
default model (one fit, the same for every fold). Prints department top-1/top-3 and auto-routing
coverage/precision per k, checks the issue's targets at k = 500, and draws the curves as a PNG.

    .venv/bin/python benchmarks/adaptation.py ../shared/datasets/teddy2020c [--folds 5] [--sizes 0,100,250,500,1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.real_data import load_dev  # noqa: E402
from model.classifier import TriageModel  # noqa: E402
from model.features import cached_tokens  # noqa: E402
from model.metrics import RoutingFigures, routing_outcome  # noqa: E402
from training.dataset import LabelledData, load_corpus  # noqa: E402
from training.labels import rare_rows  # noqa: E402
from training.mixing import DEFAULT_OFFICE_WEIGHT, choose_office_weight  # noqa: E402
from training.office import OFFICE_TARGET_PRECISION  # noqa: E402
from training.train import Mixing, fit_mixed  # noqa: E402

DEFAULT_PATH = ROOT.parent / "shared" / "datasets" / "teddy2020c"
SETTINGS = ("corpus + office", "office only", "corpus only")
TARGET_K, TARGET_TOP1, TARGET_PRECISION, TARGET_COVERAGE = 500, 0.86, 0.93, 0.60


@dataclass(frozen=True)
class Cell:
    setting: str
    k: int
    figures: RoutingFigures


def figures(model: TriageModel, test: LabelledData) -> RoutingFigures:
    probabilities = model.head_probabilities(model.transform(test.texts))
    return routing_outcome(model, test.head_labels(), probabilities).figures()


def office_params() -> dict[str, float]:
    return {"domain_target_precision": OFFICE_TARGET_PRECISION, "department_target_precision": OFFICE_TARGET_PRECISION}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, nargs="?", default=DEFAULT_PATH, help="folder of teddy2020c")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sizes", default="0,100,250,500,1000", help="office rows k, comma-separated")
    parser.add_argument(
        "--choose-weight",
        action="store_true",
        help="choose the office weight by CV (`triage train --office-weight auto`)",
    )
    parser.add_argument("--png", type=Path, default=ROOT / "reports" / "adaptation.png")
    args = parser.parse_args()
    if not (args.dataset / "labels_triage.tsv").is_file() or not (args.dataset / "messages_labeled.csv").is_file():
        print(
            f"dataset not found: {args.dataset} needs messages_labeled.csv and labels_triage.tsv "
            "(this benchmark reads ../shared/datasets/teddy2020c; pass its path as the first argument)"
        )
        return 2
    sizes = [int(size) for size in args.sizes.split(",")]
    dev, corpus = load_dev(args.dataset).labelled(), load_corpus()
    cells: list[Cell] = []
    started = time.perf_counter()
    with cached_tokens():
        corpus_model = TriageModel().fit(corpus.texts, corpus.targets())
        splitter = StratifiedKFold(args.folds, shuffle=True, random_state=0)
        for fold, (pool, test_rows) in enumerate(splitter.split(dev.texts, dev.departments)):
            test = dev.select(list(test_rows))
            for k in sizes:
                if k == 0:
                    cells.append(Cell("corpus only", 0, figures(corpus_model, test)))
                    cells.append(Cell("corpus + office", 0, cells[-1].figures))
                    continue
                drawn = np.random.default_rng(1000 * fold + k).choice(pool, size=min(k, len(pool)), replace=False)
                office = dev.select([int(index) for index in drawn])
                keep, _ = rare_rows(office, corpus.head_labels())
                mixed = office.select(keep)
                weight = choose_office_weight(corpus, mixed).weight if args.choose_weight else DEFAULT_OFFICE_WEIGHT
                model = fit_mixed(mixed, Mixing(corpus), weight, office_params())
                cells.append(Cell("corpus + office", k, figures(model, test)))
                cells.append(Cell("corpus only", k, figures(corpus_model, test)))
                alone, _ = rare_rows(office)
                model = fit_mixed(office.select(alone), Mixing(), 1.0, office_params())
                cells.append(Cell("office only", k, figures(model, test)))
                print(f"fold {fold + 1}/{args.folds}, k={k}: {time.perf_counter() - started:.0f}s", file=sys.stderr)
    table = report(cells, sizes, args.folds)
    plot(table, sizes, args.png)
    return 0


def report(cells: list[Cell], sizes: list[int], folds: int) -> dict[tuple[str, int], dict[str, float]]:
    grouped: dict[tuple[str, int], list[RoutingFigures]] = defaultdict(list)
    for cell in cells:
        grouped[(cell.setting, cell.k)].append(cell.figures)
    table = {
        key: {
            name: float(np.mean([getattr(item, name) for item in values]))
            for name in ("department_top1", "department_top3", "auto_coverage", "auto_precision", "domain_macro_f1")
        }
        for key, values in grouped.items()
    }
    print(f"real-text dev set, {folds} folds; office rows drawn from the training folds, tested on the held-out fold")
    print(f"{'setting':<16} {'k':>5} {'dept top-1':>10} {'top-3':>7} {'auto cov':>9} {'auto prec':>10} {'dom mF1':>8}")
    for setting in SETTINGS:
        for k in sizes:
            row = table.get((setting, k))
            if row is None:
                continue
            print(
                f"{setting:<16} {k:>5} {row['department_top1']:>10.3f} {row['department_top3']:>7.3f} "
                f"{row['auto_coverage']:>9.3f} {row['auto_precision']:>10.3f} {row['domain_macro_f1']:>8.3f}"
            )
    mixed = table.get(("corpus + office", TARGET_K))
    if mixed is not None:
        alone, default = table[("office only", TARGET_K)], table[("corpus only", TARGET_K)]
        print(f"\ntargets at k = {TARGET_K} (issue 16):")
        print(
            f"  department top-1 {mixed['department_top1']:.3f} (target >= {TARGET_TOP1}); office only "
            f"{alone['department_top1']:.3f}, corpus only {default['department_top1']:.3f}"
        )
        print(
            f"  auto precision {mixed['auto_precision']:.3f} at coverage {mixed['auto_coverage']:.3f} "
            f"(target >= {TARGET_PRECISION} at >= {TARGET_COVERAGE}); "
            f"office only {alone['auto_precision']:.3f} at {alone['auto_coverage']:.3f}, "
            f"corpus only {default['auto_precision']:.3f} at {default['auto_coverage']:.3f}"
        )
        met = (
            mixed["department_top1"] >= TARGET_TOP1
            and mixed["auto_precision"] >= TARGET_PRECISION
            and mixed["auto_coverage"] >= TARGET_COVERAGE
            and mixed["department_top1"] > max(alone["department_top1"], default["department_top1"])
        )
        print(f"  {'MET' if met else 'NOT MET'}")
    return table


def plot(table: dict[tuple[str, int], dict[str, float]], sizes: list[int], path: Path) -> None:
    from training.report import plt, use_cjk_font

    use_cjk_font()
    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    for name, title, ax in zip(
        ("department_top1", "auto_precision", "auto_coverage"),
        ("department top-1", "auto-routed precision", "auto-routed coverage"),
        axes,
        strict=True,
    ):
        for setting in SETTINGS:
            points = [(k, table[(setting, k)][name]) for k in sizes if (setting, k) in table]
            ax.plot([k for k, _ in points], [v for _, v in points], marker="o", label=setting)
        ax.set_title(title)
        ax.set_xlabel("office rows k")
        ax.grid(alpha=0.3)
    axes[0].axhline(TARGET_TOP1, color="grey", linestyle="--", linewidth=0.8)
    axes[1].axhline(TARGET_PRECISION, color="grey", linestyle="--", linewidth=0.8)
    axes[2].axhline(TARGET_COVERAGE, color="grey", linestyle="--", linewidth=0.8)
    axes[0].legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"\ncurves: {path}")


if __name__ == "__main__":
    sys.exit(main())

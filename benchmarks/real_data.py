"""The default model on real citizens' messages: the project's real-text dev set.

Data: ../shared/datasets/teddy2020c (messages_labeled.csv and labels_triage.tsv, labelled by its
LABELLING_GUIDE.md). It is used for measurement and for choosing hyperparameters and thresholds
only; no text from it enters the project, and the shipped model never trains on it.

Prints, for all rows and for the rows both annotators' guide calls clear: domain accuracy and
macro-F1 with per-class counts, department top-1/top-3, auto-routing coverage and precision at the
model's own thresholds, the coverage/precision curve (PNG too), per-department recall and the ten
largest confusions; beside a baseline trained on the same corpus rows in the same run (jieba word
TF-IDF + LinearSVC). `--ablation` retrains the design steps of issue 10 on the corpus and prints
one line per step; `--sweep NAME=V1,V2` fits the default model once per value of one parameter (the
others at their defaults), the way C was chosen; `--against REGISTRY` scores another registry's model
(say, one trained on a candidate corpus); `--record FILE` writes the figures the model card quotes.

Every figure is a sample: with 7 finance and 4 prepaid messages, domain macro-F1 moves by points when one
message flips. So the model's figures come with 95% bootstrap intervals, and a swept or `--against` model
with the paired interval of its difference (the same resampled rows for both; `*` marks an interval that
excludes zero, the only kind of difference these rows can show).

    .venv/bin/python benchmarks/real_data.py                 # current model of models/
    .venv/bin/python benchmarks/real_data.py --ablation      # about 8 minutes on 2 cores
    .venv/bin/python benchmarks/real_data.py --sweep C=0.25,0.5,1,2 --sweep lead_tokens=20,40
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jieba
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.classifier import TriageModel  # noqa: E402
from model.metrics import (  # noqa: E402
    RoutingOutcome,
    calibration_bins,
    difference_intervals,
    figure_intervals,
    interval_lines,
    routing_outcome,
)
from model.persistence import ModelLoadError, load_model  # noqa: E402
from model.registry import Registry, RegistryError  # noqa: E402
from service.settings import Settings  # noqa: E402
from training.dataset import LabelledData, corpus_path, load_corpus  # noqa: E402

DEFAULT_DIR = ROOT.parent / "shared" / "datasets" / "teddy2020c"
HEADS = ("domain", "department")
ORIGINAL_CORPUS_ROWS = 3640  # rows before issue 10's additions (ids P00001-P03640)


@dataclass(frozen=True)
class DevSet:
    texts: list[str]
    labels: dict[str, np.ndarray]
    clear: np.ndarray

    def labelled(self) -> LabelledData:
        """The rows as training data (all in the train split), for benchmarks that train on part of them."""
        return LabelledData(
            texts=list(self.texts),
            labels=self.labels["domain"].tolist(),
            departments=self.labels["department"].tolist(),
            splits=["train"] * len(self.texts),
        )


@dataclass(frozen=True)
class HeadScores:
    """What one system's head says about every dev row: class order, probabilities or scores."""

    classes: np.ndarray
    scores: np.ndarray
    threshold: float | None

    def predicted(self) -> np.ndarray:
        """The top class of every row."""
        top: np.ndarray = self.classes[self.scores.argmax(axis=1)]
        return top

    def correct(self, truth: np.ndarray) -> np.ndarray:
        """Per row: is the top class the true one?"""
        hits: np.ndarray = self.predicted() == truth
        return hits


@dataclass(frozen=True)
class Figures:
    rows: int
    domain_accuracy: float
    domain_macro_f1: float
    department_top1: float
    department_top3: float
    department_auto_coverage: float
    department_auto_precision: float
    domain_auto_coverage: float
    domain_auto_precision: float


def load_dev(folder: Path) -> DevSet:
    """The labelled dev set: subject and body joined with a space, as an office file's two text columns are."""
    labels = {
        row["id"]: row for row in csv.DictReader((folder / "labels_triage.tsv").open(encoding="utf-8"), delimiter="\t")
    }
    texts, domains, departments, clear = [], [], [], []
    with (folder / "messages_labeled.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            label = labels[row["留言编号"]]
            texts.append(f"{row['留言主题']} {row['留言详情']}")
            domains.append(label["domain"])
            departments.append(label["department"])
            clear.append(label["clarity"] == "clear")
    return DevSet(texts, {"domain": np.array(domains), "department": np.array(departments)}, np.array(clear))


def model_scores(model: TriageModel, texts: Sequence[str]) -> dict[str, HeadScores]:
    proba = model.head_probabilities(model.transform(texts))
    return {h: HeadScores(np.array(model.classes(h)), proba[h], model.thresholds_[h]) for h in model.head_names_}


def dev_outcome(model: TriageModel, scores: dict[str, HeadScores], dev: DevSet) -> RoutingOutcome:
    """Per-row facts of the model on the dev set (from its `model_scores`, not predicted again), as the service
    routes: auto-routed only when every head is confident (`model.metrics.routing_outcome`), so figures and
    their intervals can be resampled."""
    return routing_outcome(model, dev.labels, {head: s.scores for head, s in scores.items()})


def print_intervals(outcome: RoutingOutcome) -> dict[str, list[float]]:
    """The service's figures on all rows with 95% bootstrap intervals; returns them for the record."""
    intervals = figure_intervals(outcome)
    print("  95% intervals (1,000 bootstrap resamples of the rows); auto-routing as the service does it, every")
    print("  head confident, precision = right department among those:")
    for line in interval_lines(outcome.figures(), intervals):
        print(f"    {line}")
    return {name: [interval.low, interval.high] for name, interval in intervals.items()}


def print_by_clarity(outcome: RoutingOutcome, dev: DevSet) -> None:
    """Auto-routing on the rows the guide calls clear and on the ambiguous ones: where annotators hesitate the
    promise is weakest, so a set with more such rows routes fewer petitions, and fewer of them right."""
    for name, rows in (("clear", np.flatnonzero(dev.clear)), ("ambiguous", np.flatnonzero(~dev.clear))):
        part = outcome.figures(rows)
        print(
            f"    {name} rows ({part.rows}): auto-routed {part.auto_coverage:.3f} at precision "
            f"{part.auto_precision:.3f}; department top-1 {part.department_top1 or 0.0:.3f}"
        )


def print_differences(name: str, new: RoutingOutcome, reference: RoutingOutcome) -> None:
    """`new - reference` on the same rows, each with its paired 95% bootstrap interval; * where it excludes 0."""
    ours, theirs = new.figures(), reference.figures()
    parts = []
    for field, interval in difference_intervals(new, reference).items():
        change = getattr(ours, field) - getattr(theirs, field)
        parts.append(f"{field} {change:+.3f} {interval.signed()}{'*' if interval.excludes_zero() else ''}")
    print(f"    {name} minus reference: " + "; ".join(parts))


def baseline_scores(corpus: LabelledData, texts: Sequence[str]) -> dict[str, HeadScores]:
    """jieba word TF-IDF + LinearSVC per head, default settings; no thresholds (it has no calibration)."""
    result = {}
    targets = {"domain": corpus.labels, "department": corpus.departments}
    for head, labels in targets.items():
        pipeline = make_pipeline(TfidfVectorizer(tokenizer=jieba.lcut, token_pattern=None), LinearSVC())
        pipeline.fit(corpus.texts, labels)
        result[head] = HeadScores(pipeline.classes_, pipeline.decision_function(texts), None)
    return result


def coverage_precision(confidence: np.ndarray, correct: np.ndarray, threshold: float) -> tuple[float, float]:
    accepted = confidence >= threshold
    return float(accepted.mean()), float(correct[accepted].mean()) if accepted.any() else float("nan")


def figures(scores: dict[str, HeadScores], dev: DevSet, rows: np.ndarray) -> Figures:
    values: dict[str, float] = {}
    for head in HEADS:
        s = scores[head]
        truth = dev.labels[head][rows]
        order = np.argsort(-s.scores[rows], axis=1)
        predicted = s.classes[order[:, 0]]
        correct = predicted == truth
        values[f"{head}_accuracy"] = float(correct.mean())
        values[f"{head}_macro_f1"] = float(f1_score(truth, predicted, average="macro", zero_division=0))
        values[f"{head}_top3"] = float(np.mean([t in s.classes[o[:3]] for t, o in zip(truth, order, strict=True)]))
        if s.threshold is not None:
            cov, prec = coverage_precision(s.scores[rows].max(axis=1), correct, s.threshold)
        else:
            cov, prec = float("nan"), float("nan")
        values[f"{head}_auto_coverage"], values[f"{head}_auto_precision"] = cov, prec
    return Figures(
        rows=int(rows.sum()),
        domain_accuracy=values["domain_accuracy"],
        domain_macro_f1=values["domain_macro_f1"],
        department_top1=values["department_accuracy"],
        department_top3=values["department_top3"],
        department_auto_coverage=values["department_auto_coverage"],
        department_auto_precision=values["department_auto_precision"],
        domain_auto_coverage=values["domain_auto_coverage"],
        domain_auto_precision=values["domain_auto_precision"],
    )


def print_figures(name: str, f: Figures) -> None:
    auto = (
        "no thresholds (never auto-routes)"
        if np.isnan(f.department_auto_coverage)
        else f"{f.department_auto_coverage:.3f} cov @ {f.department_auto_precision:.3f} prec, domain "
        f"{f.domain_auto_coverage:.3f} @ {f.domain_auto_precision:.3f}"
    )
    print(
        f"  {name:<22} n={f.rows:<5} domain acc {f.domain_accuracy:.3f} macro-F1 {f.domain_macro_f1:.3f} | "
        f"dept top-1 {f.department_top1:.3f} top-3 {f.department_top3:.3f} | auto dept {auto}"
    )


def domain_class_counts(scores: dict[str, HeadScores], dev: DevSet) -> dict[str, tuple[int, int, int]]:
    """Per domain: (dev rows, rows predicted as it, rows predicted right)."""
    s = scores["domain"]
    truth = dev.labels["domain"]
    predicted = s.predicted()
    return {
        str(label): (
            int((truth == label).sum()),
            int((predicted == label).sum()),
            int(((truth == label) & (predicted == label)).sum()),
        )
        for label in sorted(set(truth) | set(predicted))
    }


def print_domain_classes(scores: dict[str, HeadScores], dev: DevSet) -> None:
    print(f"  {'domain':<12} {'n':>5} {'predicted':>9} {'right':>6} {'precision':>9} {'recall':>7}")
    for label, (n, p, right) in domain_class_counts(scores, dev).items():
        precision, recall = right / p if p else float("nan"), right / n if n else float("nan")
        print(f"  {label:<12} {n:5d} {p:9d} {right:6d} {precision:9.3f} {recall:7.3f}")


def print_departments(scores: dict[str, HeadScores], dev: DevSet) -> None:
    s = scores["department"]
    truth = dev.labels["department"]
    predicted = s.predicted()
    print(f"  {'department':<20} {'n':>5} {'recall':>7}")
    for label, n in Counter(truth).most_common():
        print(f"  {label:<20} {n:5d} {float((predicted[truth == label] == label).mean()):7.3f}")
    print("  ten largest confusions (truth -> predicted):")
    for (t, p), n in Counter((t, p) for t, p in zip(truth, predicted, strict=True) if t != p).most_common(10):
        print(f"    {n:4d}  {t} -> {p}")


def print_calibration(scores: dict[str, HeadScores], dev: DevSet) -> None:
    """Reliability per confidence band and expected calibration error, per head."""
    for head in HEADS:
        s = scores[head]
        reliability = calibration_bins(s.scores.max(axis=1), s.correct(dev.labels[head]))
        bands = ", ".join(
            f"{b['low']:.1f}-{b['high']:.1f}: {b['count']} at {b['confidence']:.2f} -> {b['accuracy']:.2f}"
            for b in reliability["bins"]
        )
        print(f"  {head:<10} ECE {reliability['ece']:.3f} | {bands}")


def curve(scores: HeadScores, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    confidence = scores.scores.max(axis=1)
    correct = scores.correct(truth)
    order = np.argsort(-confidence, kind="stable")
    coverage = np.arange(1, len(order) + 1) / len(order)
    return coverage, np.cumsum(correct[order]) / np.arange(1, len(order) + 1)


def print_curve(scores: HeadScores, truth: np.ndarray, png: Path | None) -> None:
    coverage, precision = curve(scores, truth)
    print(f"  {'coverage':>8} {'precision':>9}")
    for share in (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        print(f"  {share:8.0%} {precision[int(share * len(coverage)) - 1]:9.3f}")
    for target in (0.95, 0.9, 0.85):
        ok = np.flatnonzero(precision >= target)
        print(f"  largest coverage at precision >= {target}: {coverage[ok[-1]] if len(ok) else 0.0:.3f}")
    if png is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(5, 4))
        axes.plot(coverage, precision)
        if scores.threshold is not None:
            cov, prec = coverage_precision(scores.scores.max(axis=1), scores.correct(truth), scores.threshold)
            axes.scatter([cov], [prec], color="red", zorder=3, label=f"threshold {scores.threshold:.3f}")
            axes.legend(loc="lower left")
        axes.set(
            xlabel="auto-routed share (coverage)",
            ylabel="precision of auto-routed",
            ylim=(0.6, 1.0),
            title="Department auto-routing on real messages",
        )
        axes.grid(alpha=0.3)
        png.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(png, dpi=120, bbox_inches="tight")
        plt.close(figure)
        print(f"  curve written to {png}")


def ablation(corpus: LabelledData, ids: list[str], dev: DevSet) -> None:
    """Each design step of issue 10, trained on the corpus and scored on the dev set."""
    original = np.array([int(i[1:]) <= ORIGINAL_CORPUS_ROWS for i in ids])
    split_rows = np.array([s == "train" for s in corpus.splits])

    def rows(mask: np.ndarray) -> tuple[list[str], list[list[str]]]:
        idx = np.flatnonzero(mask)
        assert corpus.departments is not None
        return [corpus.texts[i] for i in idx], [[corpus.labels[i], corpus.departments[i]] for i in idx]

    then: dict[str, Any] = {"C": 2.0, "pair_prior": 0.0}  # the settings of those steps' time
    early = {"domain_target_precision": 0.95, "department_target_precision": 0.95, **then}
    steps = [
        (
            "original corpus, train split, independent heads, target 0.95",
            original & split_rows,
            {"joint_decoding": False, **early},
        ),
        (
            f"+ {int((~original).sum()):,} new petitions (train split)",
            split_rows,
            {"joint_decoding": False, **early},
        ),
        (
            "+ refit on every corpus row",
            np.ones(len(ids), bool),
            {"joint_decoding": False, **early},
        ),
        (
            "+ joint domain/department decoding",
            np.ones(len(ids), bool),
            early,
        ),
        ("+ thresholds at 0.985 out-of-fold", np.ones(len(ids), bool), then),
        ("+ pair weights chosen out of fold", np.ones(len(ids), bool), {"C": 2.0}),
        ("+ C 0.5 (shipped)", np.ones(len(ids), bool), {}),
    ]
    everything = np.ones(len(dev.texts), bool)
    for name, mask, params in steps:
        texts, targets = rows(mask)
        model = TriageModel(**params).fit(texts, targets)
        scores = model_scores(model, dev.texts)
        print_figures(name[:22], figures(scores, dev, everything))
        print(f"    ^ {name} ({len(texts)} rows)")
        if name.startswith("+ refit"):
            raw = {
                h: HeadScores(s.classes, model.heads_[h].decision_function(model.transform(dev.texts)), None)
                for h, s in scores.items()
            }
            print_figures("  raw LinearSVC ranking", figures(raw, dev, everything))


def parse_sweep(items: list[str]) -> list[tuple[str, float]]:
    """`NAME=V1,V2` items as (parameter, value) pairs; a name TriageModel does not take is an error."""
    known = TriageModel().get_params()
    settings = []
    for item in items:
        name, _, values = item.partition("=")
        if name not in known or not values:
            raise SystemExit(f"--sweep {item!r}: expected NAME=V1,V2 with NAME one of {', '.join(sorted(known))}")
        try:
            settings += [(name, int(v) if v.strip().isdigit() else float(v)) for v in values.split(",")]
        except ValueError:
            raise SystemExit(f"--sweep {item!r}: values must be numbers") from None
    return settings


def sweep(corpus: LabelledData, dev: DevSet, settings: list[tuple[str, float]], reference: RoutingOutcome) -> None:
    """The default model fitted on the whole corpus once per setting, scored on all dev rows, with its paired
    difference from the `reference` model (the one loaded from the registry)."""
    everything = np.ones(len(dev.texts), bool)
    for name, value in settings:
        model = TriageModel(**{name: value}).fit(corpus.texts, corpus.targets(), n_jobs=-1)
        scores = model_scores(model, dev.texts)
        print_figures(f"{name}={value}"[:22], figures(scores, dev, everything))
        counts = domain_class_counts(scores, dev)
        small = [f"{c} {counts[c][1]} predicted ({counts[c][2]} right)" for c in ("finance", "prepaid") if c in counts]
        print(f"    ^ {', '.join(small)}")
        print_differences(f"{name}={value}", dev_outcome(model, scores, dev), reference)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DIR, help="folder with messages_labeled.csv and labels_triage.tsv"
    )
    parser.add_argument("--registry", type=Path, default=Settings().registry)
    parser.add_argument("--version", help="model version (default: the current one)")
    parser.add_argument("--png", type=Path, default=ROOT / "reports" / "real_text_curve.png")
    parser.add_argument("--ablation", action="store_true", help="retrain each design step (slow)")
    parser.add_argument("--record", type=Path, help="write the model's figures as JSON (for the model card)")
    parser.add_argument(
        "--sweep", action="append", default=[], metavar="NAME=V1,V2", help="one fit per value of a model parameter"
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="REGISTRY",
        help="also score this registry's current model and print its paired differences from the model",
    )
    args = parser.parse_args()
    settings = parse_sweep(args.sweep)
    missing = [name for name in ("messages_labeled.csv", "labels_triage.tsv") if not (args.data_dir / name).is_file()]
    if missing:
        print(
            f"real-text dev set not found in {args.data_dir} (missing {', '.join(missing)}); "
            "pass --data-dir, see ../shared/datasets/README.md"
        )
        return 2
    dev = load_dev(args.data_dir)
    try:
        model, manifest = load_model(Registry(args.registry).resolve(args.version))
    except (RegistryError, ModelLoadError) as error:
        print(f"{error} (or pass --registry FOLDER)")
        return 2
    against = None
    if args.against is not None:  # checked before the long run, not after it
        try:
            against = load_model(Registry(args.against).resolve(None))
        except (RegistryError, ModelLoadError) as error:
            print(f"--against: {error}")
            return 2
    corpus = load_corpus()
    ids = [json.loads(line)["id"] for line in corpus_path().read_text(encoding="utf-8").splitlines() if line.strip()]
    shipped_rows = manifest.training_data.get("shipped_model_rows", manifest.training_data.get("train_rows"))
    baseline_corpus = corpus if shipped_rows == len(corpus) else corpus.subset("train")
    print(
        f"model {manifest.version} on {len(dev.texts)} real messages ({int(dev.clear.sum())} clear); "
        f"baseline: jieba word TF-IDF + LinearSVC on the same {len(baseline_corpus)} corpus rows"
    )
    ours, base = model_scores(model, dev.texts), baseline_scores(baseline_corpus, dev.texts)
    everything = np.ones(len(dev.texts), bool)
    record = {}
    for subset, rows in (("all rows", everything), ("clear only", dev.clear)):
        print(f"\n== {subset}")
        mine = figures(ours, dev, rows)
        record[subset] = asdict(mine)
        print_figures("model", mine)
        print_figures("baseline", figures(base, dev, rows))
    print("\n== domain classes (model, all rows; this board has few finance and prepaid cases)")
    print_domain_classes(ours, dev)
    print("\n== departments (model, all rows)")
    print_departments(ours, dev)
    print("\n== confidence against accuracy (model, all rows): does a shown 0.9 mean nine in ten right?")
    print_calibration(ours, dev)
    print("\n== department auto-routing curve (model, all rows)")
    print_curve(ours["department"], dev.labels["department"], args.png)
    print("\n== as the service routes (model, all rows)")
    outcome = dev_outcome(model, ours, dev)
    intervals = print_intervals(outcome)
    print_by_clarity(outcome, dev)
    if against is not None:
        other, other_manifest = against
        print(f"\n== {other_manifest.version} from {args.against}, against the model (all rows)")
        other_scores = model_scores(other, dev.texts)
        other_outcome = dev_outcome(other, other_scores, dev)
        print_figures(other_manifest.version, figures(other_scores, dev, everything))
        print_differences(other_manifest.version, other_outcome, outcome)
    if args.record:
        service = outcome.figures()
        payload = {
            "model_version": manifest.version,
            "training_data_sha256": manifest.training_data.get("sha256"),
            "parameters": manifest.parameters,
            "command": "benchmarks/real_data.py --record data/real_text_evaluation.json",
            "figures": record,
            # All rows, auto-routed only when every head is confident; 95% bootstrap intervals per figure.
            "as_the_service_routes": {
                "auto_coverage": service.auto_coverage,
                "auto_precision": service.auto_precision,
                "intervals": intervals,
            },
        }
        args.record.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.record}")
    if args.ablation:
        print("\n== ablation (each step trained on the corpus, scored on all dev rows)")
        ablation(corpus, ids, dev)
    if settings:
        print("\n== sweep (the default model, one parameter changed; whole corpus, all dev rows)")
        sweep(corpus, dev, settings, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())

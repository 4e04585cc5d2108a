"""Training orchestration: fit on the training split, evaluate on held-out data, register the version."""

from __future__ import annotations

import json
import math
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sklearn.model_selection import train_test_split

from model.classifier import MIN_EXAMPLES_PER_LABEL, TriageModel
from model.features import cached_tokens
from model.metrics import evaluate_model
from model.persistence import Manifest, save_flags, save_model, write_manifest
from model.registry import Registry
from model.taxonomy import Taxonomy, load_taxonomy
from model.text import mask_name, mask_personal_data
from model.tokenize import Segmenter
from training.dataset import LabelledData, last_rows, real_text_record_path, row_key
from training.flags import flag_lines, flags_alongside
from training.labels import RARE_BELOW, RareLabel, rare_rows
from training.mixing import DEFAULT_OFFICE_WEIGHT, WeightChoice, choose_office_weight, mix
from training.promotion import COMPARISON_KEY, Comparison, compare_with_current, write_training_rows
from training.report import write_report

LIBRARIES = ("scikit-learn", "jieba", "rjieba", "numpy", "scipy", "skops", "opencc")


@dataclass(frozen=True)
class StepTime:
    step: str
    seconds: float


class StepClock:
    """Wall time of each training step: a step lasts until the next one starts or the clock is read."""

    def __init__(self) -> None:
        self._starts: list[tuple[str, float]] = []

    def start(self, step: str) -> None:
        self._starts.append((step, time.perf_counter()))

    def times(self) -> tuple[StepTime, ...]:
        ends = [started for _, started in self._starts[1:]] + [time.perf_counter()]
        return tuple(StepTime(step, end - started) for (step, started), end in zip(self._starts, ends, strict=True))


def timing_line(times: tuple[StepTime, ...]) -> str:
    """`用时 / time: fit 80.1s, evaluate 2.0s, ...; total 201.3s`, the figure the README quotes."""
    steps = ", ".join(f"{time.step} {time.seconds:.1f}s" for time in times)
    return f"用时 / time: {steps}; 合计 / total {sum(time.seconds for time in times):.1f}s"


@dataclass(frozen=True)
class TrainResult:
    version: str
    folder: Path
    manifest: Manifest
    promoted: bool
    comparison: Comparison
    times: tuple[StepTime, ...] = ()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


MIN_MIXED_OFFICE_ROWS = 20


class TrainingDataError(ValueError):
    """The labelled data cannot train a model (message in Chinese and English)."""


# Labels people are shown. A wrong column (names, phone numbers) makes every value a label, so a
# message lists a few labels, masked, never all of them.
LABELS_SHOWN = 5
# Distinct labels from which "most of them occur once" says the column holds identifiers, not categories.
IDENTIFIER_MIN_LABELS = 5


def looks_like_identifiers(labels: Sequence[str]) -> bool:
    """Most distinct labels occur once: the column probably holds names or numbers, not categories."""
    counts = Counter(labels)
    return len(counts) >= IDENTIFIER_MIN_LABELS and sum(count == 1 for count in counts.values()) * 2 > len(counts)


def shown_label(label: str, identifiers: bool) -> str:
    """A label as a message prints it: personal data masked, and, in a column of identifiers, as a name."""
    masked = mask_personal_data(label)
    return mask_name(masked) if identifiers and masked == label else masked


def first_few(items: Sequence[str], limit: int = LABELS_SHOWN) -> str:
    """The first `limit` items and how many more: `住建局, 人社局 … (另有 12 个 / +12 more)`."""
    shown = ", ".join(items[:limit])
    return shown + (f" … (另有 {len(items) - limit} 个 / +{len(items) - limit} more)" if len(items) > limit else "")


def shown_labels(labels: Sequence[str], identifiers: bool) -> str:
    """The first few labels, masked, and how many more."""
    return first_few([shown_label(label, identifiers) for label in labels])


def label_summary(head: str, labels: Sequence[str]) -> str:
    """How many labels of `head` and their commonest few with counts, masked."""
    counts = Counter(labels).most_common()
    identifiers = looks_like_identifiers(labels)
    return f"{head}: {len(counts)} 个标签 / labels: " + first_few(
        [f"{shown_label(label, identifiers)} {count}" for label, count in counts]
    )


def wrong_column_hint(head: str) -> str:
    return (
        f"多数 {head} 标签只出现一次，标签列可能选错了（姓名、电话等）/ most {head} labels occur only once: "
        "the label column is probably wrong (names, phone numbers)"
    )


def check_trainable(
    data: LabelledData, holdout: float, per_class: bool = True, set_aside: Sequence[RareLabel] = ()
) -> None:
    """Refuse, with a message people can act on, data that scikit-learn would refuse in English.

    `per_class=False` when the corpus is mixed in: it supplies examples of classes the office rarely sees.
    `set_aside`: labels already left out for too few rows, named when they leave too few classes.
    """
    has_split = "test" in data.splits
    if not has_split and not 0 < holdout < 1:
        raise TrainingDataError(f"留出比例应大于 0 且小于 1 / --holdout must be between 0 and 1 (got {holdout})")
    rows = data.subset("train") if has_split else data
    needed = MIN_EXAMPLES_PER_LABEL if has_split else max(2, math.ceil(MIN_EXAMPLES_PER_LABEL / (1 - holdout)))
    for head, labels in rows.head_labels().items():
        counts = Counter(labels)
        identifiers = looks_like_identifiers(labels)
        if len(counts) < 2:
            found = shown_labels(sorted(counts), identifiers)
            raise TrainingDataError(
                f"{head}: 至少需要两个类别，只找到 [{found}] / at least two classes are needed, found [{found}]"
                + set_aside_reason(set_aside)
            )
        if not per_class:
            continue
        rare = sorted(label for label, count in counts.items() if count < needed)
        if rare:
            raise TrainingDataError(
                f"{head}: 每个类别至少需要 {needed} 行，以下类别不足 / each class needs at least {needed} rows; "
                f"too few ({len(rare)}): {shown_labels(rare, identifiers)}"
                + (f"; {wrong_column_hint(head)}" if identifiers else "")
            )
        if not has_split and math.floor(len(labels) * holdout) < len(counts):
            raise TrainingDataError(
                f"{head}: 留出集太小，每个类别至少要有一行 / the held-out share ({holdout}) of {len(labels)} rows "
                f"is smaller than the {len(counts)} classes; add rows or raise --holdout"
            )


def set_aside_reason(set_aside: Sequence[RareLabel]) -> str:
    """Why classes are missing: labels set aside for too few rows (all of them, with a wrong label column)."""
    if not set_aside:
        return ""
    heads = ", ".join(f"{head} {count}" for head, count in Counter(label.head for label in set_aside).items())
    return (
        f"。{len(set_aside)} 个标签因样本过少（少于 {RARE_BELOW} 行）已搁置（{heads}），请检查标签列 / "
        f"{len(set_aside)} labels were set aside for having fewer than {RARE_BELOW} rows ({heads}); "
        "check the label columns"
    )


@dataclass(frozen=True)
class Duplicates:
    """Rows dropped because a later row has the same text, and texts whose copies disagree on a label."""

    dropped: int = 0
    conflicting: int = 0


def without_duplicate_texts(data: LabelledData) -> tuple[LabelledData, Duplicates]:
    """One row per text (compared as `row_key` compares them), the last one, as the last decision wins in feedback.

    A copy of a held-out row left in training would score as if it were new, so a repeated file
    looks far better than it is. `data` itself comes back when it has no duplicates.
    """
    last = last_rows(data.texts)
    if len(last) == len(data):
        return data, Duplicates()
    targets: dict[str, set[tuple[str, ...]]] = {}
    departments = data.departments or [""] * len(data)
    for text, label, department in zip(data.texts, data.labels, departments, strict=True):
        targets.setdefault(row_key(text), set()).add((label, department))
    kept = data.select(sorted(last.values()))
    kept.invalid = data.invalid
    return kept, Duplicates(len(data) - len(kept), sum(len(seen) > 1 for seen in targets.values()))


def split_holdout(data: LabelledData, holdout: float, seed: int = 0) -> tuple[LabelledData, LabelledData]:
    """Use the split recorded in the data; otherwise hold out a share, fixed by `seed`.

    The share is stratified by department (domain without one); rows of a label seen once stay in
    training, and a split too small to hold every label falls back to an unstratified one.
    """
    if "test" in data.splits:
        return data.subset("train"), data.subset("test")
    strata = data.departments if data.departments is not None else data.labels
    counts = Counter(strata)
    pool = [index for index, label in enumerate(strata) if counts[label] > 1]
    try:
        _, test_idx = train_test_split(
            pool, test_size=holdout, stratify=[strata[index] for index in pool], random_state=seed
        )
    except ValueError:  # fewer held-out rows than labels
        _, test_idx = train_test_split(pool, test_size=holdout, random_state=seed)
    data.splits = ["train"] * len(data)
    for index in test_idx:
        data.splits[index] = "test"
    return data.subset("train"), data.subset("test")


def manifest_parameters(model: TriageModel) -> dict[str, Any]:
    """The model's parameters as the manifest stores them (JSON: tuples become lists)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in model.get_params().items()}


def recorded_real_text_figures(data: LabelledData, parameters: dict[str, Any]) -> dict[str, Any] | None:
    """Dev-set figures recorded by `benchmarks/real_data.py --record` for exactly this data and configuration.

    The real messages are not shipped, so a fresh checkout cannot measure them; training is deterministic,
    so figures measured on a model from the same data and parameters hold for this one too.
    """
    path = real_text_record_path()
    if not path.is_file():
        return None
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    # Records from before the segmenter setting were measured with jieba.
    recorded_parameters = {"segmenter": Segmenter.JIEBA.value, **record.get("parameters", {})}
    if record.get("training_data_sha256") != data.fingerprint() or recorded_parameters != parameters:
        return None
    return record


def model_card(manifest: Manifest, taxonomy: Taxonomy) -> str:
    lines = [
        f"# Model card: petition triage {manifest.version}",
        "",
        "## Intended use",
        "Suggests the domain and responsible department of a Chinese petition (信访件) to an intake clerk, "
        "who accepts or corrects it. Items below the stored confidence thresholds are marked "
        "`needs_review` and go to manual triage. It does not decide a case.",
        "",
        "## Training data",
        f"- sources: {', '.join(manifest.training_data.get('sources', []))}",
        f"- report model: {manifest.training_data.get('train_rows')} training rows, "
        f"{manifest.training_data.get('test_rows')} held-out rows; shipped model: "
        f"{manifest.training_data.get('shipped_model_rows')} rows (refit on every row after the report)",
        f"- sha256: {manifest.training_data.get('sha256')}",
        "",
        "## Labels",
    ]
    for head, labels in manifest.labels.items():
        lines.append(f"- {head}: " + ", ".join(f"{label} {taxonomy.name(label, head)}" for label in labels))
    real = manifest.metrics.get("real_text_dev")
    if real:
        lines += ["", "## Real messages (dev set, not our own writing)"]
        lines.append(
            f"Measured by `{real['command']}` on model {real['model_version']}, trained from the same data and "
            "parameters (training is deterministic):"
        )
        for subset, figures in real["figures"].items():
            lines.append(
                f"- {subset} ({figures['rows']}): domain accuracy {figures['domain_accuracy']:.3f}, macro-F1 "
                f"{figures['domain_macro_f1']:.3f}; department top-1 {figures['department_top1']:.3f}, top-3 "
                f"{figures['department_top3']:.3f}; auto-routed {figures['department_auto_coverage']:.1%} of "
                f"departments at precision {figures['department_auto_precision']:.3f}, "
                f"{figures['domain_auto_coverage']:.1%} of domains at {figures['domain_auto_precision']:.3f}"
            )
        service = real.get("as_the_service_routes")
        if service:
            lines.append(
                f"- as the service routes (every head confident), all rows: {service['auto_coverage']:.1%} "
                f"auto-routed, department right for {service['auto_precision']:.3f} of them"
            )
            intervals = service.get("intervals", {})
            if intervals:
                lines.append(
                    "- 95% bootstrap intervals (all rows): "
                    + "; ".join(f"{name} [{low:.3f}, {high:.3f}]" for name, (low, high) in intervals.items())
                )
    lines += ["", "## Held-out results (our own writing)"]
    for head, metrics in manifest.metrics.get("test", {}).items():
        lines.append(
            f"- {head}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}, top-3 "
            f"{metrics['top3_accuracy']:.3f}, coverage {metrics['coverage_at_threshold']:.3f} at precision "
            f"{metrics['precision_at_threshold']:.3f}"
        )
    joint = manifest.metrics.get("joint_decoding", {})
    if joint.get("pair_prior") is not None:
        lines.append(
            f"- joint decoding: domain and department pairs weighted by how often the training rows pair them "
            f"(pointwise mutual information to the power {joint['pair_prior']}, chosen on out-of-fold predictions)"
        )
    if manifest.flags:
        lines += ["", "## Flags (涉法涉诉 / 集体访)", *flag_lines(manifest.flags)]
    lines += [
        "",
        "## Limitations",
        "- The default corpus is hand-written by the project team; real petitions are messier. "
        "Judge the model on your own labelled history before relying on it.",
        "- Thresholds were chosen on out-of-fold predictions of the training rows for a strict precision "
        "target, set where real messages kept the promise; re-check coverage after any change in the mix "
        "of petitions.",
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Mixing:
    """How the corpus joins an office's rows: `corpus` None trains on the office's rows alone."""

    corpus: LabelledData | None = None
    office_weight: float | None = DEFAULT_OFFICE_WEIGHT  # None: chosen by cross-validation on the office's rows


def fit_mixed(
    rows: LabelledData, mixing: Mixing, weight: float, params: dict[str, Any], jobs: int | None = None
) -> TriageModel:
    """One fit on `rows` (weighted) plus the mixed-in corpus, thresholds from `rows` only; `jobs` processes."""
    fitted = mix(mixing.corpus, rows, weight)
    return TriageModel(**params).fit(
        fitted.texts,
        fitted.targets,
        sample_weight=fitted.sample_weight,
        threshold_rows=fitted.threshold_rows,
        n_jobs=jobs,
    )


def _without_rare(data: LabelledData, mixing: Mixing) -> tuple[LabelledData, list[RareLabel]]:
    keep, rare = rare_rows(data, mixing.corpus.head_labels() if mixing.corpus is not None else None)
    return (data if len(keep) == len(data) else data.select(keep)), rare


@cached_tokens()  # each distinct text is segmented once across the weight CV, report fit, refit and comparisons
def train_and_register(
    data: LabelledData,
    registry: Registry,
    params: dict[str, Any] | None = None,
    holdout: float = 0.2,
    taxonomy: Taxonomy | None = None,
    step: Callable[[str], None] = lambda _: None,
    refit: bool = True,
    mixing: Mixing = Mixing(),
    jobs: int | None = None,
) -> TrainResult:
    """Fit, evaluate on held-out rows of `data`, compare with the current model, refit on all rows, register.

    Rows repeating an earlier text are dropped first (`without_duplicate_texts`), so no held-out row
    has its copy in training.

    With `mixing.corpus`, every fit also learns from the corpus, `data` (the office's rows) weighted;
    held-out rows and thresholds come from `data` only. Labels too rare to cross-validate are set
    aside and listed in the manifest. The first model of a registry becomes current. `jobs` processes
    fit the heads (the same model as one process); the result carries each step's wall time.
    """
    clock = StepClock()

    def begin(name: str) -> None:
        clock.start(name)
        step(name)

    taxonomy = taxonomy or load_taxonomy()
    params = dict(params or {})
    data, duplicates = without_duplicate_texts(data)
    kept, set_aside = _without_rare(data, mixing)  # rare labels are set aside below, never a reason to stop
    # With the corpus mixed in, rare office classes borrow its examples; a tiny office file still cannot
    # hold out rows of every class, so it gets the per-class check.
    check_trainable(
        kept, holdout, per_class=mixing.corpus is None or len(kept) < MIN_MIXED_OFFICE_ROWS, set_aside=set_aside
    )
    template = TriageModel(**params)
    begin("split")
    train_part, test_part = split_holdout(data, holdout)
    train_part, rare = _without_rare(train_part, mixing)
    weight = WeightChoice(DEFAULT_OFFICE_WEIGHT)
    if mixing.corpus is not None:
        begin("weight")
        weight = (
            WeightChoice(mixing.office_weight)
            if mixing.office_weight is not None
            else choose_office_weight(
                mixing.corpus, train_part, C=template.C, segmenter=template.segmenter, jobs=jobs or -1
            )
        )
    # With jobs > 1 the flags are fitted in a process of their own meanwhile ("flags" is the wait for them).
    with flags_alongside(jobs, data, train_part, test_part, mixing.corpus, refit) as flag_result:
        begin("fit")
        model = fit_mixed(train_part, mixing, weight.weight, params, jobs)
        begin("evaluate")
        version = registry.new_version()
        probabilities = model.head_probabilities(model.transform(test_part.texts))
        test_metrics = evaluate_model(model, test_part.texts, test_part.head_labels(), probabilities)
        comparison = compare_with_current(registry, model, version, test_part)
        shipped_rows = train_part
        if refit:
            # The report above is honest (held-out rows); the shipped model then learns from every row,
            # which measured about +1.6 points of department top-1 on real messages.
            begin("refit")
            shipped_rows, rare = _without_rare(data, mixing)
            model = fit_mixed(shipped_rows, mixing, weight.weight, params, jobs)
        begin("flags")
        flags = flag_result()
    begin("save")
    folder = registry.root / version
    sha256 = save_model(model, folder)
    flags_entry = flags.manifest_entry(save_flags(flags.model, folder)) if flags is not None else {}
    corpus_rows = len(mixing.corpus) if mixing.corpus is not None else 0
    sources = data.sources + (mixing.corpus.sources if mixing.corpus is not None else [])
    manifest = Manifest(
        version=version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model_sha256=sha256,
        training_data={
            "sources": sources,
            "sha256": data.fingerprint(),
            "rows": len(data),
            "train_rows": len(train_part) + corpus_rows,
            "test_rows": len(test_part),
            "shipped_model_rows": len(shipped_rows) + corpus_rows,
            "skipped_invalid_rows": len(data.invalid),
            "duplicate_rows_dropped": duplicates.dropped,
            "conflicting_duplicate_texts": duplicates.conflicting,
            "corpus_rows": corpus_rows,
            "office_weight": weight.weight if mixing.corpus is not None else None,
            "office_weight_choice": weight.describe() if mixing.corpus is not None else None,
            "set_aside_labels": [asdict(label) for label in rare],
        },
        labels={head: model.classes(head) for head in model.head_names_},
        thresholds=model.thresholds_,
        metrics={
            "test": test_metrics,
            "out_of_fold_train": model.validation_,
            "joint_decoding": {"pair_prior": model.pair_prior_},
            COMPARISON_KEY: comparison.to_dict(),
        },
        parameters=manifest_parameters(model),
        library_versions=library_versions(),
        segmenter=model.trained_segmenter.value,
        flags=flags_entry,
    )
    recorded = recorded_real_text_figures(data, manifest.parameters) if mixing.corpus is None else None
    if recorded is not None:
        manifest.metrics["real_text_dev"] = recorded
    write_manifest(manifest, folder)
    write_training_rows(folder, shipped_rows.texts + (mixing.corpus.texts if mixing.corpus is not None else []))
    write_report(
        test_metrics,
        folder,
        f"Evaluation of {version} on {len(test_part)} held-out rows",
        taxonomy,
        notes=["Held-out rows were never seen in training or threshold selection."],
        appendix=["## 与当前模型比较 / Comparison with the current model", "", *comparison.table()],
    )
    (folder / "MODEL_CARD.md").write_text(model_card(manifest, taxonomy), encoding="utf-8")
    promoted = registry.current() is None
    if promoted:
        registry.promote(version)
    return TrainResult(version, folder, manifest, promoted, comparison, clock.times())

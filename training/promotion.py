"""New model against current model on the same held-out rows, and what stops a promotion.

A model that scores worse than the one in service on the office's own held-out rows, that has no
department head, or whose departments the service cannot route to must not be promoted by
accident. Both models are judged only on held-out rows that neither has seen in training: each
model folder lists hashes of its training rows, so a current model refitted on every row of the
same file is not flattered by rows it learned from. When no such rows are left, or the current model
cannot be loaded, the held-out accuracy each model recorded is the fallback; without it only --force
promotes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.metrics import (
    Interval,
    RoutingFigures,
    RoutingOutcome,
    difference_intervals,
    resampled_figures,
    routing_outcome,
)
from model.persistence import Manifest, ModelLoadError, load_model, read_manifest
from model.registry import Registry, RegistryError
from model.taxonomy import Taxonomy
from training.dataset import LabelledData, row_key

TRAINING_ROWS_FILE = "training_rows.txt"
# Differences below this on the same rows are noise between two fits, not a worse model.
TOLERANCE = 0.005
COMPARISON_KEY = "comparison"
BOOTSTRAP_RESAMPLES = 200
# Routing fewer items is the price of a stricter precision promise, not a worse model.
IGNORED_FOR_PROMOTION = frozenset({"auto_coverage"})


def write_training_rows(folder: Path, texts: Iterable[str]) -> None:
    keys = sorted({row_key(text) for text in texts})
    (folder / TRAINING_ROWS_FILE).write_text("\n".join(keys) + "\n", encoding="utf-8")


def read_training_rows(folder: Path) -> frozenset[str] | None:
    """Hashes of the rows a model was trained on; None for a model saved before they were recorded."""
    path = folder / TRAINING_ROWS_FILE
    if not path.is_file():
        return None
    return frozenset(line for line in path.read_text(encoding="utf-8").split() if line)


def unseen_rows(data: LabelledData, seen: frozenset[str] | None) -> list[int]:
    if seen is None:
        return list(range(len(data)))
    return [index for index, text in enumerate(data.texts) if row_key(text) not in seen]


def outcome_on(model: Any, data: LabelledData) -> RoutingOutcome:
    return routing_outcome(model, data.head_labels(), model.head_probabilities(model.transform(data.texts)))


def figures_on(model: Any, data: LabelledData) -> RoutingFigures:
    return outcome_on(model, data).figures()


def clearly_worse(new: RoutingOutcome, current: RoutingOutcome, resamples: int = BOOTSTRAP_RESAMPLES) -> list[str]:
    """Figures on which the new model is worse beyond noise: by more than TOLERANCE on these rows, and in at
    least 95% of paired bootstrap resamples of them (a handful of rows of a rare label cannot decide it).
    """
    observed_new, observed_current = new.figures(), current.figures()
    candidates = [
        (name, label)
        for name, label in RoutingFigures.COLUMNS
        if name not in IGNORED_FOR_PROMOTION
        and getattr(observed_new, name) is not None
        and getattr(observed_current, name) is not None
        and getattr(observed_new, name) < getattr(observed_current, name) - TOLERANCE
    ]
    if not candidates:
        return []
    losses = dict.fromkeys((name for name, _ in candidates), 0)
    for sample_new, sample_current in resampled_figures([new, current], resamples):
        for name in losses:
            losses[name] += getattr(sample_new, name) < getattr(sample_current, name)
    return [
        f"{label}: {getattr(observed_new, name):.3f} < {getattr(observed_current, name):.3f}"
        for name, label in candidates
        if losses[name] >= 0.95 * resamples
    ]


@dataclass(frozen=True)
class Comparison:
    """New and current model on the same held-out rows; `current` is None when there was none to compare."""

    new_version: str
    against: str | None
    rows: int
    new: RoutingFigures | None
    current: RoutingFigures | None
    note: str = ""
    worse: tuple[str, ...] = ()  # figures on which the new model is clearly worse (see `clearly_worse`)
    # Paired 95% bootstrap interval of `new - current` per figure (`model.metrics.difference_intervals`).
    changes: dict[str, Interval] = field(default_factory=dict)

    def table(self) -> list[str]:
        """Markdown table, also readable in a terminal."""
        if self.new is None:
            return [f"比较 / comparison: {self.note}"]
        current_name = self.against or "—"
        lines = [
            f"新模型与当前模型，同一批 {self.rows} 条留出数据 / new vs current model on the same {self.rows} "
            "held-out rows (seen by neither in training)",
            "",
            f"| | 新 new {self.new_version} | 当前 current {current_name} | 差 change |",
            "|---|---:|---:|---:|",
        ]
        for name, label in RoutingFigures.COLUMNS:
            new = getattr(self.new, name)
            current = getattr(self.current, name) if self.current is not None else None
            change = f"{new - current:+.3f}" if new is not None and current is not None else ""
            if change and name in self.changes:
                change += f" {self.changes[name].signed()}"
            lines.append(f"| {label} | {_cell(new)} | {_cell(current)} | {change} |")
        if self.changes:
            lines += [
                "",
                "差后方括号为同一批数据自助重抽样的 95% 区间；含 0 即分不出好坏 / brackets: paired 95% bootstrap "
                "interval of the change; one that holds 0 cannot tell the two models apart on these rows",
            ]
        if self.note:
            lines += ["", self.note]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Comparison:
        figures = {key: RoutingFigures(**values[key]) if values.get(key) else None for key in ("new", "current")}
        return cls(
            new_version=values["new_version"],
            against=values.get("against"),
            rows=int(values.get("rows", 0)),
            new=figures["new"],
            current=figures["current"],
            note=values.get("note", ""),
            worse=tuple(values.get("worse", ())),
            changes={name: Interval(**bounds) for name, bounds in values.get("changes", {}).items()},
        )


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def compare_with_current(registry: Registry, new_model: Any, new_version: str, held_out: LabelledData) -> Comparison:
    """Both models on the held-out rows the current model has not seen (all of them for the new one)."""
    if not len(held_out):
        return Comparison(new_version, None, 0, None, None, "没有留出数据 / no held-out rows")
    current_version = registry.current()
    if current_version is None:
        figures = figures_on(new_model, held_out)
        return Comparison(new_version, None, len(held_out), figures, None, "没有当前模型 / no current model yet")
    try:
        folder = registry.folder(current_version)
        current_model, _ = load_model(folder)
    except (RegistryError, ModelLoadError) as error:
        figures = figures_on(new_model, held_out)
        return Comparison(
            new_version, current_version, len(held_out), figures, None, f"当前模型无法加载 / current model: {error}"
        )
    rows = unseen_rows(held_out, read_training_rows(folder))
    if not rows:
        return Comparison(
            new_version,
            current_version,
            0,
            None,
            None,
            f"当前模型 {current_version} 训练时已见过全部留出数据，无法公平比较 / the current model was trained on "
            "every held-out row, so the two cannot be compared fairly on them",
        )
    shared = held_out.select(rows)
    note = ""
    if len(rows) < len(held_out):
        note = (
            f"{len(held_out) - len(rows)} 条留出数据当前模型已见过，未计入 / "
            "held-out rows the current model was trained on are left out"
        )
    new, current = outcome_on(new_model, shared), outcome_on(current_model, shared)
    return Comparison(
        new_version,
        current_version,
        len(rows),
        new.figures(),
        current.figures(),
        note,
        tuple(clearly_worse(new, current)),
        difference_intervals(new, current),
    )


@dataclass(frozen=True)
class PromotionCheck:
    """Why a version should not be promoted (empty `problems`: fine); `comparison` as recorded at training;
    `notes`: what people should know when it is fine (the figures it was judged by were not paired)."""

    problems: list[str]
    comparison: Comparison | None
    notes: tuple[str, ...] = ()


# Recorded held-out accuracies come from different rows, so only a drop this large says "worse":
# two fair samples of a few dozen rows differ by several points, a wrong label column by tens.
RECORDED_DROP = 0.10


def recorded_accuracies(manifest: Manifest) -> dict[str, float]:
    """Held-out accuracy per head as recorded at training (`metrics["test"]`)."""
    recorded = manifest.metrics.get("test", {})
    return {
        head: float(values["accuracy"])
        for head, values in recorded.items()
        if isinstance(values, dict) and isinstance(values.get("accuracy"), int | float)
    }


def unpaired_check(comparison: Comparison, new: Manifest, current: Manifest | None) -> tuple[list[str], list[str]]:
    """Problems and notes when the two models could not be compared on the same rows (`fairly_compared`).

    That happens in the ordinary loop (promote a model refitted on every row, retrain on the same file)
    and when the current model cannot be loaded; passing it silently let a model trained on a shuffled
    column replace a good one. The fallback is the one figure both manifests record, held-out accuracy
    per head on each model's own held-out rows, and only a drop of RECORDED_DROP counts. Without those
    figures nothing can be checked, so only --force promotes.
    """
    reason = comparison.note or "没有可比较的留出结果 / no figures to compare"
    if comparison.current is not None:
        reason = (
            f"当前模型训练时已见过大部分留出数据，仅余 {comparison.rows} 条 / the current model was trained on "
            f"most held-out rows; {comparison.rows} left"
        )
    ours = recorded_accuracies(new)
    theirs = recorded_accuracies(current) if current is not None else {}
    shared = sorted(ours.keys() & theirs.keys())
    if not shared:
        return [
            f"无法与当前模型公平比较，也没有当前模型记录的留出结果可对照（{reason}）/ no fair comparison with the "
            f"current model and no held-out figures of it recorded to fall back on ({reason})"
        ], []
    problems = [
        f"{head}: 留出准确率 {ours[head]:.3f} 远低于当前模型记录的 {theirs[head]:.3f} / held-out accuracy "
        f"{ours[head]:.3f} is far below the current model's recorded {theirs[head]:.3f}"
        for head in shared
        if ours[head] < theirs[head] - RECORDED_DROP
    ]
    figures = ", ".join(f"{head} {ours[head]:.3f} vs {theirs[head]:.3f}" for head in shared)
    note = (
        f"未能在同一批数据上比较（{reason}）；改为对照两个模型各自记录的留出准确率 / not compared on the same "
        f"rows ({reason}); checked the held-out accuracy each model recorded instead: {figures}"
    )
    return [f"比当前模型差 / worse than the current model: {problem}" for problem in problems], [note]


def check_promotion(
    manifest: Manifest, current: str | None, taxonomy: Taxonomy, current_manifest: Manifest | None = None
) -> PromotionCheck:
    """No department head, departments the service cannot route, or worse than the current model.

    `current_manifest` (of version `current`; None when unreadable) is the fallback when the recorded
    comparison has no figures of the current model (`unpaired_check`).
    """
    problems = []
    notes: list[str] = []
    departments = manifest.labels.get("department")
    if not departments:
        problems.append("模型没有部门预测，无法自动分流 / the model has no department head: nothing can be routed")
    else:
        unroutable = unroutable_departments(departments, taxonomy)
        if unroutable:
            problems.append(
                "服务无法分流到这些部门（不在分类体系中），这些建议都会进入人工分流 / the service cannot route to "
                f"these departments (not taxonomy ids); their items would all go to manual triage: "
                f"{', '.join(unroutable)}"
            )
    recorded = manifest.metrics.get(COMPARISON_KEY)
    comparison = Comparison.from_dict(recorded) if recorded else None
    if comparison is not None and current is not None and current != manifest.version:
        if comparison.against != current:
            problems.append(
                f"训练时比较的是 {comparison.against or '（无）'}，当前模型已是 {current}；请重新训练以再次比较 / "
                f"compared against {comparison.against or 'no model'} at training time but the current model is "
                f"now {current}; retrain to compare again"
            )
        else:
            problems += [f"比当前模型差 / worse than the current model: {reason}" for reason in comparison.worse]
            if not fairly_compared(comparison, manifest):
                unpaired_problems, notes = unpaired_check(comparison, manifest, current_manifest)
                problems += unpaired_problems
    return PromotionCheck(problems, comparison, tuple(notes))


def fairly_compared(comparison: Comparison, manifest: Manifest) -> bool:
    """Both models were scored on most of the new model's held-out rows.

    When the current model learned most of them (retrained on the file it was refitted on), the few
    left are rows it set aside as rare, not a sample of the office's petitions, and decide nothing.
    """
    held_out = manifest.training_data.get("test_rows") or comparison.rows
    return comparison.current is not None and comparison.rows * 2 >= held_out


def readable_manifest(registry: Registry, version: str | None) -> Manifest | None:
    """The manifest of `version`, or None when there is none or it cannot be read (the check then says so)."""
    if version is None:
        return None
    try:
        return read_manifest(registry.folder(version))
    except (RegistryError, ModelLoadError):
        return None


def unroutable_departments(departments: Sequence[str], taxonomy: Taxonomy) -> list[str]:
    return [label for label in departments if label not in taxonomy.departments]

"""Assembling an office's training data: its history, its label names, its clerks' decisions, the corpus.

`triage train --data ... --feedback ... --label-map ...` comes here; what the office should know
(labels the service cannot route, an own-label model, decisions that replaced rows) comes back as
warnings and counts for the command line to print.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from model.taxonomy import Taxonomy
from training.dataset import LabelledData
from training.labels import LabelMap, shares_taxonomy, unknown_labels
from training.mixing import DEFAULT_OFFICE_WEIGHT, FeedbackMerge, merge_feedback
from training.train import Mixing, looks_like_identifiers, shown_labels, wrong_column_hint

HEAD_NAMES_ZH = {"domain": "领域", "department": "部门"}
# Thresholds chosen on the office's own out-of-fold rows keep their promise on the office's text, so
# they need not carry the margin the corpus-only defaults keep for text they have never seen.
OFFICE_TARGET_PRECISION = 0.95


@dataclass(frozen=True)
class OfficeData:
    rows: LabelledData
    mixing: Mixing
    unknown: dict[str, list[str]] = field(default_factory=dict)
    feedback: FeedbackMerge | None = None
    warnings: list[str] = field(default_factory=list)


def prepare_office(
    history: LabelledData | None,
    feedback: LabelledData | None,
    corpus: LabelledData | None,
    taxonomy: Taxonomy,
    label_map: LabelMap | None = None,
    office_weight: float | None = DEFAULT_OFFICE_WEIGHT,
) -> OfficeData:
    """Map labels, add the clerks' decisions, and mix in `corpus` unless the labels are the office's own.

    Warnings name a few labels, masked: a wrong label column (names, phone numbers) must not print them all.
    """
    rows = history
    if rows is not None and label_map is not None:
        rows = label_map.apply(rows)
    merged: FeedbackMerge | None = None
    if feedback is not None:
        rows, merged = merge_feedback(rows, feedback)
    if rows is None:
        raise ValueError("没有训练数据 / no office rows and no feedback to train on")
    warnings = []
    unknown = unknown_labels(rows, taxonomy)
    identifiers = {head: looks_like_identifiers(labels) for head, labels in rows.head_labels().items()}
    own_labels = not shares_taxonomy(rows, taxonomy)
    if own_labels:
        warnings.append(
            "文件中没有分类体系内的标签，训练仅用本单位标签的模型，不混入内置语料 / "
            "none of the file's labels of some head are taxonomy ids: training an own-label model "
            "on the office's rows alone (the corpus cannot be mixed in); "
            "map them with --label-map to use the corpus"
        )
    warnings += [wrong_column_hint(head) for head, suspect in identifiers.items() if suspect]
    if unknown:
        listed = "; ".join(
            f"{HEAD_NAMES_ZH[head]} {head} ({len(labels)}): {shown_labels(labels, identifiers[head])}"
            for head, labels in unknown.items()
        )
        warnings.append(
            f"以下标签不在分类体系中 / labels outside the taxonomy: {listed}. "
            "服务无法分流到这些部门：建议为这些部门的件一律进入人工分流，"
            "`triage promote` 将拒绝该模型（除非 --force）/ "
            "the service cannot route to such departments: items suggested for them go to manual triage, "
            "and `triage promote` refuses the model unless --force. "
            "Map them to taxonomy ids with --label-map."
        )
    mixing = Mixing(None if own_labels else corpus, office_weight)
    return OfficeData(rows, mixing, unknown, merged, warnings)

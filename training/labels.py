"""An office's own label names and the taxonomy: mapping them, finding the unknown and the rare ones.

Offices label their history with their own names (住建局, 人社局). A label map turns those into
taxonomy ids so the built-in corpus can be mixed in and the service can route the result; labels
that stay outside the taxonomy still train, but the service cannot route to them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model.classifier import HEADS
from model.taxonomy import Taxonomy
from training.dataset import LabelledData
from training.io import InputError, read_rows

# A label with fewer rows than this cannot be cross-validated and calibrated with its own examples.
RARE_BELOW = 4
HEAD_COLUMN = "head"


@dataclass(frozen=True)
class LabelMap:
    """Office label -> taxonomy id; an entry with a head applies to that head only."""

    entries: Mapping[tuple[str | None, str], str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries)

    def map(self, head: str, label: str) -> str:
        return self.entries.get((head, label)) or self.entries.get((None, label)) or label

    def apply(self, data: LabelledData) -> LabelledData:
        """The same rows with every label passed through the map (in place: returns `data`)."""
        data.labels = [self.map("domain", label) for label in data.labels]
        if data.departments is not None:
            data.departments = [self.map("department", label) for label in data.departments]
        return data


def load_label_map(path: Path, encoding: str | None = None) -> LabelMap:
    """Read a two-column table (office name, taxonomy id; any header), optionally with a `head` column."""
    entries: dict[tuple[str | None, str], str] = {}
    for row in read_rows(path, encoding):
        if row.error is not None:
            raise InputError(f"{path} 第{row.number}行 / row {row.number}: {row.error}")
        names = [name for name in row.values if name != HEAD_COLUMN]
        if len(names) < 2:
            raise InputError(
                f"{path}: 标签映射需要两列（原名称, 分类编号）/ "
                "a label map needs two columns (office name, taxonomy id)"
            )
        source, target = (str(row.values.get(name) or "").strip() for name in names[:2])
        head = str(row.values.get(HEAD_COLUMN) or "").strip() or None
        if head is not None and head not in HEADS:
            raise InputError(f"{path} 第{row.number}行 / row {row.number}: head 应为 {'/'.join(HEADS)}: {head!r}")
        if source and target:
            entries[(head, source)] = target
    if not entries:
        raise InputError(f"{path}: 标签映射为空 / the label map is empty")
    return LabelMap(entries)


def taxonomy_ids(taxonomy: Taxonomy, head: str) -> set[str]:
    return set(taxonomy.departments if head == "department" else taxonomy.domains)


def unknown_labels(data: LabelledData, taxonomy: Taxonomy) -> dict[str, list[str]]:
    """Per head, the labels of `data` that are not taxonomy ids (sorted by frequency, heads without any left out)."""
    unknown: dict[str, list[str]] = {}
    for head, labels in data.head_labels().items():
        known = taxonomy_ids(taxonomy, head)
        outside = [label for label, _ in Counter(labels).most_common() if label not in known]
        if outside:
            unknown[head] = outside
    return unknown


def shares_taxonomy(data: LabelledData, taxonomy: Taxonomy) -> bool:
    """Whether every head of `data` uses at least one taxonomy id (else its labels are the office's own)."""
    return all(set(labels) & taxonomy_ids(taxonomy, head) for head, labels in data.head_labels().items())


@dataclass(frozen=True)
class RareLabel:
    head: str
    label: str
    rows: int


def rare_rows(
    data: LabelledData, extra: Mapping[str, Sequence[str]] | None = None
) -> tuple[list[int], list[RareLabel]]:
    """Rows to keep and the labels set aside: those with fewer than RARE_BELOW rows in any head.

    `extra` holds labels of other rows trained alongside (the corpus), per head: a label the corpus
    has enough examples of is not rare.
    """
    heads = data.head_labels()
    keep = list(range(len(data)))
    found: dict[tuple[str, str], int] = {}
    while True:  # dropping a rare department can make a domain rare in turn
        counts = {
            head: Counter(labels[index] for index in keep) + Counter((extra or {}).get(head, []))
            for head, labels in heads.items()
        }
        rare = {
            (head, heads[head][index]): counts[head][heads[head][index]]
            for head in heads
            for index in keep
            if counts[head][heads[head][index]] < RARE_BELOW
        }
        if not rare:
            return keep, [RareLabel(head, label, count) for (head, label), count in sorted(found.items())]
        found.update(rare)
        keep = [index for index in keep if not any((head, heads[head][index]) in rare for head in heads)]

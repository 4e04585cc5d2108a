"""Labelled training data: the project corpus or data staff's own files, validated row by row."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model.flags import FLAGS
from model.text import prepare_text
from training.io import InputError, read_rows, require_columns

# The corpus is not package data: it lives in the checkout's data/ folder (TRIAGE_CORPUS overrides).
CORPUS_PATH = Path(__file__).resolve().parents[1] / "data" / "petitions.jsonl"


def real_text_record_path() -> Path:
    """Dev-set figures of the default configuration, written by `benchmarks/real_data.py --record`."""
    return corpus_path().with_name("real_text_evaluation.json")


def corpus_path() -> Path:
    """Where the default corpus is read from: TRIAGE_CORPUS, else the checkout's data/petitions.jsonl."""
    configured = os.environ.get("TRIAGE_CORPUS")
    return Path(configured) if configured else CORPUS_PATH


@dataclass(frozen=True)
class Columns:
    """Where the text and labels are; several text columns (title, body) are joined with a space."""

    text: tuple[str, ...] = ("text",)
    label: str = "domain"
    department: str | None = "department"
    split: str = "split"


@dataclass(frozen=True)
class InvalidRow:
    source: str
    number: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source} 第{self.number}行 / row {self.number}: {self.reason}"


@dataclass
class LabelledData:
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    departments: list[str] | None = None
    splits: list[str] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    # Litigation / collective labels per flag id, when every file has those columns (the corpus does).
    flags: dict[str, list[bool]] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def has_departments(self) -> bool:
        return self.departments is not None

    def targets(self) -> list[list[str]] | list[str]:
        if self.departments is None:
            return list(self.labels)
        return [[label, department] for label, department in zip(self.labels, self.departments, strict=True)]

    def subset(self, split: str) -> LabelledData:
        return self.select([i for i, value in enumerate(self.splits) if value == split])

    def select(self, rows: Sequence[int]) -> LabelledData:
        """The given rows, in that order (sources kept, invalid rows not)."""
        return LabelledData(
            texts=[self.texts[i] for i in rows],
            labels=[self.labels[i] for i in rows],
            departments=None if self.departments is None else [self.departments[i] for i in rows],
            splits=[self.splits[i] for i in rows],
            sources=self.sources,
            flags=None
            if self.flags is None
            else {name: [values[i] for i in rows] for name, values in self.flags.items()},
        )

    def head_labels(self) -> dict[str, list[str]]:
        """Labels per head name: domain always, department when the data has it."""
        heads = {"domain": self.labels}
        if self.departments is not None:
            heads["department"] = self.departments
        return heads

    def fingerprint(self) -> str:
        """sha256 over texts and labels, recorded in the manifest to tie a model to its data."""
        digest = hashlib.sha256()
        departments = self.departments or [""] * len(self)
        for text, label, department in zip(self.texts, self.labels, departments, strict=True):
            digest.update(f"{text}\x1f{label}\x1f{department}\x1e".encode())
        return digest.hexdigest()

    def distribution(self) -> dict[str, int]:
        return dict(Counter(self.labels).most_common())


def row_key(text: str) -> str:
    """A short hash of the prepared (masked, normalised) text: finds duplicates without storing text."""
    return hashlib.sha256(prepare_text(text).encode()).hexdigest()[:16]


def last_rows(texts: Sequence[str]) -> dict[str, int]:
    """`row_key` -> index of the last row with that text: where rows repeat, the latest one wins."""
    return {row_key(text): index for index, text in enumerate(texts)}


def _cell(value: object) -> str:
    return "" if value is None else str(value).strip()


TRUE_CELLS = frozenset({"true", "1", "yes", "y", "t", "是", "√", "✓"})


def flag_cell(value: object) -> bool:
    """A flag column's cell: JSON booleans, 1/0, true/false, 是/否 (anything else is no)."""
    if isinstance(value, bool):
        return value
    return _cell(value).lower() in TRUE_CELLS


def load_labelled(
    paths: Iterable[Path],
    columns: Columns = Columns(),
    encoding: str | None = None,
) -> LabelledData:
    """Read one or more labelled files; invalid rows are collected, never silently dropped."""
    data = LabelledData(departments=[], flags={name: [] for name in FLAGS})
    department_seen = True
    flags_seen = True
    for path in paths:
        data.sources.append(str(path))
        first = True
        for row in read_rows(path, encoding):
            if first:
                required = [*columns.text, columns.label]
                require_columns(row, required, path)
                department_seen = (
                    department_seen and columns.department is not None and (columns.department in row.values)
                )
                flags_seen = flags_seen and all(name in row.values for name in FLAGS)
                first = False
            values = row.values
            if row.error is not None:
                data.invalid.append(InvalidRow(path.name, row.number, row.error))
                continue
            if row.undecodable:
                data.invalid.append(InvalidRow(path.name, row.number, "含有无法解码的字节 / undecodable bytes"))
                continue
            text = " ".join(part for part in (_cell(values.get(name)) for name in columns.text) if part)
            label = _cell(values.get(columns.label))
            if not text:
                data.invalid.append(InvalidRow(path.name, row.number, "文本为空 / empty text"))
                continue
            if not label:
                data.invalid.append(InvalidRow(path.name, row.number, "缺少标签 / missing label"))
                continue
            department = _cell(values.get(columns.department)) if columns.department else ""
            if department_seen and columns.department and not department:
                data.invalid.append(InvalidRow(path.name, row.number, "缺少部门 / missing department"))
                continue
            data.texts.append(text)
            data.labels.append(label)
            assert data.departments is not None
            data.departments.append(department)
            data.splits.append(_cell(values.get(columns.split)) or "train")
            assert data.flags is not None
            for name in FLAGS:
                data.flags[name].append(flag_cell(values.get(name)))
        if first:
            raise InputError(f"{path}: 没有数据行 / no data rows")
    if not department_seen:
        data.departments = None
    if not flags_seen:
        data.flags = None
    return data


def load_corpus(path: Path | None = None) -> LabelledData:
    """The project's own hand-written corpus with its fixed train/test split."""
    data = load_labelled([path or corpus_path()])
    if data.invalid:
        raise InputError("corpus has invalid rows: " + "; ".join(map(str, data.invalid[:5])))
    return data

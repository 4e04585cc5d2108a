"""Reading and writing petition tables: CSV (UTF-8, BOM, GBK/GB18030), JSON Lines and .xlsx.

Everything streams row by row so that backlog files of any size keep memory flat.
Rows are numbered as a person sees them in the file (header is row 1 for tables,
first line is row 1 for JSON Lines), so error messages point at the right place.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

TABLE_SUFFIXES = {".csv", ".tsv", ".txt"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
SUPPORTED = TABLE_SUFFIXES | JSONL_SUFFIXES | EXCEL_SUFFIXES

csv.field_size_limit(sys.maxsize)


class InputError(ValueError):
    """The file as a whole cannot be read (format, encoding, columns)."""


@dataclass(frozen=True)
class Row:
    """One input row; `error` says why a row could not be parsed at all (its values are then empty)."""

    number: int
    values: dict[str, Any]
    undecodable: bool = False
    error: str | None = None


def detect_encoding(path: Path, sample_bytes: int = 1 << 20) -> str:
    """UTF-8 (with or without BOM) if the sample decodes as UTF-8, else GB18030 (a superset of GBK)."""
    with path.open("rb") as handle:
        sample = handle.read(sample_bytes)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=len(sample) < sample_bytes)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        codecs.getincrementaldecoder("gb18030")().decode(sample, final=len(sample) < sample_bytes)
        return "gb18030"
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: 无法识别文件编码 / unknown encoding (tried UTF-8 and GB18030): {error}") from error


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape leaves for an undecodable byte


def _has_undecodable(values: dict[str, Any]) -> bool:
    return any(isinstance(v, str) and _ESCAPED_BYTE.search(v) for v in values.values())


def _open_text(path: Path, encoding: str | None) -> IO[str]:
    chosen = encoding or detect_encoding(path)
    try:
        codecs.lookup(chosen)
    except LookupError as error:
        raise InputError(f"未知编码 / unknown encoding: {chosen}") from error
    return path.open("r", encoding=chosen, errors="surrogateescape", newline="")


def _csv_rows(path: Path, encoding: str | None) -> Iterator[Row]:
    with _open_text(path, encoding) as handle:
        sample = handle.read(64 * 1024)
        handle.seek(0)
        delimiter = "\t" if path.suffix.lower() == ".tsv" or (sample.count("\t") > sample.count(",")) else ","
        reader = csv.DictReader(handle, delimiter=delimiter)
        if not reader.fieldnames:
            raise InputError(f"{path}: 文件为空或没有表头 / empty file or no header row")
        for number, values in enumerate(reader, 2):  # record numbers as a spreadsheet shows them
            clean = {key: value for key, value in values.items() if key is not None}
            yield Row(number, clean, _has_undecodable(clean))


def _jsonl_rows(path: Path, encoding: str | None) -> Iterator[Row]:
    with _open_text(path, encoding) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                values = json.loads(line)
            except json.JSONDecodeError as error:
                yield Row(number, {}, error=f"JSON 格式错误 / invalid JSON: {error.msg}")
                continue
            if not isinstance(values, dict):
                yield Row(number, {}, error="每行应为 JSON 对象 / each line must be a JSON object")
                continue
            yield Row(number, values, _has_undecodable(values))


def _excel_rows(path: Path) -> Iterator[Row]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a broken file
        raise InputError(f"{path}: 无法读取 Excel 文件 / cannot read workbook: {error}") from error
    try:
        rows = workbook.active.iter_rows(values_only=True)
        header = next(rows, None)
        if not header:
            raise InputError(f"{path}: 工作表为空 / empty worksheet")
        names = ["" if cell is None else str(cell).strip() for cell in header]
        for number, cells in enumerate(rows, 2):
            if cells is None or all(cell is None for cell in cells):
                continue
            values = {name: ("" if cell is None else cell) for name, cell in zip(names, cells, strict=False) if name}
            yield Row(number, values)
    finally:
        workbook.close()


def read_rows(path: Path, encoding: str | None = None) -> Iterator[Row]:
    """Stream the rows of a CSV, JSON Lines or Excel file, whichever the suffix says."""
    if not path.is_file():
        raise InputError(f"文件不存在 / file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        return _excel_rows(path)
    if suffix in JSONL_SUFFIXES:
        return _jsonl_rows(path, encoding)
    if suffix in TABLE_SUFFIXES:
        return _csv_rows(path, encoding)
    raise InputError(f"不支持的文件类型 / unsupported file type {suffix!r}; use one of {sorted(SUPPORTED)}")


def require_columns(row: Row, columns: list[str], path: Path) -> None:
    """Fail fast, naming what exists, when a configured column is absent from the file."""
    missing = [column for column in columns if column not in row.values]
    if missing and row.error is None:
        raise InputError(
            f"{path}: 找不到列 / unknown column(s) {missing}; 文件中的列 / columns present: {sorted(row.values)}"
        )


def estimate_rows(path: Path) -> int | None:
    """Approximate data-row count for progress bars (quoted newlines make CSV counts an upper bound)."""
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True)
        try:
            rows = workbook.active.max_row
        finally:
            workbook.close()
        return None if rows is None else max(rows - 1, 0)
    lines = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
    return lines if suffix in JSONL_SUFFIXES else max(lines - 1, 0)

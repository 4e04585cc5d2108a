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
    """One input row; `error` says why a row could not be parsed at all (its values are then empty).

    `error_kind` is the error's stable id (what output columns and scripts match on); `error` explains it.
    """

    number: int
    values: dict[str, Any]
    undecodable: bool = False
    error: str | None = None
    error_kind: str = "invalid_row"
    # Columns whose cell is a formula without a saved result (the workbook was never opened in Excel):
    # their value reads as empty, which must not pass for an empty text.
    uncomputed: frozenset[str] = frozenset()

    def uncomputed_error(self, columns: list[str]) -> str | None:
        hit = [column for column in columns if column in self.uncomputed]
        if not hit:
            return None
        return (
            f"formula_without_value: 单元格是公式且没有保存计算结果（列 {', '.join(hit)}），请在 Excel 中打开并保存后"
            f"重试 / formula cell without a cached value in column(s) {', '.join(hit)}; open and save it in Excel"
        )


def warn(message: str) -> None:
    """The file is read, but not exactly as written: tell the person running the command (stderr)."""
    print(f"警告 / warning: {message}", file=sys.stderr, flush=True)


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
    except UnicodeDecodeError:
        pass
    # A few bad bytes (a damaged export): read with whichever encoding loses fewer characters, replacing
    # the bad bytes with U+FFFD, and say so. Rows stay classifiable; the warning tells where to look.
    losses = {name: sample.decode(name, errors="replace").count("\ufffd") for name in ("utf-8", "gb18030")}
    chosen = min(losses, key=lambda name: losses[name])
    warn(
        f"{path}: 有 {losses[chosen]} 处无法解码的字节，已按 {chosen.upper()} 读取并替换为 \ufffd / "
        f"{losses[chosen]} undecodable byte(s) read as {chosen.upper()} and replaced with U+FFFD "
        "(pass --encoding to choose another encoding)"
    )
    return f"{chosen}:replace"


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape leaves for an undecodable byte


def _has_undecodable(values: dict[str, Any]) -> bool:
    return any(isinstance(v, str) and _ESCAPED_BYTE.search(v) for v in values.values())


def _open_text(path: Path, encoding: str | None) -> IO[str]:
    chosen, _, errors = (encoding or detect_encoding(path)).partition(":")
    try:
        codecs.lookup(chosen)
    except LookupError as error:
        raise InputError(f"未知编码 / unknown encoding: {chosen}") from error
    return path.open("r", encoding=chosen, errors=errors or "surrogateescape", newline="")


def _csv_rows(path: Path, encoding: str | None) -> Iterator[Row]:
    with _open_text(path, encoding) as handle:
        sample = handle.read(64 * 1024)
        handle.seek(0)
        delimiter = "\t" if path.suffix.lower() == ".tsv" or (sample.count("\t") > sample.count(",")) else ","
        # strict: a quote that is never closed raises at the end of the file instead of silently
        # swallowing every following row into one field.
        reader = csv.DictReader(handle, delimiter=delimiter, strict=True)
        if not reader.fieldnames:
            raise InputError(f"{path}: 文件为空或没有表头 / empty file or no header row")
        number = 1  # record numbers as a spreadsheet shows them (the header is 1)
        while True:
            number += 1
            line = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                if "unexpected end of data" in str(error):
                    raise InputError(
                        f"{path}: 第 {number} 条记录（第 {line} 行）的引号没有闭合，其后各行会并成一个字段，"
                        "请修正文件 / "
                        f"unclosed quote in record {number} (line {line}): every following line would merge into "
                        "one field; fix the file"
                    ) from error
                yield Row(number, {}, error=f"CSV 格式错误 / malformed CSV record: {error}")
                continue
            rest = values.get(None) or []
            if any(value.strip() for value in rest):
                yield _extra_fields_row(number, len(reader.fieldnames), len(reader.fieldnames) + len(rest), delimiter)
                continue
            clean = {key: value for key, value in values.items() if key is not None}
            yield Row(number, clean, _has_undecodable(clean))


_DELIMITER_NAMES = {",": ("逗号", "comma"), "\t": ("制表符", "tab")}


def _extra_fields_row(number: int, header: int, found: int, delimiter: str) -> Row:
    """A record longer than the header (an unquoted comma in the text, mostly): its values cannot be trusted.

    Keeping the first fields would classify half a text, and shift every later column, without a word.
    Empty trailing fields (a trailing comma) lose nothing and are not an error.
    """
    chinese, english = _DELIMITER_NAMES.get(delimiter, ("分隔符", "delimiter"))
    return Row(
        number,
        {},
        error=f"字段数多于表头（表头 {header} 列，此行 {found} 列），多半是文本中有未加引号的{chinese}，"
        f"请给该字段加引号 / more fields than the header ({header} columns, this record {found}): "
        f"probably an unquoted {english} in the text; quote that field",
        error_kind="extra_fields",
    )


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
        # The same sheet again with formulas, read in step: a formula cell whose saved result is empty
        # (never calculated) is told apart from a truly empty cell.
        formulas = load_workbook(path, read_only=True, data_only=False)
    except Exception as error:  # openpyxl raises many types for a broken file
        raise InputError(f"{path}: 无法读取 Excel 文件 / cannot read workbook: {error}") from error
    try:
        rows = workbook.active.iter_rows(values_only=True)
        formula_rows = formulas.active.iter_rows(values_only=True)
        header = next(rows, None)
        next(formula_rows, None)
        if not header:
            raise InputError(f"{path}: 工作表为空 / empty worksheet")
        names = ["" if cell is None else str(cell).strip() for cell in header]
        for number, (cells, written) in enumerate(zip(rows, formula_rows, strict=False), 2):
            uncomputed = frozenset(
                name
                for name, cell, source in zip(names, cells, written, strict=False)
                if name and cell is None and isinstance(source, str) and source.startswith("=")
            )
            if not uncomputed and (cells is None or all(cell is None for cell in cells)):
                continue
            values = {name: ("" if cell is None else cell) for name, cell in zip(names, cells, strict=False) if name}
            yield Row(number, values, uncomputed=uncomputed)
    finally:
        workbook.close()
        formulas.close()


def read_rows(path: Path, encoding: str | None = None) -> Iterator[Row]:
    """Stream the rows of a CSV, JSON Lines or Excel file, whichever the suffix says."""
    if path.is_dir():
        raise InputError(f"{path} 是目录而不是文件 / {path} is a directory, not a file")
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

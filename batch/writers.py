"""The only place batch results become text: the output columns, and row writers for CSV, JSON Lines
and .xlsx output, chosen by the output file's suffix.

CSV and JSON Lines writers report their byte offset after each flush so that an
interrupted run can be resumed exactly where its output ends.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import IO, Any, Protocol

from batch.results import Result
from model.text import spreadsheet_safe
from training.io import InputError

OUTPUT_FIELDS = [
    "id",
    "domain",
    "domain_confidence",
    "department",
    "department_confidence",
    "departments_top3",
    "needs_review",
    "model_version",
    "error",
]
COMPARE_FIELD = "changed"
ERROR_FIELDS = ["row", "id", "error"]


def result_fields(compare: bool) -> list[str]:
    return OUTPUT_FIELDS + ([COMPARE_FIELD] if compare else [])


def _flag(value: bool) -> str:
    return "true" if value else "false"


def result_record(result: Result) -> dict[str, str]:
    """One output row: confidences with four decimals, top 3 as `id:prob|id:prob|id:prob`, flags true/false."""
    record = dict.fromkeys(OUTPUT_FIELDS, "")
    record.update(id=result.item.id, model_version=result.model_version, error=result.item.error or "")
    prediction = result.prediction
    if prediction is not None:
        domain = prediction.heads["domain"]
        record.update(
            domain=domain.label,
            domain_confidence=f"{domain.confidence:.4f}",
            needs_review=_flag(prediction.needs_review),
        )
        department = prediction.heads.get("department")
        if department is not None:
            record.update(
                department=department.label,
                department_confidence=f"{department.confidence:.4f}",
                departments_top3="|".join(f"{label}:{p:.4f}" for label, p in department.ranking),
            )
    if result.changed is not None:
        record[COMPARE_FIELD] = _flag(result.changed)
    return record


def error_record(result: Result) -> dict[str, str]:
    return {"row": str(result.item.number), "id": result.item.id, "error": result.item.error or ""}


class RowWriter(Protocol):
    resumable: bool

    def write(self, rows: list[dict[str, Any]]) -> None: ...
    def offset(self) -> int: ...
    def close(self) -> None: ...


class CsvWriter:
    """UTF-8 CSV; files get a BOM so that Excel shows Chinese correctly, stdout does not."""

    resumable = True

    def __init__(self, handle: IO[bytes], fields: list[str], header: bool, bom: bool) -> None:
        self.handle, self.fields = handle, fields
        if header:
            self._emit([dict(zip(fields, fields, strict=True))], bom)

    def _emit(self, rows: list[dict[str, Any]], bom: bool = False) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.fields, extrasaction="ignore", lineterminator="\r\n")
        writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()} for row in rows)
        self.handle.write(("\ufeff" if bom else "").encode() + buffer.getvalue().encode("utf-8"))

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._emit(rows)
        self.handle.flush()

    def offset(self) -> int:
        return self.handle.tell()

    def close(self) -> None:
        if self.handle is not sys.stdout.buffer:
            self.handle.close()


class JsonlWriter:
    resumable = True

    def __init__(self, handle: IO[bytes], fields: list[str]) -> None:
        self.handle, self.fields = handle, fields

    def write(self, rows: list[dict[str, Any]]) -> None:
        text = "".join(
            json.dumps({field: row.get(field, "") for field in self.fields}, ensure_ascii=False) + "\n" for row in rows
        )
        self.handle.write(text.encode("utf-8"))
        self.handle.flush()

    def offset(self) -> int:
        return self.handle.tell()

    def close(self) -> None:
        self.handle.close()


class XlsxWriter:
    """Streams rows into a write-only workbook; saved at close, so it cannot be resumed.

    Every cell is written as a text cell (never a formula), with the same leading `'` as CSV output."""

    resumable = False

    def __init__(self, path: Path, fields: list[str]) -> None:
        from openpyxl import Workbook

        self.path, self.fields = path, fields
        self.workbook = Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet("classified")
        self.sheet.append(fields)

    def write(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.sheet.append([self._text_cell(row.get(field, "")) for field in self.fields])

    def _text_cell(self, value: Any) -> Any:
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(self.sheet, value=spreadsheet_safe(str(value)))  # ids come from the input file
        cell.data_type = "s"  # openpyxl would otherwise store a value starting with "=" as a formula
        return cell

    def offset(self) -> int:
        return 0

    def close(self) -> None:
        self.workbook.save(self.path)


def check_writable(path: Path) -> None:
    """Fail before any work when the output cannot be written (a folder, or a folder that is missing)."""
    if path.is_dir():
        raise InputError(f"输出路径 {path} 是目录，请给出文件名 / output {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise InputError(
            f"输出目录 {path.parent} 不存在 / the output folder {path.parent} does not exist; create it first"
        )


def same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file: through `..`, symbolic links, or a hard link."""
    if first.resolve() == second.resolve():
        return True
    return first.exists() and second.exists() and os.path.samefile(first, second)


def check_distinct(source: Path, output: Path | None, errors: Path | None) -> None:
    """Fail before any work when a file to be written is the input or the other output.

    Opening it for writing would empty it while it is still being read (or written twice over).
    """
    for target, chinese, english in ((output, "输出文件", "output"), (errors, "错误文件", "--errors file")):
        if target is not None and same_file(target, source):
            raise InputError(
                f"{chinese} {target} 就是输入文件，写入会清空输入，请换一个文件名 / the {english} {target} is the "
                "input file: writing it would erase the input while it is being read; choose another name"
            )
    if output is not None and errors is not None and same_file(output, errors):
        raise InputError(
            f"输出文件与错误文件是同一个文件 {output}，请分别给出文件名 / the output and the --errors file are the "
            f"same file {output}; give them different names"
        )


def open_writer(path: Path | None, fields: list[str], append_at: int | None = None) -> RowWriter:
    """Writer for `path` (None = CSV on stdout); `append_at` truncates there and appends (resume)."""
    if path is None:
        return CsvWriter(sys.stdout.buffer, fields, header=True, bom=False)
    check_writable(path)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        if append_at is not None:
            raise InputError("Excel 输出不支持断点续跑 / --resume needs CSV or JSON Lines output")
        return XlsxWriter(path, fields)
    if suffix not in {".csv", ".jsonl", ".ndjson", ".json", ".tsv", ".txt"}:
        raise InputError(f"不支持的输出类型 / unsupported output type {suffix!r}; use .csv, .jsonl or .xlsx")
    handle = path.open("r+b" if append_at is not None else "wb")
    if append_at is not None:
        handle.truncate(append_at)
        handle.seek(append_at)
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return JsonlWriter(handle, fields)
    return CsvWriter(handle, fields, header=append_at is None, bom=True)

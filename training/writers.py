"""Row writers for CSV, JSON Lines and .xlsx output, chosen by the output file's suffix.

CSV and JSON Lines writers report their byte offset after each flush so that an
interrupted run can be resumed exactly where its output ends.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import IO, Any, Protocol

from training.io import InputError


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
        writer.writerows(rows)
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
    """Streams rows into a write-only workbook; saved at close, so it cannot be resumed."""

    resumable = False

    def __init__(self, path: Path, fields: list[str]) -> None:
        from openpyxl import Workbook

        self.path, self.fields = path, fields
        self.workbook = Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet("classified")
        self.sheet.append(fields)

    def write(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.sheet.append([row.get(field, "") for field in self.fields])

    def offset(self) -> int:
        return 0

    def close(self) -> None:
        self.workbook.save(self.path)


def open_writer(path: Path | None, fields: list[str], append_at: int | None = None) -> RowWriter:
    """Writer for `path` (None = CSV on stdout); `append_at` truncates there and appends (resume)."""
    if path is None:
        return CsvWriter(sys.stdout.buffer, fields, header=True, bom=False)
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

"""Backlog re-classification: stream rows in, classify in chunks (optionally in parallel), stream rows out.

Memory stays flat: at most `2 * jobs` chunks are in flight, and output is written
as soon as the chunk at the head of the line is done, so output order equals
input order. Every input row produces exactly one output row (bad rows carry an
`error`), which is what makes `--resume` exact: a small progress file records
how many input rows the output holds and the byte offset where they end.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.classifier import TriageModel
from model.persistence import load_model
from training.io import Row, read_rows, require_columns
from training.writers import open_writer

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
MAX_TEXT_CHARS = 20_000


@dataclass(frozen=True)
class ClassifyOptions:
    id_col: str = "id"
    text_col: str = "text"
    compare_col: str | None = None
    encoding: str | None = None
    max_chars: int = MAX_TEXT_CHARS
    chunk_size: int = 256
    jobs: int = 1


@dataclass(frozen=True)
class Item:
    """One input row, validated: either text to classify or the reason it cannot be."""

    number: int
    id: str
    text: str | None
    error: str | None
    old_department: str = ""


@dataclass
class Summary:
    rows_read: int = 0
    classified: int = 0
    failed: int = 0
    needs_review: int = 0
    resumed_after: int = 0
    domains: Counter[str] = field(default_factory=Counter)
    departments: Counter[str] = field(default_factory=Counter)
    flows: Counter[tuple[str, str]] = field(default_factory=Counter)
    compared: int = 0
    elapsed: float = 0.0

    def add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.rows_read += 1
            if row["error"]:
                self.failed += 1
                continue
            self.classified += 1
            self.domains[row["domain"]] += 1
            if row["department"]:
                self.departments[row["department"]] += 1
            self.needs_review += row["needs_review"] == "true"
            if "changed" in row and row.get("_old"):
                self.compared += 1
                if row["changed"] == "true":
                    self.flows[(row["_old"], row["department"])] += 1


def validate(row: Row, options: ClassifyOptions) -> Item:
    """Turn a raw row into an Item; bad rows get a stable error id and a Chinese explanation."""
    values = row.values
    identifier = "" if values.get(options.id_col) is None else str(values.get(options.id_col)).strip()
    old = str(values.get(options.compare_col) or "").strip() if options.compare_col else ""
    if "__error__" in values:
        return Item(row.number, identifier, None, f"invalid_row: {values['__error__']}", old)
    if row.undecodable:
        return Item(row.number, identifier, None, "undecodable_bytes: 含有无法解码的字节", old)
    if not identifier:
        return Item(row.number, identifier, None, "missing_id: 缺少编号", old)
    raw = values.get(options.text_col)
    text = "" if raw is None else str(raw)
    if not text.strip():
        return Item(row.number, identifier, None, "empty_text: 文本为空", old)
    if len(text) > options.max_chars:
        return Item(row.number, identifier, None, f"text_too_long: 文本超过 {options.max_chars} 字", old)
    return Item(row.number, identifier, text, None, old)


def format_rows(
    model: TriageModel, version: str, items: list[Item], compare: bool, keep: bool = False
) -> list[dict[str, Any]]:
    """Classify the valid items of a chunk in one vectorised call and render every item as a row.

    `keep` attaches the text and full prediction (with explanation) under private keys, for
    sinks such as the routing queue; writers never output keys starting with "_".
    """
    valid = [item for item in items if item.text is not None]
    predictions = iter(model.predict([item.text for item in valid], explain=keep) if valid else [])
    rows: list[dict[str, Any]] = []
    for item in items:
        row: dict[str, Any] = dict.fromkeys(OUTPUT_FIELDS, "")
        row.update(id=item.id, model_version=version, _row=item.number)
        if item.error:
            row["error"] = item.error
        else:
            prediction = next(predictions)
            domain = prediction.heads["domain"]
            row.update(
                domain=domain.label,
                domain_confidence=f"{domain.confidence:.4f}",
                needs_review="true" if prediction.needs_review else "false",
            )
            department = prediction.heads.get("department")
            if department is not None:
                row.update(
                    department=department.label,
                    department_confidence=f"{department.confidence:.4f}",
                    departments_top3="|".join(f"{label}:{p:.4f}" for label, p in department.ranking),
                )
            if keep:
                row.update(_text=item.text, _prediction=prediction)
        if compare:
            changed = bool(item.old_department) and not item.error and item.old_department != row["department"]
            row["changed"] = "true" if changed else "false"
            row["_old"] = item.old_department
        rows.append(row)
    return rows


# Worker-process state: each process loads the model (and warms jieba) once.
_worker: dict[str, Any] = {}


def _init_worker(folder: str) -> None:
    model, manifest = load_model(Path(folder))
    model.predict(["预热"], explain=False)
    _worker.update(model=model, version=manifest.version)


def _work(items: list[Item], compare: bool, keep: bool) -> list[dict[str, Any]]:
    return format_rows(_worker["model"], _worker["version"], items, compare, keep)


def chunked(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def classified_chunks(
    chunks: Iterator[list[Item]], folder: Path, jobs: int, compare: bool, keep: bool = False
) -> Iterator[list[dict[str, Any]]]:
    """Results in input order; with jobs > 1 a bounded window of chunks runs in worker processes."""
    if jobs <= 1:
        _init_worker(str(folder))
        for chunk in chunks:
            yield _work(chunk, compare, keep)
        return
    # Load once here and fork: workers share the model and jieba's dictionary pages copy-on-write
    # instead of each loading its own copy. Where fork is unavailable, each worker loads it.
    if "fork" in multiprocessing.get_all_start_methods():
        _init_worker(str(folder))
        gc.freeze()  # keep the collector from touching (and so copying) the shared pages
        pool_options: dict[str, Any] = {"mp_context": multiprocessing.get_context("fork")}
    else:
        pool_options = {"initializer": _init_worker, "initargs": (str(folder),)}
    with ProcessPoolExecutor(max_workers=jobs, **pool_options) as pool:
        window: deque[Future[list[dict[str, Any]]]] = deque()
        for chunk in chunks:
            window.append(pool.submit(_work, chunk, compare, keep))
            if len(window) >= 2 * jobs:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def progress_path(output: Path) -> Path:
    return output.with_name(output.name + ".progress")


def read_progress(output: Path) -> tuple[int, int] | None:
    """(rows already written, byte offset where they end) of an interrupted run, if any."""
    path = progress_path(output)
    if not (output.is_file() and path.is_file()):
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    return int(record["rows"]), int(record["offset"])


def write_progress(output: Path, rows: int, offset: int, source: Path) -> None:
    temporary = output.with_name(output.name + ".progress.tmp")
    temporary.write_text(json.dumps({"rows": rows, "offset": offset, "input": str(source)}), encoding="utf-8")
    os.replace(temporary, progress_path(output))


def items_from(path: Path, options: ClassifyOptions, skip: int) -> Iterator[Item]:
    """Validated items of the input, skipping the first `skip` rows (already in the output)."""
    required = [options.id_col, options.text_col] + ([options.compare_col] if options.compare_col else [])
    for index, row in enumerate(read_rows(path, options.encoding)):
        if index == 0:
            require_columns(row, required, path)
        if index >= skip:
            yield validate(row, options)


def classify_file(
    source: Path,
    output: Path | None,
    folder: Path,
    options: ClassifyOptions,
    resume: bool = False,
    on_rows: Callable[[list[dict[str, Any]]], None] = lambda rows: None,
    errors: Path | None = None,
    keep_predictions: bool = False,
) -> Summary:
    """Classify `source` into `output` (None = stdout); `on_rows` sees each chunk (progress, enqueue)."""
    started = time.perf_counter()
    compare = options.compare_col is not None
    fields = OUTPUT_FIELDS + (["changed"] if compare else [])
    state = read_progress(output) if (resume and output is not None) else None
    skip, offset = state if state else (0, None)
    summary = Summary(resumed_after=skip)
    items = items_from(source, options, skip)
    first = next(items, None)  # surfaces unknown columns before any output is created
    stream: Iterator[Item] = iter(()) if first is None else _prepend(first, items)
    writer = open_writer(output, fields, append_at=offset)
    error_writer = open_writer(errors, ["row", "id", "error"], append_at=None) if errors else None
    done = skip
    try:
        for rows in classified_chunks(
            chunked(stream, options.chunk_size), folder, options.jobs, compare, keep_predictions
        ):
            writer.write(rows)
            done += len(rows)
            if output is not None and writer.resumable:
                write_progress(output, done, writer.offset(), source)
            if error_writer is not None:
                error_writer.write([{"row": r["_row"], "id": r["id"], "error": r["error"]} for r in rows if r["error"]])
            summary.add(rows)
            on_rows(rows)
    finally:
        writer.close()
        if error_writer is not None:
            error_writer.close()
    if output is not None:
        progress_path(output).unlink(missing_ok=True)
    summary.elapsed = time.perf_counter() - started
    return summary


def _prepend(first: Item, rest: Iterator[Item]) -> Iterator[Item]:
    yield first
    yield from rest

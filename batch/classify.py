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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from batch.results import Item, Result
from batch.writers import ERROR_FIELDS, check_writable, error_record, open_writer, result_fields, result_record
from model.classifier import Prediction, TriageModel
from model.persistence import load_flags, load_model, read_manifest
from model.text import is_blank, without_nul
from training.io import InputError, Row, read_rows, require_columns

MAX_TEXT_CHARS = 20_000


@dataclass(frozen=True)
class ClassifyOptions:
    id_col: str = "id"
    text_col: str = "text"
    compare_col: str | None = None
    contact_col: str | None = None
    encoding: str | None = None
    max_chars: int = MAX_TEXT_CHARS
    chunk_size: int = 256
    jobs: int = 1
    segmenter: str | None = None  # when set, refuse a model trained with another segmenter


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

    def add(self, results: list[Result]) -> None:
        for result in results:
            self.rows_read += 1
            if result.domain is None:
                self.failed += 1
                continue
            self.classified += 1
            self.domains[result.domain] += 1
            if result.department:
                self.departments[result.department] += 1
            self.needs_review += result.needs_review
            if result.changed is not None and result.item.old_department:
                self.compared += 1
                if result.changed:
                    self.flows[(result.item.old_department, result.department or "")] += 1


def validate(row: Row, options: ClassifyOptions) -> Item:
    """Turn a raw row into an Item; bad rows get a stable error id and a Chinese explanation."""
    values = row.values
    identifier = "" if values.get(options.id_col) is None else without_nul(str(values.get(options.id_col))).strip()
    old = str(values.get(options.compare_col) or "").strip() if options.compare_col else ""
    if row.error is not None:
        return Item(row.number, identifier, None, f"invalid_row: {row.error}", old)
    if row.undecodable:
        return Item(row.number, identifier, None, "undecodable_bytes: 含有无法解码的字节", old)
    uncomputed = row.uncomputed_error([options.id_col, options.text_col])
    if uncomputed is not None:
        return Item(row.number, identifier, None, uncomputed, old)
    if not identifier:
        return Item(row.number, identifier, None, "missing_id: 缺少编号", old)
    raw = values.get(options.text_col)
    text = "" if raw is None else without_nul(str(raw))
    if is_blank(text):
        return Item(row.number, identifier, None, "empty_text: 文本为空", old)
    if len(text) > options.max_chars:
        return Item(row.number, identifier, None, f"text_too_long: 文本超过 {options.max_chars} 字", old)
    contact = without_nul(str(values.get(options.contact_col) or "")).strip() if options.contact_col else ""
    return Item(row.number, identifier, text, None, old, contact or None)


def assemble(items: list[Item], predictions: list[Prediction], version: str, compare: bool) -> list[Result]:
    """One result per item, in order: the valid items take the predictions one by one."""
    remaining = iter(predictions)
    results: list[Result] = []
    for item in items:
        prediction = None if item.error else next(remaining)
        changed = None
        if compare:
            department = None if prediction is None else prediction.heads.get("department")
            changed = (
                bool(item.old_department)
                and prediction is not None
                and item.old_department != (department.label if department else "")
            )
        results.append(Result(item, version, prediction, changed))
    return results


def classify_items(
    model: TriageModel, version: str, items: list[Item], compare: bool, explain: bool = False
) -> list[Result]:
    """Classify the valid items of a chunk in one vectorised call; one result per item, in order."""
    return assemble(items, _predict_with(model, items, explain), version, compare)


def _predict_with(model: TriageModel, items: list[Item], explain: bool) -> list[Prediction]:
    texts = [item.text for item in items if item.text is not None]
    return model.predict(texts, explain=explain) if texts else []


# Worker-process state: each process loads the model (and warms jieba) once.
_worker: dict[str, Any] = {}


def _init_worker(folder: str, segmenter: str | None = None) -> None:
    model, manifest = load_model(Path(folder), segmenter)
    model.predict(["预热"], explain=False)
    _worker.update(model=model, version=manifest.version, flags=load_flags(Path(folder), manifest))


def _work(items: list[Item], explain: bool) -> list[Prediction]:
    """In a worker: predictions for the chunk's valid items (the parent pairs them with the items). A run
    that stores its predictions (`explain`, as `--enqueue` does) also gets the version's flags, if it has any."""
    predictions = _predict_with(_worker["model"], items, explain)
    flags = _worker.get("flags")
    if not explain or flags is None or not predictions:
        return predictions
    scores = flags.predict([item.text for item in items if item.text is not None])
    return [replace(prediction, flags=found) for prediction, found in zip(predictions, scores, strict=True)]


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
    chunks: Iterator[list[Item]],
    folder: Path,
    jobs: int,
    compare: bool,
    explain: bool = False,
    segmenter: str | None = None,
) -> Iterator[list[Result]]:
    """Results in input order; with jobs > 1 a bounded window of chunks runs in worker processes."""
    version = read_manifest(folder).version
    if jobs <= 1:
        _init_worker(str(folder), segmenter)
        for chunk in chunks:
            yield assemble(chunk, _work(chunk, explain), version, compare)
        return
    # Load once here and fork: workers share the model and jieba's dictionary pages copy-on-write
    # instead of each loading its own copy. Where fork is unavailable, each worker loads it.
    if "fork" in multiprocessing.get_all_start_methods():
        _init_worker(str(folder), segmenter)
        gc.freeze()  # keep the collector from touching (and so copying) the shared pages
        pool_options: dict[str, Any] = {"mp_context": multiprocessing.get_context("fork")}
    else:
        pool_options = {"initializer": _init_worker, "initargs": (str(folder), segmenter)}
    with ProcessPoolExecutor(max_workers=jobs, **pool_options) as pool:
        window: deque[tuple[list[Item], Future[list[Prediction]]]] = deque()
        for chunk in chunks:
            window.append((chunk, pool.submit(_work, chunk, explain)))
            if len(window) >= 2 * jobs:
                done, future = window.popleft()
                yield assemble(done, future.result(), version, compare)
        while window:
            done, future = window.popleft()
            yield assemble(done, future.result(), version, compare)


def progress_path(output: Path) -> Path:
    return output.with_name(output.name + ".progress")


def read_progress(output: Path) -> tuple[int, int] | None:
    """(rows already written, byte offset where they end) of an interrupted run, if any."""
    path = progress_path(output)
    if not (output.is_file() and path.is_file()):
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        rows, offset = int(record["rows"]), int(record["offset"])
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as error:
        raise InputError(
            f"进度文件 {path} 已损坏，无法续跑；删除它并重新运行（不带 --resume）/ the progress file {path} is "
            f"corrupt ({type(error).__name__}); delete it and run again without --resume"
        ) from error
    if rows < 0 or not 0 <= offset <= output.stat().st_size:
        raise InputError(
            f"进度文件 {path} 与输出文件不符，无法续跑 / the progress file {path} does not match the output "
            f"(rows {rows}, offset {offset}); delete it and run again without --resume"
        )
    return rows, offset


def write_progress(output: Path, rows: int, offset: int, source: Path) -> None:
    temporary = output.with_name(output.name + ".progress.tmp")
    temporary.write_text(json.dumps({"rows": rows, "offset": offset, "input": str(source)}), encoding="utf-8")
    os.replace(temporary, progress_path(output))


def items_from(path: Path, options: ClassifyOptions, skip: int) -> Iterator[Item]:
    """Validated items of the input, skipping the first `skip` rows (already in the output)."""
    optional = (options.compare_col, options.contact_col)
    required = [options.id_col, options.text_col] + [column for column in optional if column]
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
    on_results: Callable[[list[Result]], None] = lambda results: None,
    errors: Path | None = None,
    explain: bool = False,
) -> Summary:
    """Classify `source` into `output` (None = stdout); `on_results` sees each chunk (progress, enqueue).

    `explain` adds the explanation terms to each prediction (for sinks that store them).
    """
    started = time.perf_counter()
    for target in (output, errors):
        if target is not None:
            check_writable(target)
    compare = options.compare_col is not None
    state = read_progress(output) if (resume and output is not None) else None
    skip, offset = state if state else (0, None)
    summary = Summary(resumed_after=skip)
    items = items_from(source, options, skip)
    first = next(items, None)  # surfaces unknown columns before any output is created
    stream: Iterator[Item] = iter(()) if first is None else _prepend(first, items)
    writer = open_writer(output, result_fields(compare), append_at=offset)
    error_writer = open_writer(errors, ERROR_FIELDS, append_at=None) if errors else None
    done = skip
    try:
        for results in classified_chunks(
            chunked(stream, options.chunk_size), folder, options.jobs, compare, explain, options.segmenter
        ):
            writer.write([result_record(result) for result in results])
            done += len(results)
            if output is not None and writer.resumable:
                write_progress(output, done, writer.offset(), source)
            if error_writer is not None:
                error_writer.write([error_record(result) for result in results if result.item.error])
            summary.add(results)
            on_results(results)
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

"""Backlog re-classification: stream rows in, classify in chunks (optionally in parallel), stream rows out.

Memory stays flat: at most `2 * jobs` chunks are in flight, and output is written
as soon as the chunk at the head of the line is done, so output order equals
input order. Every input row produces exactly one output row (bad rows carry an
`error`), which is what makes `--resume` exact: a small progress file records
how many input rows the output holds and the byte offsets where they (and the
`--errors` file) end, plus what identifies the run, so that a resume cannot mix two.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from batch.results import Item, Result
from batch.writers import (
    ERROR_FIELDS,
    check_distinct,
    check_writable,
    error_record,
    open_writer,
    result_fields,
    result_record,
)
from model.classifier import Prediction, TriageModel
from model.persistence import load_flags, load_model, read_manifest
from model.text import is_blank, without_nul
from training.io import InputError, Row, read_rows, require_columns

MAX_TEXT_CHARS = 20_000
INTERRUPTED_EXIT_CODE = 130  # the shell's code for a command ended by Ctrl-C (128 + SIGINT)


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
        return Item(row.number, identifier, None, f"{row.error_kind}: {row.error}", old)
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


def _init_pool_worker(folder: str | None, segmenter: str | None) -> None:
    """Ctrl-C reaches every process of the terminal's group: a worker leaves it to the parent, which stops
    the pool. A worker raising KeyboardInterrupt itself could die holding the queue's lock and hang the run."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if folder is not None:
        _init_worker(folder, segmenter)


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
) -> Generator[list[Result], None, None]:
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
        pool_options: dict[str, Any] = {"mp_context": multiprocessing.get_context("fork"), "initargs": (None, None)}
    else:
        pool_options = {"initargs": (str(folder), segmenter)}
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_pool_worker, **pool_options)
    try:
        window: deque[tuple[list[Item], Future[list[Prediction]]]] = deque()
        for chunk in chunks:
            window.append((chunk, pool.submit(_work, chunk, explain)))
            if len(window) >= 2 * jobs:
                done, future = window.popleft()
                yield assemble(done, future.result(), version, compare)
        while window:
            done, future = window.popleft()
            yield assemble(done, future.result(), version, compare)
    except BaseException:  # Ctrl-C, an error, or the consumer closing early
        _stop(pool)
        raise
    pool.shutdown()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Drop the queued chunks and end the workers now: waiting for them, as leaving a `with` block does,
    takes as long as the chunks in flight, or forever when a worker died holding the queue's lock."""
    workers = list((pool._processes or {}).values())  # the only handle on them before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join(timeout=10)


@dataclass(frozen=True)
class Run:
    """What the output depends on. A resume must match the interrupted run on every field: otherwise rows of
    another file, model or column layout would be appended to the ones already written."""

    input: str  # resolved
    input_size: int
    input_mtime_ns: int
    model_version: str
    id_col: str
    text_col: str
    compare_col: str | None  # adds the `changed` column
    contact_col: str | None
    encoding: str | None
    max_chars: int
    errors: str | None  # the --errors file, resolved: it holds the error rows of every part


RUN_LABELS = {
    "input": "输入文件 / input file",
    "input_size": "输入文件大小 / input size",
    "input_mtime_ns": "输入文件修改时间 / input modification time",
    "model_version": "模型版本 / model version (--version)",
    "id_col": "--id-col",
    "text_col": "--text-col",
    "compare_col": "--compare-col",
    "contact_col": "--contact-col",
    "encoding": "--encoding",
    "max_chars": "最大字数 / max chars",
    "errors": "--errors",
}


def run_of(source: Path, folder: Path, options: ClassifyOptions, errors: Path | None) -> Run:
    stat = source.stat()
    return Run(
        input=str(source.resolve()),
        input_size=stat.st_size,
        input_mtime_ns=stat.st_mtime_ns,
        model_version=read_manifest(folder).version,
        id_col=options.id_col,
        text_col=options.text_col,
        compare_col=options.compare_col,
        contact_col=options.contact_col,
        encoding=options.encoding,
        max_chars=options.max_chars,
        errors=None if errors is None else str(errors.resolve()),
    )


@dataclass(frozen=True)
class Progress:
    """How far a run got: rows in the output, the byte offsets where the output and the errors file end them,
    and the run as recorded (a dict: a progress file of another version may lack or add fields)."""

    rows: int
    offset: int
    errors_offset: int | None
    run: dict[str, Any]


def progress_path(output: Path) -> Path:
    return output.with_name(output.name + ".progress")


def read_progress(output: Path) -> Progress | None:
    """The progress of an interrupted run into `output`, if any."""
    path = progress_path(output)
    if not (output.is_file() and path.is_file()):
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        rows, offset = int(record["rows"]), int(record["offset"])
        errors_offset = None if record.get("errors_offset") is None else int(record["errors_offset"])
        run = record.get("run")
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as error:
        raise InputError(
            f"进度文件 {path} 已损坏，无法续跑；删除它并重新运行（不带 --resume）/ the progress file {path} is "
            f"corrupt ({type(error).__name__}); delete it and run again without --resume"
        ) from error
    if not isinstance(run, dict):
        # Written before runs were recorded: nothing tells whether the input and options are the same, and
        # guessing wrong mixes two runs without a trace. Starting over costs time; a mixed output costs trust.
        raise InputError(
            f"进度文件 {path} 由旧版本写成，没有记录输入文件和选项，无法确认能否续跑；删除它并重新运行（不带 "
            f"--resume）/ the progress file {path} was written by an older version and does not record the input "
            "and options, so a resume could mix two runs; delete it and run again without --resume"
        )
    if rows < 0 or not 0 <= offset <= output.stat().st_size or (errors_offset is not None and errors_offset < 0):
        raise InputError(
            f"进度文件 {path} 与输出文件不符，无法续跑 / the progress file {path} does not match the output "
            f"(rows {rows}, offset {offset}); delete it and run again without --resume"
        )
    return Progress(rows, offset, errors_offset, run)


def write_progress(output: Path, progress: Progress) -> None:
    temporary = output.with_name(output.name + ".progress.tmp")
    temporary.write_text(json.dumps(asdict(progress), ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, progress_path(output))


def _shown(name: str, value: Any) -> str:
    """A recorded value as a clerk reads it: times as times, an absent option as such."""
    if value is None:
        return "无 / none"
    if name == "input_mtime_ns" and isinstance(value, int):
        return datetime.fromtimestamp(value / 1e9).isoformat(sep=" ", timespec="milliseconds")
    return repr(value)


def resume_point(output: Path | None, errors: Path | None, run: Run, resume: bool) -> Progress | None:
    """Where this run starts (None: at the beginning), or why it must not start.

    Without --resume, an interrupted run's output is refused: starting over would throw its rows away and
    leave a progress file that no longer describes the output. With --resume, another run's progress is refused.
    """
    if output is None:
        return None
    path = progress_path(output)
    if not resume:
        if path.is_file():
            raise InputError(
                f"{output} 是一次中断运行的输出（有进度文件 {path}）：要接着处理请加 --resume；要从头开始请先删除 "
                f"{path} / {output} holds an interrupted run (progress file {path}): add --resume to continue it, "
                f"or delete {path} to start over"
            )
        return None
    progress = read_progress(output)
    if progress is None:
        return None
    current = asdict(run)
    differences = [
        f"{RUN_LABELS.get(name, name)}: {_shown(name, progress.run.get(name))} -> {_shown(name, current.get(name))}"
        for name in [*current, *(name for name in progress.run if name not in current)]
        if progress.run.get(name) != current.get(name)
    ]
    if differences:
        raise InputError(
            f"进度文件 {path} 属于另一次运行，不能续跑（{'; '.join(differences)}）：请用上次的输入文件和选项加 "
            f"--resume，或删除进度文件从头开始 / the progress file {path} belongs to a different run "
            f"({'; '.join(differences)}): resume with the same input and options, or delete it to start over"
        )
    if progress.errors_offset is not None and (
        errors is None or not errors.is_file() or errors.stat().st_size < progress.errors_offset
    ):
        raise InputError(
            f"错误文件 {errors} 缺失或比进度文件记录的短，无法续跑；删除 {path} 并重新运行（不带 --resume）/ the "
            f"--errors file {errors} is missing or shorter than {path} records; delete {path} and run again "
            "without --resume"
        )
    return progress


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

    `explain` adds the explanation terms to each prediction (for sinks that store them). Ctrl-C stops the
    workers, keeps what is written and exits with code 130 (see `_interrupted`).
    """
    started = time.perf_counter()
    for target in (output, errors):
        if target is not None:
            check_writable(target)
    read_rows(source, options.encoding)  # a missing input, a folder or an unknown type fails here, unread
    check_distinct(source, output, errors)
    run = run_of(source, folder, options, errors)
    progress = resume_point(output, errors, run, resume)
    skip = progress.rows if progress else 0
    compare = options.compare_col is not None
    summary = Summary(resumed_after=skip)
    items = items_from(source, options, skip)
    first = next(items, None)  # surfaces unknown columns before any output is created
    stream: Iterator[Item] = iter(()) if first is None else _prepend(first, items)
    writer = open_writer(output, result_fields(compare), append_at=progress.offset if progress else None)
    error_writer = (
        open_writer(errors, ERROR_FIELDS, append_at=progress.errors_offset if progress else None) if errors else None
    )
    resumable = output is not None and writer.resumable and (error_writer is None or error_writer.resumable)
    done = skip
    chunks = classified_chunks(
        chunked(stream, options.chunk_size), folder, options.jobs, compare, explain, options.segmenter
    )
    interrupted = False
    try:
        for results in chunks:
            writer.write([result_record(result) for result in results])
            if error_writer is not None:
                error_writer.write([error_record(result) for result in results if result.item.error])
            done += len(results)
            summary.add(results)
            on_results(results)
            # Recorded last: a chunk the output holds but the progress does not is cut and redone on resume,
            # so a chunk is never counted without its error rows or (with --enqueue) without being queued.
            if output is not None and resumable:
                errors_offset = error_writer.offset() if error_writer is not None else None
                write_progress(output, Progress(done, writer.offset(), errors_offset, asdict(run)))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        chunks.close()  # stops the worker processes when the loop ends early
        writer.close()
        if error_writer is not None:
            error_writer.close()
    if interrupted:
        _interrupted(output if resumable else None)
    if output is not None:
        progress_path(output).unlink(missing_ok=True)
    summary.elapsed = time.perf_counter() - started
    return summary


def _interrupted(output: Path | None) -> None:
    """Say how to go on and exit 130 (128 + SIGINT). Exiting here rather than re-raising keeps that code
    whatever the caller does with a KeyboardInterrupt (typer exits 130 without a word, plain click exits 1)."""
    if output is not None:
        progress = read_progress(output)  # what a resume will find, even if Ctrl-C came mid-update
        saved = progress.rows if progress else 0
        message = (
            f"已中断：{output} 已保存 {saved} 行；用同一命令加 --resume 即可接着处理 / interrupted: {output} holds "
            f"{saved} rows; run the same command again with --resume to continue"
        )
    else:
        message = (
            "已中断：输出不完整且不能续跑，请重新运行 / interrupted: the output is incomplete and cannot be resumed; "
            "run it again"
        )
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(INTERRUPTED_EXIT_CODE)


def _prepend(first: Item, rest: Iterator[Item]) -> Iterator[Item]:
    yield first
    yield from rest

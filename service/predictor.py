"""The loaded model, its atomic reload, and opportunistic micro-batching of predictions.

Why batching: under load, many small model calls cost more than one call for all of them
(fixed per-call work, and for submissions one commit instead of many). A single worker thread
takes whatever requests are waiting (never waiting for more to arrive) and answers each from
one model call and one transaction. When nothing is running and nothing waits, a request runs
in its own thread instead: handing it to the worker would only add two thread switches.

Why a holder: reload builds the new model completely, then replaces one reference. Each request
reads that reference once, so requests in flight finish on the model they started with.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.classifier import Prediction, TriageModel
from model.flags import FlagModel
from model.persistence import (
    Manifest,
    ModelLoadError,
    load_flags,
    load_model,
    require_segmenter,
    verify_flags,
    verify_model,
)
from model.registry import Registry, RegistryError
from service.logging import log_event
from store import QueueStore, StoreError, Submission, Submitted

logger = logging.getLogger("triage.model")

WARM_UP_TEXT = "我在某小区买的商品房开发商逾期交房，请相关部门督促尽快交付。"

# Loaded models by file hash: identical bytes give an identical model, so several apps in one
# process (tests) or a reload to a re-published copy reuse it instead of paying ~20 s to load.
_cache: dict[str, tuple[TriageModel, FlagModel | None]] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 2


def _load_cached(folder: Path, segmenter: str | None) -> tuple[TriageModel, FlagModel | None, Manifest]:
    """The model of `folder` and its flag model (None for versions without one); the files are hashed
    every time (about 0.1 s), so a cached model is only reused for bytes that still match the manifest:
    a truncated or swapped file is never "reloaded"."""
    manifest = verify_model(folder)
    require_segmenter(manifest, segmenter)
    verify_flags(folder, manifest)
    key = f"{manifest.model_sha256}:{manifest.flags.get('sha256', '')}"
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached[0], cached[1], manifest
    model, manifest = load_model(folder, segmenter)  # verifies hash, trusted types and segmenter
    flags = load_flags(folder, manifest)
    with _cache_lock:
        _cache[key] = (model, flags)
        while len(_cache) > _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
    return model, flags, manifest


@dataclass(frozen=True)
class LoadedModel:
    model: TriageModel
    manifest: Manifest
    thresholds: dict[str, float]
    loaded_at: datetime
    overrides: dict[str, float] = field(default_factory=dict)
    flags: FlagModel | None = None  # litigation / collective flags saved with the version, if any

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def heads(self) -> list[str]:
        return list(self.model.head_names_)

    def predict(self, texts: Sequence[str], explain: bool = True) -> list[Prediction]:
        """The model's predictions with the operator's thresholds applied and the version's flags attached."""
        predictions = [self.apply_thresholds(p) for p in self.model.predict(texts, explain=explain)]
        if self.flags is None:
            return predictions
        scores = self.flags.predict(texts)
        return [replace(prediction, flags=flags) for prediction, flags in zip(predictions, scores, strict=True)]

    def apply_thresholds(self, prediction: Prediction) -> Prediction:
        """Re-judge needs_review when the operator overrides a head's threshold."""
        if not self.overrides:
            return prediction
        heads = {
            name: replace(head, needs_review=head.confidence < self.thresholds[name])
            for name, head in prediction.heads.items()
        }
        return replace(prediction, heads=heads)


def load_current(registry_root: Path, overrides: dict[str, float], segmenter: str | None = None) -> LoadedModel:
    folder = Registry(registry_root).current_folder()
    model, flags, manifest = _load_cached(folder, segmenter)
    known = {name: value for name, value in overrides.items() if name in model.head_names_}
    thresholds = {name: float(model.thresholds_[name]) for name in model.head_names_} | known
    loaded = LoadedModel(model, manifest, thresholds, datetime.now(UTC), known, flags)
    loaded.predict([WARM_UP_TEXT])  # initialises the segmenter and builds the compiled path before traffic
    return loaded


class ModelHolder:
    """The current model behind one reference; `reload` swaps it only after the new one is ready."""

    def __init__(self, registry_root: Path, overrides: dict[str, float], segmenter: str | None = None) -> None:
        self.registry_root = registry_root
        self.overrides = overrides
        self.segmenter = segmenter
        self._reload_lock = threading.Lock()
        self.current: LoadedModel = load_current(registry_root, overrides, segmenter)

    def reload(self) -> tuple[LoadedModel, LoadedModel]:
        with self._reload_lock:
            previous = self.current
            fresh = load_current(self.registry_root, self.overrides, self.segmenter)
            self.current = fresh
            return previous, fresh


class RegistryWatcher:
    """Follows the registry's CURRENT pointer: when `triage promote` moves it, the holder reloads (verified).

    Every replica and worker process holds its own model. Each polls the pointer file (one small read
    every `interval` seconds), so all of them switch to a promoted version without a restart or a call
    to each one's /v1/model/reload. A version that fails to load is logged once and left alone until
    the pointer moves again; the model in service stays in service.
    """

    def __init__(
        self,
        holder: ModelHolder,
        interval: float,
        on_reload: Callable[[LoadedModel, LoadedModel], None],
    ) -> None:
        self.holder = holder
        self.interval = interval
        self.on_reload = on_reload
        self._failed: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="triage-registry-watch", daemon=True)

    def start(self) -> RegistryWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def check(self) -> LoadedModel | None:
        """Reload if the pointer names another version than the one in service; returns the new model."""
        pointer = Registry(self.holder.registry_root).current()
        if pointer is None or pointer in (self.holder.current.version, self._failed):
            return None
        try:
            previous, fresh = self.holder.reload()
        except (ModelLoadError, RegistryError, OSError) as error:
            self._failed = pointer
            log_event(
                logger, logging.ERROR, "model.watch_reload_failed", version=pointer, error_type=type(error).__name__
            )
            return None
        self._failed = None
        self.on_reload(previous, fresh)
        return fresh

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception as error:  # keep watching: one bad read must not end the replica's updates
                log_event(logger, logging.ERROR, "model.watch_failed", error_type=type(error).__name__)


@dataclass
class _Job:
    loaded: LoadedModel
    texts: Sequence[str]
    explain: bool
    future: Future[Any] = field(default_factory=Future)
    # For submissions: turns the predictions into rows to commit in the same batch (group commit).
    store: Callable[[list[Prediction]], list[Submission]] | None = None
    done: list[Prediction] = field(default_factory=list)  # predictions so far, in text order
    taken: int = 0  # texts handed to the model so far
    failed: bool = False

    @property
    def finished(self) -> bool:
        return self.failed or len(self.done) == len(self.texts)

    def slice_end(self, max_texts: int, max_chars: int | None) -> int:
        """Where the next slice ends: at least one text, then more while within both budgets (None: no
        character limit)."""
        end = self.taken + 1
        chars = len(self.texts[self.taken])
        while end < len(self.texts) and end - self.taken < max_texts:
            chars += len(self.texts[end])
            if max_chars is not None and chars > max_chars:
                break
            end += 1
        return end

    def take(self, max_texts: int, max_chars: int | None) -> list[str]:
        """The next slice (see `slice_end`), marked as taken."""
        end = self.slice_end(max_texts, max_chars)
        piece = list(self.texts[self.taken : end])
        self.taken = end
        return piece


class Batcher:
    """One thread runs the model; callers block on a future (they run in the threadpool).

    Submissions ride the same thread: their rows are written in one transaction per batch and each
    caller is answered after the commit, so a 201 still means committed. One writer thread also avoids
    request threads queueing for SQLite's single write lock while the model holds the GIL.

    Fairness: each model call takes a slice of at most `slice_chars` characters (at least one text) from
    every waiting request in turn, so a large batch is spread over several calls and a short classify
    that arrives meanwhile waits for one slice, not for the whole batch. `slice_chars=None` is the old
    behaviour (each request whole, first come first served), kept for the benchmark's baseline.

    Idle: a request that fits one model call, arriving when nothing is queued or running, runs in the
    caller's thread (same model call, same commit), without the hop to the worker and back.
    """

    def __init__(
        self,
        max_batch: int = 64,
        observe_batch: object = None,
        queue_store: QueueStore | None = None,
        slice_chars: int | None = 4_000,
    ) -> None:
        self.max_batch = max(1, max_batch)
        self.slice_chars = slice_chars
        self.queue_store = queue_store
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()  # None: stop
        self._observe = observe_batch
        self._running = threading.Lock()  # held while a model call and its commit run, in the worker or inline
        self._state = threading.Lock()
        self._pending = 0  # jobs taken and not yet answered: queued, in the worker's rotation or inline
        self._thread = threading.Thread(target=self._run, name="triage-predict", daemon=True)
        self._thread.start()

    def predict(self, loaded: LoadedModel, texts: Sequence[str], explain: bool = True) -> list[Prediction]:
        if not texts:
            return []
        job = _Job(loaded, list(texts), explain)
        self._run_or_queue(job)
        predictions: list[Prediction] = job.future.result()
        return predictions

    def submit(
        self,
        loaded: LoadedModel,
        texts: Sequence[str],
        rows: Callable[[list[Prediction]], list[Submission]],
    ) -> tuple[list[Prediction], list[Submitted | StoreError]]:
        """Predict, then store the rows built from the predictions; returns both once committed."""
        if self.queue_store is None:
            raise RuntimeError("this batcher has no store")
        job = _Job(loaded, list(texts), True, store=rows)
        self._run_or_queue(job)
        answer: tuple[list[Prediction], list[Submitted | StoreError]] = job.future.result()
        return answer

    def _run_or_queue(self, job: _Job) -> None:
        """Run `job` in the caller's thread when nothing is queued or running and it is one slice; else queue it.

        Only a job that fits one model call runs inline, so a request arriving meanwhile waits for at
        most one slice, as it would behind the worker.
        """
        with self._state:
            inline = self._pending == 0 and job.slice_end(self.max_batch, self.slice_chars) == len(job.texts)
            self._pending += 1
        if not inline:
            self._jobs.put(job)
            return
        with self._running:
            self._execute(self._plan(deque([job])))
            self._answer([job])
        self._settled(1)

    def _settled(self, jobs: int) -> None:
        with self._state:
            self._pending -= jobs

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        active: deque[_Job] = deque()
        stopping = False
        while True:
            if not active:
                if stopping:
                    return
                first = self._jobs.get()
                if first is None:
                    return
                active.append(first)
            while not stopping:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                else:
                    active.append(more)
            with self._running:  # an inline request may be running: the next slice starts once it is done
                self._execute(self._plan(active))
                finished = [job for job in active if job.finished]
                for job in finished:
                    active.remove(job)
                self._settled(len(finished))  # before answering: a caller's next request may then run inline
                self._answer(finished)

    def _plan(self, active: deque[_Job]) -> list[tuple[_Job, list[str]]]:
        """One model call's work: a slice from each waiting job in turn, at most `max_batch` texts.
        The queue rotates, so jobs left out when the budget runs out go first next time."""
        step: list[tuple[_Job, list[str]]] = []
        budget = self.max_batch
        for _ in range(len(active)):
            if budget <= 0:
                break
            job = active[0]
            active.rotate(-1)
            if job.taken >= len(job.texts):
                continue
            # Without slicing, the whole request at once (the behaviour before fair scheduling).
            whole = self.slice_chars is None
            piece = job.take(len(job.texts), None) if whole else job.take(budget, self.slice_chars)
            step.append((job, piece))
            budget -= len(piece)
        return step

    def _execute(self, step: list[tuple[_Job, list[str]]]) -> None:
        groups: dict[tuple[int, bool], list[tuple[_Job, list[str]]]] = {}
        for job, piece in step:
            groups.setdefault((id(job.loaded), job.explain), []).append((job, piece))
        for (_, explain), group in groups.items():
            texts = [text for _, piece in group for text in piece]
            started = time.perf_counter()
            try:
                loaded = group[0][0].loaded
                predictions = loaded.predict(texts, explain=explain)
            except Exception as error:
                log_event(
                    logger, logging.ERROR, "model.predict_failed", error_type=type(error).__name__, texts=len(texts)
                )
                for job, _ in group:
                    if not job.failed:
                        job.failed = True
                        job.future.set_exception(error)
                continue
            if callable(self._observe):
                self._observe(len(texts))
            log_event(
                logger,
                logging.DEBUG,
                "model.predict_batch",
                texts=len(texts),
                requests=len(group),
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
            position = 0
            for job, piece in group:
                job.done.extend(predictions[position : position + len(piece)])
                position += len(piece)

    def _answer(self, finished: list[_Job]) -> None:
        """Answer the jobs whose last slice is done: submissions after one group commit, the rest at once."""
        succeeded = [job for job in finished if not job.failed]
        self._commit([(job, job.done) for job in succeeded if job.store is not None])
        for job in succeeded:
            if job.store is None:
                job.future.set_result(job.done)

    def _commit(self, pending: list[tuple[_Job, list[Prediction]]]) -> None:
        """One transaction for every submission of this batch; answer only after it committed."""
        if not pending:
            return
        try:
            rows = [job.store(result) for job, result in pending if job.store is not None]
            assert self.queue_store is not None
            outcomes = self.queue_store.submit_each([row for batch in rows for row in batch])
        except Exception as error:
            log_event(logger, logging.ERROR, "queue.commit_failed", error_type=type(error).__name__, rows=len(pending))
            for job, _ in pending:
                job.future.set_exception(error)
            return
        position = 0
        for (job, result), batch in zip(pending, rows, strict=True):
            job.future.set_result((result, outcomes[position : position + len(batch)]))
            position += len(batch)

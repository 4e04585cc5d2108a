"""The litigation / collective flags trained with every model version (model/flags.py).

They learn from the rows that carry flag columns: the training data itself when it has them (the
corpus does), else the corpus mixed into an office's rows. Precision and recall are measured on
that data's held-out rows with a model fitted on its training rows; the shipped flag model is then
refitted on every row, keeping the thresholds chosen (out of fold) for the evaluated one.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from model.flags import Flag, FlagModel
from training.dataset import LabelledData


@dataclass(frozen=True)
class FlagHeldOut:
    """One flag on the held-out rows."""

    positives: int
    flagged: int
    true_positives: int
    threshold: float

    @property
    def precision(self) -> float:
        return self.true_positives / self.flagged if self.flagged else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.positives if self.positives else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "positives": self.positives,
            "flagged": self.flagged,
            "threshold": round(self.threshold, 4),
        }


@dataclass(frozen=True)
class FlagTraining:
    model: FlagModel
    source: str  # "data": the training data's own flag columns; "corpus": the mixed-in corpus
    train_rows: int
    test_rows: int
    shipped_rows: int
    held_out: dict[str, FlagHeldOut]

    def manifest_entry(self, sha256: str) -> dict[str, Any]:
        """What the manifest records about the flag file saved with the version."""
        return {
            "sha256": sha256,
            "source": self.source,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "shipped_model_rows": self.shipped_rows,
            "test": {name: figures.to_dict() for name, figures in self.held_out.items()},
        }


def flag_rows(
    data: LabelledData, train: LabelledData, test: LabelledData, corpus: LabelledData | None
) -> tuple[str, LabelledData, LabelledData, LabelledData] | None:
    """(source, training rows, held-out rows, every row) to learn the flags from, or None when no rows carry flags.

    The data's own split when it has flag columns; else the corpus's fixed split."""
    if data.flags is not None and train.flags is not None and test.flags is not None:
        return "data", train, test, data
    if corpus is not None and corpus.flags is not None:
        return "corpus", corpus.subset("train"), corpus.subset("test"), corpus
    return None


def held_out(model: FlagModel, test: LabelledData) -> dict[str, FlagHeldOut]:
    assert test.flags is not None
    scores = model.predict(test.texts) if len(test) else []
    figures = {}
    for name, threshold in model.thresholds.items():
        truth = test.flags[name]
        flagged = [row[name].flagged for row in scores]
        figures[name] = FlagHeldOut(
            positives=sum(truth),
            flagged=sum(flagged),
            true_positives=sum(f and t for f, t in zip(flagged, truth, strict=True)),
            threshold=threshold,
        )
    return figures


def train_flags(
    data: LabelledData, train: LabelledData, test: LabelledData, corpus: LabelledData | None, refit: bool = True
) -> FlagTraining | None:
    """Fit, evaluate on held-out rows, refit on all rows; None when no rows carry flags or too few are flagged."""
    rows = flag_rows(data, train, test, corpus)
    if rows is None:
        return None
    source, fit_rows, test_rows, every_row = rows
    assert fit_rows.flags is not None and every_row.flags is not None
    model = FlagModel.fit(fit_rows.texts, fit_rows.flags)
    if not model.weights:
        return None
    figures = held_out(model, test_rows)
    shipped = fit_rows
    if refit and len(every_row) > len(fit_rows):
        model = FlagModel.fit(every_row.texts, every_row.flags, thresholds=model.thresholds)
        shipped = every_row
    return FlagTraining(model, source, len(fit_rows), len(test_rows), len(shipped), figures)


@contextmanager
def flags_alongside(
    jobs: int | None,
    data: LabelledData,
    train: LabelledData,
    test: LabelledData,
    corpus: LabelledData | None,
    refit: bool = True,
) -> Iterator[Callable[[], FlagTraining | None]]:
    """`train_flags`, started now in a process of its own when `jobs` > 1; call what this yields for the result.

    The flags never need the routing model, so they are fitted while it is: the routing fits leave a
    core idle while they extract features. A new (spawned) process, not a fork of one that may run
    worker pools; the flags are the same either way (model/flags.py fits them on one BLAS thread).
    """
    if jobs is None or jobs <= 1:
        yield lambda: train_flags(data, train, test, corpus, refit)
        return
    # A bare process and a pipe, not a Pool: Pool.terminate() can hang for good while its task thread is
    # still writing the (large) arguments to a worker that is being stopped.
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_train_flags_into, args=(sender, data, train, test, corpus, refit), name="triage-flags", daemon=True
    )
    process.start()
    sender.close()

    def result() -> FlagTraining | None:
        try:
            outcome = receiver.recv()
        except EOFError:
            message = f"标记模型训练进程意外退出 / the flag training process died (exit code {process.exitcode})"
            raise RuntimeError(message) from None
        if isinstance(outcome, BaseException):
            raise outcome
        trained: FlagTraining | None = outcome
        return trained

    try:
        yield result
    except BaseException:
        process.terminate()  # the run failed: do not wait for flags nobody will save
        raise
    finally:
        process.join()
        receiver.close()


def _train_flags_into(
    sender: Connection,
    data: LabelledData,
    train: LabelledData,
    test: LabelledData,
    corpus: LabelledData | None,
    refit: bool,
) -> None:
    """The flag process: `train_flags`, its result (or its exception) sent back through the pipe."""
    try:
        outcome: FlagTraining | BaseException | None = train_flags(data, train, test, corpus, refit)
    except Exception as error:
        outcome = error
    sender.send(outcome)
    sender.close()


def flag_lines(entry: dict[str, Any]) -> list[str]:
    """The manifest's flag figures as lines for the CLI and the model card (none for a version without flags)."""
    source = "语料 / corpus" if entry.get("source") == "corpus" else "训练数据 / training data"
    return [
        f"- {Flag(name).label} {name}: held-out precision {figures['precision']:.3f}, recall {figures['recall']:.3f} "
        f"({figures['flagged']} flagged, {figures['positives']} positive of {entry['test_rows']} held-out rows of "
        f"the {source}; threshold {figures['threshold']:.2f})"
        for name, figures in entry.get("test", {}).items()
    ]

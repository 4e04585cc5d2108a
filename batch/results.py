"""Typed results of batch classification: one `Item` per input row, one `Result` per item."""

from __future__ import annotations

from dataclasses import dataclass

from model.classifier import Prediction


@dataclass(frozen=True)
class Item:
    """One input row, validated: either text to classify or the reason it cannot be."""

    number: int
    id: str
    text: str | None
    error: str | None
    old_department: str = ""
    contact: str | None = None  # the petitioner's contact (`--contact-col`): repeat detection on enqueue


@dataclass(frozen=True)
class Result:
    """What the batch run says about one input row. Writers turn it into text (batch/writers.py).

    `prediction` is None exactly when `item.error` is set; its explanation is filled only when the
    run keeps predictions for a sink such as the routing queue. `changed` is None unless the run
    compares with an old department column.
    """

    item: Item
    model_version: str
    prediction: Prediction | None
    changed: bool | None = None

    @property
    def domain(self) -> str | None:
        return None if self.prediction is None else self.prediction.heads["domain"].label

    @property
    def department(self) -> str | None:
        head = None if self.prediction is None else self.prediction.heads.get("department")
        return None if head is None else head.label

    @property
    def needs_review(self) -> bool:
        return self.prediction is not None and self.prediction.needs_review

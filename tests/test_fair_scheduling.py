"""Fair prediction scheduling (issue 12, item 5): a short classify that arrives while a large batch is
being predicted is answered before the batch, not after it. Order, not timing, is asserted; the delay
itself is measured by benchmarks/fairness.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from service.predictor import Batcher, LoadedModel, load_current
from training.dataset import load_corpus

SHORT = "小区物业乱收停车费，请求查处。"


@pytest.fixture(scope="module")
def loaded(registry_root: Path) -> LoadedModel:
    return load_current(registry_root, {})


def finishing_order(loaded: LoadedModel, slice_chars: int | None) -> list[str]:
    """Start a batch of ten long texts, then a short classify; return which finished first.

    The batch (200,000 characters) must still be in the model 0.2 s after it started, also with the fast
    segmenter: ten slices of 20,000 characters take about a second here."""
    corpus = "".join(load_corpus().texts[:1500])  # about 280,000 characters: enough for ten slices
    long_texts = [corpus[i * 20_000 : (i + 1) * 20_000] for i in range(10)]
    assert all(len(text) == 20_000 for text in long_texts)
    batcher = Batcher(max_batch=64, slice_chars=slice_chars)
    order: list[str] = []
    lock = threading.Lock()

    def run(name: str, texts: list[str]) -> None:
        predictions = batcher.predict(loaded, texts)
        assert len(predictions) == len(texts)
        with lock:
            order.append(name)

    try:
        big = threading.Thread(target=run, args=("batch", long_texts))
        big.start()
        time.sleep(0.2)  # the batch is in the model by now
        short = threading.Thread(target=run, args=("short", [SHORT]))
        short.start()
        big.join(timeout=120)
        short.join(timeout=120)
    finally:
        batcher.stop()
    return order


def test_a_short_classify_overtakes_a_large_batch(loaded: LoadedModel) -> None:
    assert finishing_order(loaded, slice_chars=4_000) == ["short", "batch"]


def test_without_slicing_it_waits_for_the_whole_batch(loaded: LoadedModel) -> None:
    assert finishing_order(loaded, slice_chars=None) == ["batch", "short"]


def test_sliced_predictions_equal_whole_ones(loaded: LoadedModel) -> None:
    texts = load_corpus().texts[:40]
    sliced, whole = Batcher(slice_chars=300), Batcher(slice_chars=None)
    try:
        left, right = sliced.predict(loaded, texts), whole.predict(loaded, texts)
    finally:
        sliced.stop()
        whole.stop()
    assert [p.heads["domain"].label for p in left] == [p.heads["domain"].label for p in right]
    assert [round(p.heads["domain"].confidence, 6) for p in left] == [
        round(p.heads["domain"].confidence, 6) for p in right
    ]

"""The micro-batcher: an idle server answers in the caller's thread; concurrent requests still batch."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from service.predictor import Batcher, load_current

TEXTS = [
    "我们小区开发商延期交房快两年了",
    "健身房老板跑路了，我的年卡还剩八个月",
    "孩子学校天天补课收钱",
    "网上投资平台无法提现，本金被骗",
]


def test_an_idle_batcher_runs_the_request_in_the_callers_thread(registry_root: Path) -> None:
    loaded = load_current(registry_root, {})
    threads: list[str] = []
    batcher = Batcher(observe_batch=lambda size: threads.append(threading.current_thread().name))
    try:
        prediction = batcher.predict(loaded, [TEXTS[0]])[0]
        assert threads == [threading.current_thread().name]
        assert prediction == loaded.predict([TEXTS[0]])[0]
    finally:
        batcher.stop()


def test_concurrent_requests_each_get_their_own_answer(registry_root: Path) -> None:
    loaded = load_current(registry_root, {})
    sizes: list[int] = []
    batcher = Batcher(observe_batch=sizes.append)
    expected = loaded.predict(TEXTS)
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: batcher.predict(loaded, [TEXTS[i % 4]])[0], range(40)))
    finally:
        batcher.stop()
    assert answers == [expected[i % 4] for i in range(40)]
    assert sum(sizes) == 40

"""Inference at the speed of the segmenter (issue 15): every ratio measured in one run.

Texts: real messages of about 500 characters from ../shared/datasets/teddy2020c (evaluation only;
`--messages PATH`), or, when that file is absent, corpus sentences joined to the same length.
Models: the current model of `--jieba-registry` and of `--rjieba-registry` (trained with
`triage train --segmenter ...`; each is trained into the given registry first if it is empty).

Printed, each against its baseline from the same run:
1. one text in process: median `predict` (compiled, with explanations, as the service calls it)
   vs the median segmentation of the same text; the scikit-learn path beside it;
2. HTTP at concurrency 1: /v1/classify and /v1/petitions p50 vs /healthz p50 (real server; the three
   requests take turns on one connection, so a slow spell of the machine hits all three alike);
3. `triage classify --jobs 2` rows/s vs jieba's single-core rows/s, and vs a plain jieba TF-IDF +
   LinearSVC pipeline (trained on the corpus), both timed just before and after each run on its first
   `--sample` rows (the run classifies more rows like them, so that it outlasts its start-up);
4. batch peak memory (PSS of the process tree) at 50,000 and 200,000 rows.

    .venv/bin/python benchmarks/inference.py [--rows 200000] [--small-rows 50000] [--skip-http] [--skip-batch]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib.util
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import jieba
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _sibling(name: str) -> ModuleType:
    """Another benchmark script as a module (`batch` would otherwise mean the project's package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


api_benchmark, batch_benchmark = _sibling("api"), _sibling("batch")
drive, running_server, Connection, Result = (
    api_benchmark.drive,
    api_benchmark.running_server,
    api_benchmark.Connection,
    api_benchmark.Result,
)
run_classify = batch_benchmark.run_classify
from model.classifier import TriageModel  # noqa: E402
from model.persistence import load_model  # noqa: E402
from model.registry import Registry  # noqa: E402
from model.text import prepare_text  # noqa: E402
from model.tokenize import Segmenter, raw_segment, shared_segmenter  # noqa: E402
from training.dataset import CORPUS_PATH, load_corpus  # noqa: E402
from training.train import train_and_register  # noqa: E402

DEFAULT_MESSAGES = ROOT.parent / "shared" / "datasets" / "teddy2020c" / "messages_labeled.csv"
TARGET_CHARS = 500
SLOW_ROWS, FAST_ROWS = 2, 8  # batch rate runs: the jieba and the rjieba model classify this many times `--sample` rows


def real_texts(path: Path) -> list[str] | None:
    if not path.is_file():
        print(f"real messages not found at {path}: using corpus sentences joined to ~{TARGET_CHARS} characters")
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        return [f"{row['留言主题']} {row['留言详情']}" for row in csv.DictReader(handle)]


def corpus_texts(count: int, seed: int = 0) -> list[str]:
    """Corpus texts joined until each is about TARGET_CHARS long (new combinations, nothing external)."""
    texts = [json.loads(line)["text"] for line in CORPUS_PATH.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    joined = []
    for _ in range(count):
        text = ""
        while len(text) < TARGET_CHARS:
            text += rng.choice(texts)
        joined.append(text)
    return joined


def load_average() -> str:
    """The 1-minute load average: the ratios only mean something when it stays below the core count."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def model_in(registry: Path, segmenter: Segmenter) -> TriageModel:
    if Registry(registry).current() is None:
        print(f"training a {segmenter} model into {registry} (the corpus; a few minutes)")
        train_and_register(load_corpus(), Registry(registry), {"segmenter": segmenter.value})
    model, _ = load_model(Registry(registry).current_folder())
    if model.trained_segmenter != segmenter:
        raise SystemExit(f"{registry}: the current model uses {model.trained_segmenter}, not {segmenter}")
    return model


def interleaved_ms(
    functions: dict[str, Callable[[str], object]], texts: list[str], repeats: int = 3
) -> dict[str, float]:
    """Median time in ms of each function on one text. The functions run in turn on each text, so a slow
    spell of a shared machine hits all of them alike (timed one after the other, the same predict measured
    4.8 ms in one pass and 8.3 ms in the next). The prepared-text cache is emptied before each call, so
    every call prepares its text as a new request does."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for text in texts:
        for _ in range(repeats):
            for name, function in functions.items():
                prepare_text.cache_clear()
                started = time.perf_counter()
                function(text)
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def one_text(models: dict[Segmenter, TriageModel], texts: list[str]) -> None:
    sample = sorted(texts, key=lambda text: abs(len(text) - TARGET_CHARS))[:100]
    print(f"\n1. one text in process ({len(sample)} texts, median {statistics.median(map(len, sample)):.0f} chars)")
    for segmenter, model in models.items():
        segment = raw_segment(segmenter)
        model.predict(sample[:3])
        model.predict(sample[:3], compiled=False)
        # The scikit-learn path is timed in a pass of its own: run in between, its large vocabulary dicts
        # push the compiled path's arrays out of the CPU caches, which a service running only the
        # compiled path never sees.
        timed = interleaved_ms(
            {
                "cut": lambda text, segment=segment: segment(prepare_text(text)),  # type: ignore[misc]
                "fast": lambda text, model=model: model.predict([text]),  # type: ignore[misc]
            },
            sample,
        )
        reference = {"slow": lambda text, model=model: model.predict([text], compiled=False)}  # type: ignore[misc]
        slow = interleaved_ms(reference, sample)["slow"]
        cut, fast = timed["cut"], timed["fast"]
        print(
            f"   {segmenter:<7} segmentation {cut:6.2f} ms | predict compiled {fast:6.2f} ms = {fast / cut:4.2f}x "
            f"segmentation | scikit-learn path {slow:6.2f} ms = {slow / cut:4.1f}x"
        )
        if segmenter == Segmenter.JIEBA:
            verdict = "met" if fast <= 1.5 * cut else "MISSED"
            print(f"   target predict <= 1.5x jieba segmentation: {verdict} ({fast / cut:.2f}x)")
        else:
            print(f"   target with rjieba <= 1 ms median: {'met' if fast <= 1.0 else 'MISSED'} ({fast:.2f} ms)")


def http(registry: Path, texts: list[str], requests: int) -> None:
    with running_server(registry) as (port, _):
        results = asyncio.run(_http_runs(port, texts, requests))
    health, classify, submit = results
    base = health.percentile(0.5)
    print(f"\n2. HTTP at concurrency 1, {requests} rounds of the three requests in turn, model in {registry}")
    for result, limit in ((health, None), (classify, 3.0), (submit, 5.0)):
        p50 = result.percentile(0.5)
        line = (
            f"   {result.name:<18} p50 {p50:6.2f} ms  p99 {result.percentile(0.99):6.2f} ms  {p50 / base:5.1f}x healthz"
        )
        if limit is not None:
            line += f"  (target <= {limit:.0f}x: {'met' if p50 <= limit * base else 'MISSED'})"
        print(line + (f"  errors {result.errors}" if result.errors else ""))


async def _http_runs(port: int, texts: list[str], requests: int) -> list:  # type: ignore[type-arg]
    """/healthz, a classify and a submission in turn on one keep-alive connection, `requests` rounds.

    Timed one endpoint after the other, /healthz alone moved between 0.6 and 3.5 ms from run to run on
    this shared machine, and with it every ratio; taking turns, a slow spell lands on all three."""
    host = "127.0.0.1"
    await drive(host, port, "warm-up", "POST", "/v1/classify", [{"text": t} for t in texts[:20]], 1)
    rounds = [
        (None, {"text": classify}, {"text": submit, "channel": "web"})
        for classify, submit in zip(
            unique_rows(texts, requests, seed=1), unique_rows(texts, requests, seed=2), strict=True
        )
    ]
    endpoints = [
        ("GET /healthz", "GET", "/healthz"),
        ("POST /v1/classify", "POST", "/v1/classify"),
        ("POST /v1/petitions", "POST", "/v1/petitions"),
    ]
    latencies: list[list[float]] = [[] for _ in endpoints]
    errors = [0 for _ in endpoints]
    connection = Connection(host, port)
    started = time.perf_counter()
    try:
        for bodies in rounds:
            for index, ((_, method, path), body) in enumerate(zip(endpoints, bodies, strict=True)):
                begun = time.perf_counter()
                status = await connection.request(method, path, body)
                if status >= 300:
                    errors[index] += 1
                else:
                    latencies[index].append(time.perf_counter() - begun)
    finally:
        connection.close()
    seconds = time.perf_counter() - started
    return [
        Result(name, timings, seconds, failed)
        for (name, _, _), timings, failed in zip(endpoints, latencies, errors, strict=True)
    ]


def unique_rows(texts: list[str], rows: int, seed: int = 0) -> list[str]:
    """`rows` texts drawn from `texts`, each made unique (its number appended), so no cache answers a
    repeated text in any of the runs."""
    rng = random.Random(seed)
    return [f"{rng.choice(texts)} {index}" for index in range(rows)]


def write_rows(path: Path, texts: list[str], rows: int, seed: int = 0) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for index, text in enumerate(unique_rows(texts, rows, seed)):
            writer.writerow([f"R{index:07d}", text])


def plain_pipeline() -> tuple[TfidfVectorizer, LinearSVC]:
    """The baseline of the issue: jieba word TF-IDF + LinearSVC, scikit-learn defaults, corpus-trained."""
    corpus = load_corpus()
    segmenter = shared_segmenter()
    vectorizer = TfidfVectorizer(tokenizer=segmenter.lcut, token_pattern=None, lowercase=False)
    classifier = LinearSVC().fit(vectorizer.fit_transform(corpus.texts), corpus.labels)
    return vectorizer, classifier


def rows_per_second(function: Callable[[list[str]], object], texts: list[str], chunk: int = 256) -> float:
    prepare_text.cache_clear()  # texts prepared by earlier parts must be prepared again here
    started = time.perf_counter()
    for start in range(0, len(texts), chunk):
        function(texts[start : start + chunk])
    return len(texts) / (time.perf_counter() - started)


def batch(registries: dict[Segmenter, Path], texts: list[str], rows: int, small_rows: int, sample: int) -> None:
    """Each model's `triage classify --jobs 2` rate against the baselines timed just before and just after
    it (their mean): minutes apart, the same jieba rate moved by a quarter on this shared machine."""
    timed = unique_rows(texts, sample, seed=1)
    jieba_cut = raw_segment(Segmenter.JIEBA)
    vectorizer, classifier = plain_pipeline()

    def baselines() -> tuple[float, float]:
        jieba_rate = rows_per_second(lambda chunk: [jieba_cut(prepare_text(t)) for t in chunk], timed)
        return jieba_rate, rows_per_second(lambda chunk: classifier.predict(vectorizer.transform(chunk)), timed)

    print(f"\n3. batch on {sample} real-length rows (median {statistics.median(map(len, timed)):.0f} chars)")
    with tempfile.TemporaryDirectory(prefix="triage-inference-") as scratch:
        tiny = Path(scratch) / "tiny.csv"
        write_rows(tiny, texts, 10)
        for segmenter, registry in registries.items():
            # Each run lasts well beyond the start-up subtracted from it (which alone moves by seconds between
            # runs): the jieba model classifies twice `sample` rows, the rjieba model FAST_ROWS times as many.
            count = sample * (FAST_ROWS if segmenter == Segmenter.RJIEBA else SLOW_ROWS)
            source = Path(scratch) / f"rows{count}.csv"
            write_rows(source, texts, count, seed=1)  # its first `sample` rows are those the baselines time
            before = baselines()
            start_up, _ = run_classify(tiny, 2, registry, sample_memory=False)
            elapsed, _ = run_classify(source, 2, registry, sample_memory=False)
            after = baselines()
            jieba_rate, plain_rate = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
            rate = count / (elapsed - start_up)
            print(
                f"   baselines, one core: jieba segmentation {before[0]:.0f} / {after[0]:.0f} rows/s (before / after), "
                f"plain jieba TF-IDF + LinearSVC {before[1]:.0f} / {after[1]:.0f} rows/s"
            )
            print(
                f"   triage classify --jobs 2, {segmenter:<7} on {count} rows: {rate:7.0f} rows/s = "
                f"{rate / jieba_rate:4.2f}x jieba one core, {rate / plain_rate:4.2f}x plain pipeline "
                f"({elapsed:.1f}s wall, less {start_up:.1f}s start-up measured on 10 rows; {load_average()})"
            )
            if segmenter == Segmenter.JIEBA:
                print(f"   target >= 1.5x jieba one core: {'met' if rate >= 1.5 * jieba_rate else 'MISSED'}")
            else:
                print(f"   target >= 4x plain pipeline: {'met' if rate >= 4 * plain_rate else 'MISSED'}")
        print(f"\n4. batch peak memory, triage classify --jobs 2 ({', '.join(map(str, registries))})")
        for count in (small_rows, rows):
            if not count:
                continue
            big = Path(scratch) / f"rows{count}.csv"
            write_rows(big, texts, count, seed=2)
            for segmenter, registry in registries.items():
                elapsed, peak = run_classify(big, 2, registry)
                print(
                    f"   {count:>7} rows, {segmenter:<7}: peak {peak / 1024:5.0f} MB (PSS, process tree), "
                    f"{count / elapsed:6.0f} rows/s with the memory sampler running; target < 500 MB: "
                    f"{'met' if peak < 500 * 1024 else 'MISSED'} ({load_average()})"
                )
            big.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=Path, default=DEFAULT_MESSAGES, help="real messages CSV (evaluation)")
    parser.add_argument("--jieba-registry", type=Path, default=ROOT / "models")
    parser.add_argument("--rjieba-registry", type=Path, default=ROOT / "models-rjieba")
    parser.add_argument("--requests", type=int, default=300, help="HTTP requests per endpoint")
    parser.add_argument("--sample", type=int, default=5000, help="rows for the batch rates")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the large memory run (0: skip)")
    parser.add_argument("--small-rows", type=int, default=50_000, help="rows of the small memory run (0: skip)")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-batch", action="store_true", help="only the in-process and HTTP parts")
    args = parser.parse_args()

    texts = real_texts(args.messages) or corpus_texts(2000)
    texts = [text for text in texts if len(text) >= 100]
    jieba.setLogLevel(60)
    registries = {Segmenter.JIEBA: args.jieba_registry, Segmenter.RJIEBA: args.rjieba_registry}
    models = {segmenter: model_in(registry, segmenter) for segmenter, registry in registries.items()}
    print(f"{len(texts)} texts, median {statistics.median(map(len, texts)):.0f} chars; {load_average()}")
    one_text(models, texts)
    print(f"   ({load_average()})")
    del models
    if not args.skip_http:
        for registry in registries.values():
            http(registry, texts, args.requests)
            print(f"   ({load_average()})")
    if not args.skip_batch:
        batch(registries, texts, args.rows, args.small_rows, args.sample)
        print(f"\n{load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

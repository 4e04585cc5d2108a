"""Backlog throughput and memory of `triage classify`, next to a naive per-row loop in the same run.

Input: a synthetic backlog built by resampling the corpus: every row joins 1-4 sentences drawn at
random (seeded) from different petitions of data/petitions.jsonl, so rows are new combinations of
real corpus sentences, with lengths like the corpus. Nothing from outside the project is used.

Measured:
- naive baseline: one `model.predict([text])` call per row, in this process, on a sample of rows;
- `triage classify --jobs 1` and `--jobs 2` on the full file (wall time including model loading),
  and the peak memory (PSS) of the whole process tree (main process plus workers), sampled
  from /proc every 50 ms, at two input sizes to show it does not grow with the input;
- a profile of one in-process chunked run: where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import os
import pstats
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from batch.classify import Item, classify_items  # noqa: E402
from model.persistence import load_model  # noqa: E402
from model.registry import Registry  # noqa: E402
from service.settings import Settings  # noqa: E402
from training.dataset import CORPUS_PATH  # noqa: E402

SENTENCE_END = re.compile(r"(?<=[。！？!?；])")


def build_backlog(path: Path, rows: int, seed: int = 0) -> None:
    texts = [json.loads(line)["text"] for line in CORPUS_PATH.read_text(encoding="utf-8").splitlines()]
    sentences = [s.strip() for text in texts for s in SENTENCE_END.split(text) if len(s.strip()) >= 6]
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for index in range(rows):
            writer.writerow([f"R{index:07d}", "".join(rng.sample(sentences, rng.randint(1, 4)))])


def tree_memory_kb(pid: int) -> int:
    """Proportional set size (PSS) of a process and all its descendants, from /proc.

    PSS splits pages shared between processes (the model and jieba's dictionary, shared by forked
    workers) among them, so the sum is the memory the run really occupies; summing RSS would
    count shared pages once per process.
    """
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            total += int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1))  # type: ignore[union-attr]
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, AttributeError):
            continue
    return total


def run_classify(source: Path, jobs: int, registry: Path, sample_memory: bool = True) -> tuple[float, int]:
    """Wall seconds and peak tree PSS (kB, 0 when not sampled) of one `triage classify` run.

    Reading PSS walks every page of every process in the tree: about 6 ms of CPU per sample for one
    process holding the model, so sampling every 50 ms takes a sixth of a core or more from a 2-core
    run. Rate runs pass `sample_memory=False`."""
    output = source.with_suffix(f".out{jobs}.csv")
    command = [
        sys.executable,
        "-m",
        "triage.cli",
        "classify",
        str(source),
        "-o",
        str(output),
        "--jobs",
        str(jobs),
        "--quiet",
        "--registry",
        str(registry),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_memory_kb(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    if sample_memory:
        sampler.start()
    _, stderr = process.communicate()
    elapsed = time.perf_counter() - started
    stop.set()
    if sample_memory:
        sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"classify failed: {stderr}")
    output.unlink()
    return elapsed, peak


def naive_rate(source: Path, sample: int, registry: Path) -> float:
    model, _ = load_model(Registry(registry).current_folder())
    with source.open(encoding="utf-8", newline="") as handle:
        texts = [row["text"] for _, row in zip(range(sample), csv.DictReader(handle), strict=False)]
    model.predict(texts[:5])
    started = time.perf_counter()
    for text in texts:
        model.predict([text])
    return len(texts) / (time.perf_counter() - started)


def profile(source: Path, rows: int, registry: Path) -> None:
    folder = Registry(registry).current_folder()
    model, manifest = load_model(folder)
    with source.open(encoding="utf-8", newline="") as handle:
        items = [
            Item(i, row["id"], row["text"], None) for i, row in zip(range(rows), csv.DictReader(handle), strict=False)
        ]
    profiler = cProfile.Profile()
    profiler.enable()
    for start in range(0, len(items), 256):
        classify_items(model, manifest.version, items[start : start + 256], compare=False)
    profiler.disable()
    stats = pstats.Stats(profiler)
    cumulative = {(Path(file).name, name): entry[3] for (file, _, name), entry in stats.stats.items()}  # type: ignore[attr-defined]
    total = cumulative[("classify.py", "classify_items")]
    stages = {
        "text preparation (normalise, mask)": cumulative[("text.py", "prepare_text")],
        "jieba segmentation": cumulative[("tokenize.py", "__call__")],
        "TF-IDF vectorising": cumulative[("pipeline.py", "transform")] - cumulative[("features.py", "transform")],
        "classifier + calibration": cumulative[("heads.py", "predict_proba")],
    }
    print(f"\nprofile of {len(items)} rows in-process ({total:.1f}s under the profiler):")
    for name, seconds in stages.items():
        print(f"  {name:<38} {seconds / total:6.1%}")
    print(f"  {'rest (row formatting, overheads)':<38} {1 - sum(stages.values()) / total:6.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the large input")
    parser.add_argument("--small-rows", type=int, default=50_000, help="rows of the small input (memory)")
    parser.add_argument("--naive-sample", type=int, default=2_000, help="rows timed for the naive loop")
    parser.add_argument("--registry", type=Path, default=Settings().registry)
    args = parser.parse_args()
    if Registry(args.registry).current() is None:
        print(f"no current model in {args.registry}; run `triage train` first")
        return 2
    with tempfile.TemporaryDirectory() as folder:
        large, small = Path(folder) / "large.csv", Path(folder) / "small.csv"
        build_backlog(large, args.rows)
        build_backlog(small, args.small_rows, seed=1)
        print(
            f"inputs: {args.rows} rows ({large.stat().st_size / 1e6:.0f} MB), {args.small_rows} rows; "
            f"{os.cpu_count()} cores"
        )
        naive = naive_rate(large, args.naive_sample, args.registry)
        print(f"naive per-row predict: {naive:8.0f} rows/s (baseline)")
        for jobs in (1, 2):
            elapsed, peak = run_classify(large, jobs, args.registry)
            rate = args.rows / elapsed
            print(
                f"classify --jobs {jobs}: {rate:8.0f} rows/s ({elapsed:.0f}s for {args.rows} rows, "
                f"{rate / naive:.1f}x baseline), peak memory {peak / 1024:.0f} MB"
            )
        elapsed, peak = run_classify(small, 2, args.registry)
        print(
            f"classify --jobs 2 on {args.small_rows} rows: {args.small_rows / elapsed:8.0f} rows/s, "
            f"peak memory {peak / 1024:.0f} MB"
        )
        profile(large, 5_000, args.registry)
    return 0


if __name__ == "__main__":
    sys.exit(main())

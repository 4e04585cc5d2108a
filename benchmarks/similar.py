"""Similar-petition lookup at intake as the store grows: p50/p95 of one lookup at 1,000,000 stored petitions.

The stored petitions are synthetic (benchmarks/synthetic_petitions.py: corpus sentences recombined,
one character in six replaced, 1% in made-up topics of 20), built the way the service rebuilds
its index on start (`add_many` in batches of 50,000; the texts are used as stored, without
`prepare_text`, which the service has already applied to stored masked text). Queries are the
hand-written test petitions and fresh synthetic ones, each looked up as intake does (`scores`, then the top 5) and then
added (`add`), so the tail, segment freezes and merges are part of what is timed. Two baselines,
measured in the same run: the same lookup against the first 10,000 petitions, and at full size the
former dense accumulator (`sparse_sums=False`: one pass over every document per lookup), timed
alternately with the current sparse sums on the same index, so machine load hits both alike.

    .venv/bin/python benchmarks/similar.py [--rows 1000000] [--queries 500]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.synthetic_petitions import synthetic_petitions  # noqa: E402
from model.similarity import SimilarityIndex, text_terms  # noqa: E402
from model.text import prepare_text  # noqa: E402

BATCH = 50_000
BASELINE_AT = 10_000
TEST_DATA = ROOT / "tests" / "data" / "similar_petitions.jsonl"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed_lookup(index: SimilarityIndex, text: str) -> float:
    """Milliseconds for one intake lookup (terms, scores, top 5 at the service's threshold)."""
    started = time.perf_counter()
    index.scores(text_terms(text)).top(5, 0.12)
    return (time.perf_counter() - started) * 1000


def lookups(index: SimilarityIndex, texts: list[str], first_key: int) -> tuple[list[float], list[float]]:
    """Per query: the lookup with sparse sums and with the dense accumulator (alternating which goes
    first), then the add; returns both lists of milliseconds."""
    sparse, dense = [], []
    for offset, text in enumerate(texts):
        for use_sparse in (offset % 2 == 0, offset % 2 == 1):
            index.sparse_sums = use_sparse
            (sparse if use_sparse else dense).append(timed_lookup(index, text))
        index.sparse_sums = True
        index.add(first_key + offset, text_terms(text))
    return sparse, dense


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    tests = [prepare_text(json.loads(line)["text"]) for line in TEST_DATA.read_text(encoding="utf-8").splitlines()]
    fresh = [prepare_text(p.text) for p in synthetic_petitions(args.queries, seed=99)]
    queries = (tests * (args.queries // len(tests) + 1))[: args.queries // 2] + fresh[: args.queries // 2]

    index = SimilarityIndex()
    stored = synthetic_petitions(args.rows, topics=args.rows // 2000, topic_size=20)
    started = time.perf_counter()
    baseline: list[float] = []
    keys: list[int] = []
    texts: list[str] = []
    for number, petition in enumerate(stored):
        keys.append(number)
        texts.append(petition.text)  # stored masked text; synthetic rows hold no personal data to mask
        if len(keys) == (BASELINE_AT if not baseline else BATCH) or number == args.rows - 1:
            index.add_many(keys, texts)
            keys, texts = [], []
            if not baseline:
                baseline = lookups(index, queries, 10_000_000)[0]
            print(f"  indexed {len(index):,} ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    build = time.perf_counter() - started
    timings, dense = lookups(index, queries, 20_000_000)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    postings = sum(len(segment.slots) for segment in index._segments)
    print(
        f"similar lookup at {len(index):,} stored (synthetic) petitions: p50 {statistics.median(timings):.2f} ms, "
        f"p95 {percentile(timings, 0.95):.2f} ms over {len(timings)} lookups; baseline at {BASELINE_AT:,}: "
        f"p50 {statistics.median(baseline):.2f} ms ({statistics.median(timings) / statistics.median(baseline):.1f}x)"
    )
    dense_p50, dense_p95 = statistics.median(dense), percentile(dense, 0.95)
    print(
        f"former dense accumulator on the same index, same queries, alternating: p50 {dense_p50:.2f} ms, "
        f"p95 {dense_p95:.2f} ms; sparse sums are {dense_p50 / statistics.median(timings):.1f}x faster at p50, "
        f"{dense_p95 / percentile(timings, 0.95):.1f}x at p95"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (1 min), on {os.cpu_count()} cores")
    print(
        f"build (prepare + index, as on service start) {build:.0f}s; {postings:,} postings in "
        f"{len(index._segments)} segments; peak RSS {peak_mb:,.0f} MB"
    )


if __name__ == "__main__":
    main()

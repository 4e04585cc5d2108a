"""Hot topics and repeats: quality on hand-written test petitions, speed at 100,000 rows.

Quality (tests/data/similar_petitions.jsonl: six topics of 5-7 petitions each, 22 unrelated
petitions, 5 reworded repeats by the same petitioner, 2 petitions by a topic's petitioner about
something else), alone and mixed into the 3,640 corpus petitions as background:
- cluster purity: of the rows in the clusters that hold test topics, the share belonging to the
  cluster's main topic; recall: per topic, the largest share of its petitions in one cluster;
- repeat detection as the service does it (petitions indexed in arrival order; a repeat is the
  most similar earlier petition by the same petitioner at or above the similarity threshold):
  precision and recall against the labelled repeats;
- similar petitions: share of topic petitions whose best earlier match is from the same topic.

Speed: `triage hotspots`' code path (read CSV, prepare, cluster, write members + clusters) on
synthetic rows (benchmarks/synthetic_petitions.py), next to the baseline of only reading and
preparing the same file in the same run.

    .venv/bin/python benchmarks/hotspots.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from batch.hotspots import HotspotsOptions, read_inputs, run_hotspots  # noqa: E402
from benchmarks.synthetic_petitions import synthetic_petitions  # noqa: E402
from model.hotspots import Hotspot, HotspotInput, find_hotspots  # noqa: E402
from model.similarity import SimilarityIndex, text_terms  # noqa: E402
from model.text import prepare_text  # noqa: E402
from training.dataset import CORPUS_PATH  # noqa: E402

TEST_DATA = ROOT / "tests" / "data" / "similar_petitions.jsonl"
SIMILAR_MIN_SCORE = 0.12  # the service default (service/settings.py: similar_min_score)


def load_test_rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in TEST_DATA.read_text(encoding="utf-8").splitlines()]


def purity_recall(rows: list[dict[str, str]], spots: list[Hotspot]) -> tuple[float, float, int]:
    topic = {row["id"]: row["topic"] for row in rows}
    holding = [spot for spot in spots if any(topic.get(key) for key in spot.members)]
    main_total = sum(
        Counter(topic.get(key, "") or "-" for key in spot.members).most_common(1)[0][1] for spot in holding
    )
    purity = main_total / max(1, sum(spot.size for spot in holding))
    recalls = []
    for name in sorted({value for value in topic.values() if value}):
        members = {key for key, value in topic.items() if value == name}
        recalls.append(max((len(members & set(spot.members)) for spot in spots), default=0) / len(members))
    return purity, sum(recalls) / len(recalls), len(holding)


def quality(background: list[str]) -> None:
    rows = load_test_rows()
    items = [
        HotspotInput(row["id"], prepare_text(row["text"]), datetime.fromisoformat(row["received_at"]), row["contact"])
        for row in rows
    ]
    extra = [HotspotInput(f"B{index}", prepare_text(text)) for index, text in enumerate(background)]
    for name, data in (("test petitions alone", items), ("mixed into the corpus", items + extra)):
        spots = find_hotspots(data)
        purity, recall, holding = purity_recall(rows, spots)
        print(
            f"clusters, {name} ({len(data)} rows): {len(spots)} clusters, {holding} hold test topics; "
            f"purity {purity:.3f}, recall {recall:.3f}"
        )
        for spot in spots:
            if any(key.startswith("S") for key in spot.members):
                print(f"  {spot.label:24s} size {spot.size:3d} heat {spot.heat:6.2f}")

    for name, backdrop in (("alone", []), ("after the corpus", background)):
        index = SimilarityIndex()
        index.add_many(list(range(1_000_000, 1_000_000 + len(backdrop))), [prepare_text(t) for t in backdrop])
        ordered = sorted(range(len(rows)), key=lambda i: rows[i]["received_at"])
        found: dict[str, str] = {}
        same_topic = topic_rows = 0
        for position in ordered:
            row = rows[position]
            scores = index.scores(text_terms(prepare_text(row["text"])))
            earlier = [rows[i] for i in ordered[: ordered.index(position)]]
            mine = [
                (scores.of(rows.index(other)), other["id"]) for other in earlier if other["contact"] == row["contact"]
            ]
            best = max(mine, default=(0.0, ""))
            if best[0] >= SIMILAR_MIN_SCORE:
                found[row["id"]] = best[1]
            top = scores.top(1, SIMILAR_MIN_SCORE)
            if row["topic"] and top and top[0].key < len(rows):
                topic_rows += 1
                same_topic += rows[top[0].key]["topic"] == row["topic"]
            index.add(position, text_terms(prepare_text(row["text"])))
        truth = {row["id"]: row["repeat_of"] for row in rows if row["repeat_of"]}
        right = sum(found.get(key) == value for key, value in truth.items())
        print(
            f"repeats, {name}: found {len(found)}, right {right}, labelled {len(truth)}: precision "
            f"{right / max(1, len(found)):.3f}, recall {right / len(truth):.3f}; best earlier match in the same "
            f"topic for {same_topic}/{topic_rows} topic petitions with a match >= {SIMILAR_MIN_SCORE}"
        )


def speed(rows: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "petitions.csv"
        with source.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "text"])
            for petition in synthetic_petitions(rows, topics=rows // 200, topic_size=20):
                writer.writerow([petition.id, petition.text])
        options = HotspotsOptions(id_col="id")
        started = time.perf_counter()
        read_inputs(source, options)
        baseline = time.perf_counter() - started
        summary = run_hotspots(source, Path(folder) / "members.csv", options)
        print(
            f"speed, {rows:,} synthetic rows ({rows // 200} made-up topics of 20): read + prepare only "
            f"{baseline:.1f}s; triage hotspots {summary.seconds:.1f}s ({summary.seconds / baseline:.1f}x the "
            f"baseline), {len(summary.clusters)} clusters holding {summary.clustered_rows} rows"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    background = [json.loads(line)["text"] for line in CORPUS_PATH.read_text(encoding="utf-8").splitlines()]
    quality(background)
    if not args.skip_speed:
        speed(args.rows)


if __name__ == "__main__":
    main()

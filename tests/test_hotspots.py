"""Hot topics on the hand-written test petitions: clusters, labels, heat, and `triage hotspots` files."""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from model.hotspots import ClusterOptions, HotspotInput, find_hotspots, heat
from model.text import prepare_text
from triage.cli import app

DATA = Path(__file__).parent / "data" / "similar_petitions.jsonl"
runner = CliRunner()


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]


def test_each_topic_is_one_pure_cluster_named_after_its_target(rows: list[dict[str, str]]) -> None:
    items = [
        HotspotInput(row["id"], prepare_text(row["text"]), datetime.fromisoformat(row["received_at"]), row["contact"])
        for row in rows
    ]
    spots = find_hotspots(items)
    topic = {row["id"]: row["topic"] for row in rows}
    assert len(spots) == 6
    for spot in spots:
        counts = Counter(topic[key] for key in spot.members)
        assert len(counts) == 1 and "" not in counts, spot  # pure: one topic, no unrelated petition
    found = {topic[spot.members[0]]: spot for spot in spots}
    assert found["ldjs"].size == 7 and "力动健身" in found["ldjs"].label
    assert found["hmjf"].size == 6 and found["hmjf"].label == "惠民金服 兑付"
    assert "星辰教育" in found["xcjy"].label
    assert found["ldjs"].petitioners == 6  # the repeat's petitioner counts once
    assert [spot.rank for spot in spots] == [1, 2, 3, 4, 5, 6]
    assert all(a.heat >= b.heat for a, b in itertools.pairwise(spots))


def test_heat_counts_each_petitioner_once_and_halves_with_age() -> None:
    now = datetime.fromisoformat("2026-10-01T00:00:00+08:00")
    old = datetime.fromisoformat("2026-09-17T00:00:00+08:00")  # 14 days earlier: half weight
    options = ClusterOptions(half_life_days=14)
    assert heat([now, now, old], ["a", "a", "b"], now, options) == (1.5, 2)
    assert heat([None, None], [None, None], None, options) == (2.0, 2)


def test_cli_writes_a_member_row_for_every_input_row_and_ranked_clusters(
    rows: list[dict[str, str]], tmp_path: Path
) -> None:
    source = tmp_path / "petitions.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["编号", "标题", "内容", "时间", "电话"])
        for row in rows:
            writer.writerow([row["id"], "", row["text"], row["received_at"][:19].replace("T", " "), row["contact"]])
        writer.writerow(["EMPTY", "", "", "2026-09-30 10:00:00", ""])
    output = tmp_path / "members.csv"
    result = runner.invoke(
        app,
        [
            "hotspots",
            str(source),
            "-o",
            str(output),
            "--text-col",
            "标题",
            "--text-col",
            "内容",
            "--id-col",
            "编号",
            "--time-col",
            "时间",
            "--petitioner-col",
            "电话",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    with output.open(encoding="utf-8-sig") as handle:
        members = list(csv.DictReader(handle))
    assert [member["id"] for member in members] == [row["id"] for row in rows] + ["EMPTY"]
    clustered = {member["id"]: member["cluster"] for member in members if member["cluster"]}
    assert len(set(clustered.values())) == 6 and "EMPTY" not in clustered
    with (tmp_path / "members.clusters.csv").open(encoding="utf-8-sig") as handle:
        clusters = list(csv.DictReader(handle))
    assert [cluster["cluster"] for cluster in clusters] == [f"H{rank:04d}" for rank in range(1, 7)]
    assert float(clusters[0]["heat"]) >= float(clusters[-1]["heat"])
    first = clusters[0]
    assert sorted(first["members"].split()) == sorted(
        key for key, value in clustered.items() if value == first["cluster"]
    )

    # --since keeps only the last days of the file; .xlsx output has a clusters sheet
    workbook_path = tmp_path / "members.xlsx"
    result = runner.invoke(
        app,
        [
            "hotspots",
            str(source),
            "-o",
            str(workbook_path),
            "--text-col",
            "内容",
            "--id-col",
            "编号",
            "--time-col",
            "时间",
            "--since",
            "10",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    workbook = load_workbook(workbook_path, read_only=True)
    assert workbook.sheetnames == ["members", "clusters"]
    sheet_rows = list(workbook["members"].iter_rows(values_only=True))
    assert len(sheet_rows) == len(rows) + 2  # header + every input row
    recent = {row[0] for row in sheet_rows[1:] if row[1]}
    assert "S001" not in recent  # received 2026-09-01, more than 10 days before the newest row


def test_cli_names_missing_columns(tmp_path: Path) -> None:
    source = tmp_path / "petitions.csv"
    source.write_text("id,content\n1,测试\n", encoding="utf-8")
    result = runner.invoke(app, ["hotspots", str(source), "-o", str(tmp_path / "m.csv"), "-q"])
    assert result.exit_code == 2
    assert "text" in result.output and "content" in result.output

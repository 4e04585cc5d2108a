"""The hand-written corpus: schema, taxonomy consistency, distribution minima, no template expansion."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from statistics import median
from typing import Any

import pytest

from model.taxonomy import load_taxonomy
from training.dataset import CORPUS_PATH
from training.near_duplicates import main as near_duplicates_command
from training.near_duplicates import near_duplicates

FIELDS = {"id", "text", "domain", "department", "litigation", "collective", "channel", "split"}
FOUR_DOMAINS = ("real_estate", "finance", "education", "prepaid")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in CORPUS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_row_has_the_schema_and_known_labels(rows: list[dict]) -> None:
    taxonomy = load_taxonomy()
    assert len({row["id"] for row in rows}) == len(rows)
    for row in rows:
        assert set(row) == FIELDS, row["id"]
        assert row["domain"] in taxonomy.domains, row["id"]
        assert row["department"] in taxonomy.departments, row["id"]
        assert isinstance(row["litigation"], bool) and isinstance(row["collective"], bool)
        assert row["channel"] in {"letter", "visit", "web", "phone"}
        assert row["split"] in {"train", "test"}
        assert 15 <= len(row["text"]) <= 1000, row["id"]


def test_taxonomy_is_consistent_and_every_department_reachable(rows: list[dict]) -> None:
    taxonomy = load_taxonomy()
    owners = {dep for deps in taxonomy.domain_departments.values() for dep in deps}
    assert owners <= set(taxonomy.departments)
    assert set(taxonomy.departments) <= owners | {"finance_regulation", "education"}
    assert {row["department"] for row in rows} == set(taxonomy.departments)
    assert set(taxonomy.domain_departments) == set(taxonomy.domains)


def test_distribution_minima(rows: list[dict]) -> None:
    domains = Counter(row["domain"] for row in rows)
    departments = Counter(row["department"] for row in rows)
    assert len(rows) >= 2400
    for domain in FOUR_DOMAINS:
        assert domains[domain] >= 350, domain
    assert min(departments.values()) >= 60, departments
    assert sum(row["litigation"] for row in rows) >= 80
    assert sum(row["collective"] for row in rows) >= 80
    other_departments = {row["department"] for row in rows if row["domain"] == "other"}
    assert len(other_departments) >= 13, other_departments


def test_lengths_look_like_real_petitions(rows: list[dict]) -> None:
    lengths = [len(row["text"]) for row in rows]
    assert 140 <= median(lengths) <= 250
    assert sum(length <= 50 for length in lengths) >= 100
    assert sum(length >= 400 for length in lengths) >= 100


def test_no_template_expansion(rows: list[dict]) -> None:
    problems = near_duplicates([row["text"] for row in rows])
    described = [f"{rows[p.first]['id']}~{rows[p.second]['id']}: {p.reason}" for p in problems[:10]]
    assert not problems, described


def test_fixed_held_out_split_is_about_a_fifth_per_domain(rows: list[dict]) -> None:
    for domain in ("other", *FOUR_DOMAINS):
        in_domain = [row for row in rows if row["domain"] == domain]
        share = sum(row["split"] == "test" for row in in_domain) / len(in_domain)
        assert 0.17 <= share <= 0.23, (domain, share)


def test_near_duplicate_detector_catches_slot_filling() -> None:
    base = "我在A市B区某某花园买的房子，开发商说好2022年6月交房，到现在还没交，每个月还要还房贷四千多，请领导帮忙"
    assert near_duplicates([base, base.replace("某某花园", "幸福家园")])
    assert not near_duplicates([base, "孩子学校食堂的饭菜太差了，好几个孩子吃完拉肚子，希望教育局去查一查"])


def test_near_duplicate_command_names_the_rows_and_refuses_bad_files(tmp_path: Path, capsys: Any) -> None:
    base = "我在某某花园买的房子，开发商延期交房已经八个月了，合同约定的违约金一分钱没给，请住建局督促开发商履行合同。"
    rows = tmp_path / "rows.jsonl"
    texts = (base, base.replace("某某花园", "幸福家园"))
    rows.write_text("\n".join(json.dumps({"text": text}, ensure_ascii=False) for text in texts), encoding="utf-8")
    assert near_duplicates_command([str(rows)]) == 1
    assert f"{rows}:1 ~ {rows}:2" in capsys.readouterr().out
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"title": "no text"}\n', encoding="utf-8")
    for argv in ([str(broken)], [str(tmp_path / "missing.jsonl")]):
        with pytest.raises(SystemExit) as exited:
            near_duplicates_command(argv)
        assert exited.value.code == 2
    assert "broken.jsonl:1" in capsys.readouterr().err

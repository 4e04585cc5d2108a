"""Litigation (涉法涉诉) and collective (集体访) flags: trained with every model version, measured on the
corpus's held-out split, saved through the project's persistence, refused when tampered with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.flags import FLAGS_FILE, Flag, FlagModel
from model.persistence import MANIFEST_FILE, ModelLoadError, load_flags, read_manifest
from training.dataset import load_corpus, load_labelled
from training.train import TrainResult

# Bars for the held-out split (1,302 rows; measured 0.972 / 0.972 and 0.756 / 0.852).
# Collective is harder: "我们" petitions of two or three people are not 集体访 in the corpus.
HELD_OUT_BARS = {"litigation": (0.90, 0.90), "collective": (0.65, 0.80)}

LITIGATION_TEXT = (
    "本人与某建筑公司劳务合同纠纷一案，区人民法院二〇二二年判决该公司支付我工钱六万元，判决早已生效，"
    "我申请强制执行一年多仍未执行到位，请求督促法院依法执行。"
)
COLLECTIVE_TEXT = (
    "我们是某某花园小区三期的全体业主，共一百四十多户，联名反映：开发商合同约定去年六月交房，至今已逾期一年"
    "仍未交付，多次找开发商无果，请求住建部门督促开发商尽快交房。"
)
PLAIN_TEXT = "我家楼下的路灯坏了两个多月，晚上出行很不方便，请城管部门尽快派人维修。"


def test_held_out_precision_and_recall_are_recorded_in_the_manifest_above_the_bars(trained: TrainResult) -> None:
    entry, corpus = trained.manifest.flags, load_corpus()
    assert entry["source"] == "data" and entry["test_rows"] == len(corpus.subset("test"))
    assert entry["train_rows"] == len(corpus.subset("train"))
    assert entry["shipped_model_rows"] == len(corpus)  # refitted on every row after the report
    for name, (precision, recall) in HELD_OUT_BARS.items():
        figures = entry["test"][name]
        assert figures["precision"] >= precision, (name, figures)
        assert figures["recall"] >= recall, (name, figures)
        assert 0.05 <= figures["threshold"] <= 0.95
    card = (trained.folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "涉法涉诉 litigation: held-out precision" in card


def test_the_saved_flag_model_flags_what_it_should(trained: TrainResult) -> None:
    flags = load_flags(trained.folder, trained.manifest)
    assert flags is not None and set(flags.names) == {"litigation", "collective"}
    litigation, collective, plain = flags.predict([LITIGATION_TEXT, COLLECTIVE_TEXT, PLAIN_TEXT])
    assert litigation["litigation"].flagged and not litigation["collective"].flagged
    assert collective["collective"].flagged and not collective["litigation"].flagged
    assert not any(score.flagged for score in plain.values())
    assert 0.0 <= plain["litigation"].probability < litigation["litigation"].probability <= 1.0
    # the direct prediction path gives scikit-learn's numbers (white space runs, case, empty text)
    texts = [LITIGATION_TEXT, COLLECTIVE_TEXT, PLAIN_TEXT, "", "  ", "A  市\n\n法院 ABC", *load_corpus().texts[:200]]
    direct, reference = flags.probabilities(texts), flags.reference_probabilities(texts)
    for name in flags.names:
        np.testing.assert_allclose(direct[name], reference[name], rtol=0, atol=1e-12)


def test_a_tampered_or_missing_flag_file_is_refused_and_a_version_without_flags_has_none(
    trained: TrainResult, tmp_path: Path
) -> None:
    copy = tmp_path / "version"
    shutil.copytree(trained.folder, copy)
    with (copy / FLAGS_FILE).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelLoadError, match="sha256"):
        load_flags(copy, read_manifest(copy))
    (copy / FLAGS_FILE).unlink()
    with pytest.raises(ModelLoadError, match="no flag model"):
        load_flags(copy, read_manifest(copy))
    # a manifest from before the flags (no "flags" key) loads, with no flag model
    fields = json.loads((copy / MANIFEST_FILE).read_text(encoding="utf-8"))
    del fields["flags"]
    (copy / MANIFEST_FILE).write_text(json.dumps(fields), encoding="utf-8")
    assert load_flags(copy, read_manifest(copy)) is None


def test_flag_columns_are_read_from_labelled_files_and_absent_columns_mean_no_flags(tmp_path: Path) -> None:
    with_flags = tmp_path / "office.csv"
    with_flags.write_text("text,domain,litigation,collective\n甲,other,是,0\n乙,other,false,TRUE\n", encoding="utf-8")
    data = load_labelled([with_flags])
    assert data.flags == {"litigation": [True, False], "collective": [False, True]}
    assert data.select([1]).flags == {"litigation": [False], "collective": [True]}
    without = tmp_path / "plain.csv"
    without.write_text("text,domain\n甲,other\n", encoding="utf-8")
    assert load_labelled([without]).flags is None


def test_a_given_threshold_skips_the_out_of_fold_choice_and_ids_have_chinese_labels() -> None:
    texts = [f"法院判决执行{i}" for i in range(8)] + [f"路灯维修{i}" for i in range(8)]
    labels = {"litigation": [True] * 8 + [False] * 8, "collective": [False] * 16}  # collective: too few
    model = FlagModel.fit(texts, labels, thresholds={"litigation": 0.7})
    assert model.thresholds == {"litigation": 0.7}
    assert np.all(model.probabilities(texts[:8])["litigation"] > model.probabilities(texts[8:])["litigation"].max())
    assert [flag.label for flag in Flag] == ["涉法涉诉", "集体访"]
    assert Flag.LITIGATION.hint is not None and "诉访分离" in Flag.LITIGATION.hint and Flag.COLLECTIVE.hint is None

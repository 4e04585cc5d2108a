"""Safe persistence: fixed allow-list, hash check, refusal of tampered or unexpected files."""

from __future__ import annotations

import shutil
from collections import OrderedDict
from pathlib import Path

import pytest
import skops.io as sio

from model.persistence import (
    MODEL_FILE,
    TRUSTED_TYPES,
    ModelLoadError,
    file_sha256,
    load_model,
    read_manifest,
    write_manifest,
)
from training.train import TrainResult


def test_saved_model_needs_exactly_the_fixed_trusted_types(trained: TrainResult) -> None:
    untrusted = set(sio.get_untrusted_types(file=trained.folder / MODEL_FILE))
    assert untrusted <= set(TRUSTED_TYPES)
    assert "model.classifier.TriageModel" in untrusted
    assert not any(name.startswith("builtins.eval") for name in TRUSTED_TYPES)


def test_manifest_records_hash_data_labels_and_versions(trained: TrainResult) -> None:
    manifest = read_manifest(trained.folder)
    assert manifest.model_sha256 == file_sha256(trained.folder / MODEL_FILE)
    assert len(manifest.training_data["sha256"]) == 64
    assert manifest.labels["domain"] == ["education", "finance", "other", "prepaid", "real_estate"]
    assert len(manifest.labels["department"]) == 15
    assert {"scikit-learn", "jieba", "skops"} <= set(manifest.library_versions)


def test_tampered_model_file_is_refused(trained: TrainResult, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(trained.folder, copy)
    with (copy / MODEL_FILE).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelLoadError, match="sha256"):
        load_model(copy)


def test_file_with_untrusted_types_is_refused_even_with_matching_hash(trained: TrainResult, tmp_path: Path) -> None:
    folder = tmp_path / "evil"
    folder.mkdir()
    sio.dump({"payload": OrderedDict(a=1), "x": Path("/etc")}, folder / MODEL_FILE)
    manifest = read_manifest(trained.folder)
    manifest.model_sha256 = file_sha256(folder / MODEL_FILE)
    write_manifest(manifest, folder)
    with pytest.raises(ModelLoadError, match="untrusted types"):
        load_model(folder)


def test_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="manifest"):
        load_model(tmp_path)

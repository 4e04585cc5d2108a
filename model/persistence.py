"""Safe persistence: skops files plus a JSON manifest whose hash must match before loading.

A model file is code-adjacent data: loading untrusted pickles runs arbitrary code.
skops refuses any type outside an explicit allow-list, and the manifest's sha256
catches a swapped or corrupted file before skops even opens it.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException

from model.classifier import TriageModel
from model.flags import FLAGS_FILE, FlagModel
from model.tokenize import Segmenter, SegmenterError, check_segmenter

MODEL_FILE = "model.skops"
MANIFEST_FILE = "manifest.json"

# Project types that a model file may contain, beyond skops' own scikit-learn allow-list.
TRUSTED_TYPES: tuple[str, ...] = (
    "model.classifier.TriageModel",
    "model.features.LeadText",
    "model.features.PetitionTokenizer",
    "model.features.join_tokens",
    "model.features.split_tokens",
    "model.heads.PlattLinearHead",
)


class ModelLoadError(RuntimeError):
    """The model file is missing, tampered with, or does not match its manifest."""


@dataclass
class Manifest:
    version: str
    created_at: str
    model_sha256: str
    training_data: dict[str, Any]
    labels: dict[str, list[str]]
    thresholds: dict[str, float]
    metrics: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=dict)
    # The word segmenter the model was trained with; manifests from before the setting mean jieba.
    segmenter: str = Segmenter.JIEBA.value
    # The flag model saved with this version (`flags.npz`): its sha256, training rows and held-out
    # precision/recall per flag. Empty for versions without flags (older ones, data without flag columns).
    flags: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        fields = json.loads(text)
        if not isinstance(fields, dict):
            raise TypeError("a manifest is a JSON object")
        return cls(**fields)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(model: TriageModel, folder: Path) -> str:
    """Write the model file into `folder` and return its sha256 (for the manifest)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODEL_FILE
    sio.dump(model, path, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    return file_sha256(path)


def save_flags(flags: FlagModel, folder: Path) -> str:
    """Write the flag model next to the model file and return its sha256 (for the manifest)."""
    folder.mkdir(parents=True, exist_ok=True)
    return file_sha256(flags.save(folder))


def verify_flags(folder: Path, manifest: Manifest) -> bool:
    """Whether the version has a flag model; raises when its file is missing or does not match the manifest."""
    expected = manifest.flags.get("sha256")
    if not expected:
        return False
    path = folder / FLAGS_FILE
    if not path.is_file():
        raise ModelLoadError(f"no flag model at {path}, though the manifest records one")
    actual = file_sha256(path)
    if actual != expected:
        raise ModelLoadError(
            f"flag model {path} has sha256 {actual[:12]}…, manifest expects {str(expected)[:12]}…; "
            "refusing to load a modified or mismatched file"
        )
    return True


def load_flags(folder: Path, manifest: Manifest) -> FlagModel | None:
    """The version's flag model, or None when the manifest records none; refuses a file whose
    hash does not match the manifest (the file holds plain arrays, loaded without pickle)."""
    if not verify_flags(folder, manifest):
        return None
    path = folder / FLAGS_FILE
    try:
        return FlagModel.load(folder)
    except (KeyError, ValueError, OSError) as error:
        raise ModelLoadError(f"flag model {path} cannot be read: {error}") from error


def write_manifest(manifest: Manifest, folder: Path) -> None:
    (folder / MANIFEST_FILE).write_text(manifest.to_json() + "\n", encoding="utf-8")


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ModelLoadError(f"no manifest at {path}")
    try:
        manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as error:
        raise ModelLoadError(f"模型清单无法读取 / unreadable manifest {path}: {error}") from error
    if not isinstance(manifest.model_sha256, str) or not isinstance(manifest.version, str):
        raise ModelLoadError(f"模型清单字段类型错误 / malformed manifest {path}: version and model_sha256 must be text")
    return manifest


def verify_model(folder: Path) -> Manifest:
    """Check that the model file exists and matches its manifest's sha256, without loading it."""
    manifest = read_manifest(folder)
    path = folder / MODEL_FILE
    if not path.is_file():
        raise ModelLoadError(f"no model file at {path}")
    actual = file_sha256(path)
    if actual != manifest.model_sha256:
        raise ModelLoadError(
            f"model file {path} has sha256 {actual[:12]}…, manifest expects {manifest.model_sha256[:12]}…; "
            "refusing to load a modified or mismatched model"
        )
    return manifest


def load_model(folder: Path, segmenter: str | None = None) -> tuple[TriageModel, Manifest]:
    """Load a model folder, refusing a file whose hash or types do not match what is trusted.

    With `segmenter`, also refuse a model trained with another segmenter (checked on the manifest
    first, so the refusal is quick).
    """
    manifest = verify_model(folder)
    require_segmenter(manifest, segmenter)
    path = folder / MODEL_FILE
    try:
        model = sio.load(path, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as error:
        raise ModelLoadError(f"model file {path} contains untrusted types: {error}") from error
    if not isinstance(model, TriageModel):
        raise ModelLoadError(f"{path} does not hold a TriageModel")
    if model.trained_segmenter != manifest.segmenter:
        raise ModelLoadError(
            f"model file {path} was trained with {model.trained_segmenter}, its manifest says {manifest.segmenter}"
        )
    return model, manifest


def require_segmenter(manifest: Manifest, requested: str | None) -> None:
    """Refuse (as a load error) a model whose manifest names another segmenter than `requested`."""
    try:
        check_segmenter(manifest.segmenter, requested)
    except SegmenterError as error:
        raise ModelLoadError(str(error)) from error

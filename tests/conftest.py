"""Shared fixtures. One real model is trained per test session on the corpus training split."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.registry import Registry
from training.dataset import load_corpus
from training.train import TrainResult, train_and_register

# Fewer folds than the default keeps the session fast; the pipeline is otherwise the shipped one.
FAST_PARAMS = {"calibration_folds": 3}


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """A registry holding one model trained on the corpus (train split), promoted to current."""
    root = tmp_path_factory.mktemp("registry")
    return train_and_register(load_corpus(), Registry(root), FAST_PARAMS)


@pytest.fixture(scope="session")
def registry_root(trained: TrainResult) -> Path:
    return trained.folder.parent

"""Shared fixtures. One real model is trained per test session on the corpus training split."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from model.registry import Registry
from store.engine import Backend
from tests.postgres import PostgresCluster, missing_reason
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


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Server subprocesses a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


# -- databases: every store and key API test runs on SQLite and on a real PostgreSQL server ------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One throw-away PostgreSQL server for the session (initdb + pg_ctl in a temp folder, loopback only).

    Skips when the server binaries are absent, unless TRIAGE_TEST_REQUIRE_POSTGRES is set (CI sets it,
    so that a missing install fails the run instead of skipping the PostgreSQL half of the suite)."""
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("TRIAGE_TEST_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = PostgresCluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def postgres_url(postgres: PostgresCluster) -> str:
    """A fresh, empty database (schema) on the session's server."""
    return postgres.create_schema()


@pytest.fixture(params=[Backend.SQLITE, Backend.POSTGRESQL], ids=str)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend: a new SQLite file, or a new database on the PostgreSQL server."""
    if request.param is Backend.SQLITE:
        return f"sqlite:///{tmp_path / 'queue.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url

"""`triage db backup` / `triage db restore` round trips on SQLite (online backup API, while the store is
open and its rows are still only in the WAL) and on PostgreSQL (pg_dump / pg_restore)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from store import PetitionNotFound, QueueStore
from store.engine import Backend
from tests.postgres import PostgresCluster
from tests.test_queue import submission
from triage.cli import app

runner = CliRunner()


@pytest.fixture(params=[Backend.SQLITE, Backend.POSTGRESQL], ids=str)
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of its own (a backup of PostgreSQL covers the whole database, not one test's schema)."""
    if request.param is Backend.SQLITE:
        return f"sqlite:///{tmp_path / 'live.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database("backup")


def test_backup_then_restore_brings_back_exactly_the_backed_up_petitions(own_database: str, tmp_path: Path) -> None:
    store = QueueStore(own_database)
    kept = {store.submit(submission(f"备份前第{i}件", external_id=f"B-{i}")).petition_id for i in range(3)}
    target = tmp_path / "backups" / "triage.backup"
    made = runner.invoke(app, ["db", "backup", str(target), "--database-url", own_database])
    assert made.exit_code == 0, made.output
    if own_database.startswith("sqlite"):  # why the backup API: a plain copy misses what is in the WAL
        copy = tmp_path / "copied.db"
        shutil.copy(own_database.removeprefix("sqlite:///"), copy)
        with sqlite3.connect(copy) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "petitions" not in tables
    late = store.submit(submission("备份后才登记", external_id="B-late")).petition_id
    store.dispose()

    again = runner.invoke(app, ["db", "backup", str(target), "--database-url", own_database])
    assert again.exit_code != 0 and "exists" in again.output  # never overwrites a backup
    restored = runner.invoke(app, ["db", "restore", str(target), "--database-url", own_database, "--yes"])
    assert restored.exit_code == 0, restored.output

    store = QueueStore(own_database)
    try:
        assert {store.get(petition_id).id for petition_id in kept} == kept
        assert store.get(min(kept)).history  # the history came back too
        with pytest.raises(PetitionNotFound):
            store.get(late)
        assert store.submit(submission("恢复后新件")).created  # the restored database takes new work
    finally:
        store.dispose()


def test_restore_of_a_missing_file_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["db", "restore", str(tmp_path / "none.backup"), "--database-url", f"sqlite:///{tmp_path / 'x.db'}", "--yes"],
    )
    assert result.exit_code == 2 and "no backup file" in result.output

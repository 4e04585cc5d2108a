"""Backups of the queue database, and restoring one.

SQLite: the online backup API copies a consistent snapshot while the service runs (copying the file
itself misses what is still in the `-wal` file, and can give an empty or torn copy). Restore writes the
backup into the configured database through the same API; stop the service first.

PostgreSQL: `pg_dump --format=custom` and `pg_restore --clean --if-exists --single-transaction` (the
client tools of Debian's `postgresql-client`). The password goes in PGPASSWORD, never on a command line.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from store.engine import Backend, backend_of, libpq_url, sqlalchemy_url


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message says why (Chinese and English)."""


def backup(database_url: str, target: Path) -> Path:
    """Write a consistent copy of the database to `target` (a new file)."""
    url = sqlalchemy_url(database_url)
    if target.exists():
        raise BackupError(f"目标文件已存在 / {target} exists; choose a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    if backend_of(url) is Backend.SQLITE:
        source = _sqlite_path(url.database)
        _sqlite_copy(source, target)
    else:
        connection, password = libpq_url(url)
        _run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={target}", connection], password)
    return target


def restore(database_url: str, source: Path) -> None:
    """Replace the database's contents with the backup in `source`."""
    url = sqlalchemy_url(database_url)
    if not source.is_file():
        raise BackupError(f"备份文件不存在 / no backup file at {source}")
    if backend_of(url) is Backend.SQLITE:
        if url.database in (None, "", ":memory:"):
            raise BackupError("需要数据库文件路径 / the SQLite URL needs a file path")
        target = Path(url.database)
        target.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_copy(source, target)
    else:
        connection, password = libpq_url(url)
        _run(
            [
                _tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                f"--dbname={connection}",
                str(source),
            ],
            password,
        )


def _sqlite_path(database: str | None) -> Path:
    if database in (None, "", ":memory:"):
        raise BackupError("需要数据库文件路径 / the SQLite URL needs a file path")
    path = Path(database)
    if not path.is_file():
        raise BackupError(f"数据库文件不存在 / no database file at {path}")
    return path


def _sqlite_copy(source: Path, target: Path) -> None:
    """Page by page through sqlite3's backup API; readers and writers of `source` may carry on."""
    reader, writer = sqlite3.connect(source), sqlite3.connect(target)
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"找不到 {name}，请安装 postgresql-client / {name} not found: install postgresql-client")
    return found


def _run(command: list[str], password: str | None) -> None:
    env = {**os.environ, **({"PGPASSWORD": password} if password else {})}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} 失败 / failed: {done.stderr.strip()[-2000:]}")

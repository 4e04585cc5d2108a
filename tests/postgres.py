"""A throw-away PostgreSQL server for tests and benchmarks: `initdb` + `pg_ctl` on a temporary folder,
listening on a free loopback port only, trust authentication, gone when stopped.

Debian's `postgresql` package puts the server binaries in /usr/lib/postgresql/<major>/bin (not on PATH).
initdb refuses to run as root, so as root (CI) the cluster runs as the unprivileged `postgres` user (or
`nobody` where that does not exist) through `runuser`, in a folder that user owns.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import free_port

SUPERUSER = "triage"
# Surviving a power cut is not under test, so the server skips fsync; a commit still reaches the OS before
# it returns (synchronous_commit stays on), so an immediate stop (`pause`) loses nothing committed.
# Connections: 2 replicas x pools, plus the test's own.
SERVER_OPTIONS = "-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=300"


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (with initdb and pg_ctl), if any."""

    def major(folder: Path) -> int:
        found = re.search(r"/(\d+)/bin$", str(folder))
        return int(found.group(1)) if found else 0

    folders = sorted((Path(p) for p in Path("/usr/lib/postgresql").glob("*/bin")), key=major, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        folders.append(Path(on_path).resolve().parent)
    return next((f for f in folders if (f / "initdb").is_file() and (f / "pg_ctl").is_file()), None)


def missing_reason() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can."""
    if server_binaries() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's `postgresql` package"
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed; pip install -e '.[postgres]'"
    return None


def _run_as() -> tuple[list[str], str | None]:
    """The command prefix that drops root, and the user it runs as (None: we are not root)."""
    if os.geteuid() != 0:
        return [], None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"], user
    raise RuntimeError("running as root and neither a `postgres` nor a `nobody` user exists for initdb")


@dataclass
class PostgresCluster:
    bin_dir: Path
    root: Path
    port: int
    _prefix: list[str] = field(default_factory=list)
    _counter: int = 0
    _tests_url: str | None = None
    running: bool = False

    @classmethod
    def start(cls) -> PostgresCluster:
        bin_dir = server_binaries()
        if bin_dir is None:
            raise RuntimeError(missing_reason() or "no PostgreSQL")
        prefix, user = _run_as()
        root = Path(tempfile.mkdtemp(prefix="triage-pg-"))
        if user is not None:
            shutil.chown(root, user)
        cluster = cls(bin_dir, root, free_port(), prefix)
        subprocess.run(
            [
                *prefix,
                str(bin_dir / "initdb"),
                "-D",
                str(cluster.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        atexit.register(cluster.remove)
        cluster.resume()
        return cluster

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self._prefix, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args], check=True, capture_output=True
        )

    def resume(self) -> None:
        """Start (or start again after `pause`) the server on the same port and data."""
        options = f"-p {self.port} -k {self.data} {SERVER_OPTIONS}"
        self._pg_ctl("-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
        self.running = True

    def pause(self) -> None:
        """Stop the server at once (connections drop, as when the database host fails); data is kept."""
        if self.running:
            self._pg_ctl("-m", "immediate", "-w", "stop")
            self.running = False

    def create_database(self, prefix: str = "db") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = self._new_name(prefix)
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return self.url(name)

    def create_schema(self) -> str:
        """A new empty schema in the shared `tests` database, as a URL whose connections use it by default.

        Creating a schema takes milliseconds where CREATE DATABASE takes about a second, and the store
        sees an empty database either way (tables, migrations and reflection follow `search_path`)."""
        import psycopg

        if self._tests_url is None:
            self._tests_url = self.create_database("tests")
        name = self._new_name("s")
        with psycopg.connect(self._tests_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self._tests_url}?options=-csearch_path%3D{name}"

    def _new_name(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{os.getpid()}_{self._counter}"

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.pause()
        shutil.rmtree(self.root, ignore_errors=True)

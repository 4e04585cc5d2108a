"""Local model registry: one folder per version, a CURRENT pointer, earlier versions kept for rollback."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from model.persistence import MANIFEST_FILE, Manifest, read_manifest

CURRENT_FILE = "CURRENT"
# A version is one folder name inside the registry: no separators, no "..", nothing hidden.
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RegistryError(RuntimeError):
    """A version is missing or the registry is empty."""


@dataclass(frozen=True)
class Registry:
    root: Path

    def new_version(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        version, suffix = stamp, 1
        while (self.root / version).exists():
            suffix += 1
            version = f"{stamp}-{suffix}"
        return version

    def folder(self, version: str) -> Path:
        """The folder of `version`, which must be a plain folder name inside the registry."""
        path = self.root / version
        if not VERSION_NAME.fullmatch(version) or ".." in version or path.resolve().parent != self.root.resolve():
            raise RegistryError(f"无效的模型版本名 / invalid model version name: {version!r}")
        if not (path / MANIFEST_FILE).is_file():
            raise RegistryError(f"模型版本不存在 / no such model version: {version} in {self.root}")
        return path

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / MANIFEST_FILE).is_file())

    def manifests(self) -> list[Manifest]:
        return [read_manifest(self.root / version) for version in self.versions()]

    def current(self) -> str | None:
        pointer = self.root / CURRENT_FILE
        if not pointer.is_file():
            return None
        version = pointer.read_text(encoding="utf-8").strip()
        return version or None

    def current_folder(self) -> Path:
        version = self.current()
        if version is None:
            raise RegistryError(f"没有当前模型 / no current model in {self.root}; run `triage train` first")
        return self.folder(version)

    def resolve(self, version: str | None) -> Path:
        """The folder of `version`, or of the current model when no version is given."""
        return self.folder(version) if version else self.current_folder()

    def promote(self, version: str) -> None:
        """Atomically point CURRENT at `version` (rename is atomic on POSIX)."""
        self.folder(version)
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.root / f".{CURRENT_FILE}.{os.getpid()}"
        temporary.write_text(version + "\n", encoding="utf-8")
        temporary.replace(self.root / CURRENT_FILE)

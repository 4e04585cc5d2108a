"""Where the CLI and the service find things; environment variables override (prefix TRIAGE_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[1]


class PathSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore")

    registry: Path = ROOT / "models"
    database_url: str = f"sqlite:///{ROOT / 'var' / 'triage.db'}"

"""Configuration: environment variables (prefix TRIAGE_) and an optional `.env` file.

One `Settings` for the service and the `triage` command line, so both agree on where the model
registry and the database live. Production sets TRIAGE_API_KEYS; without it the service runs
with three well-known development keys and says so loudly at startup.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from model.tokenize import DEFAULT_SEGMENTER, Segmenter
from store import Deadlines, PoolOptions, Role

# Defaults for a checkout (what `make run` uses): models/ and var/ beside the code. An installed
# service sets TRIAGE_REGISTRY and TRIAGE_DATABASE_URL.
CHECKOUT = Path(__file__).resolve().parents[1]


class ApiKeyConfig(BaseModel):
    """What one API key may do. The key itself is the mapping key in `api_keys`, never stored here."""

    role: Role = Field(description="clerk | department | admin")
    name: str = Field(min_length=1, description="logged instead of the key / 日志中代替密钥的名称")
    department: str | None = None

    @model_validator(mode="after")
    def _department_matches_role(self) -> ApiKeyConfig:
        if self.role == Role.SYSTEM:
            raise ValueError("an API key cannot have the system role")
        if self.role == Role.DEPARTMENT and not self.department:
            raise ValueError("a department key needs a department id")
        if self.role != Role.DEPARTMENT and self.department:
            raise ValueError("only department keys carry a department")
        return self


DEV_API_KEYS: dict[str, ApiKeyConfig] = {
    "dev-clerk": ApiKeyConfig(role=Role.CLERK, name="dev-clerk"),
    "dev-admin": ApiKeyConfig(role=Role.ADMIN, name="dev-admin"),
    "dev-dept-housing": ApiKeyConfig(role=Role.DEPARTMENT, name="dev-dept-housing", department="housing"),
}

DEV_PETITIONER_SECRET = "dev-petitioner-secret"


class Settings(BaseSettings):
    """Everything the service and the CLI read from the environment. Defaults make `make run` work."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore")

    registry: Path = CHECKOUT / "models"
    # sqlite:///absolute/path.db (one machine) or postgresql://user:password@host:5432/dbname (several
    # replicas; needs the `postgres` extra). See docs/operations.md.
    database_url: str = f"sqlite:///{CHECKOUT / 'var' / 'triage.db'}"
    # Connections per process: kept open, extra allowed in bursts, seconds a request waits for one (then
    # 503), seconds to reach the server. Replicas x workers x (size + overflow) < PostgreSQL max_connections.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_connect_timeout: int = Field(default=5, ge=1)
    # Every replica checks the registry's CURRENT pointer this often (seconds) and reloads, verified, when
    # `triage promote` changed it; 0 turns this off (POST /v1/model/reload only).
    model_poll_seconds: float = Field(default=10.0, ge=0)

    # TRIAGE_API_KEYS='{"<secret>": {"role": "clerk", "name": "intake-1"}, ...}'
    api_keys: dict[str, ApiKeyConfig] | None = None
    # Per-head routing threshold overrides (TRIAGE_THRESHOLDS='{"domain": 0.7}'); default: the model's.
    thresholds: dict[str, float] = Field(default_factory=dict)
    max_text_chars: int = 20_000
    max_body_bytes: int = 16 * 1024 * 1024  # a full 1,000-item batch of typical petitions fits easily
    max_batch_items: int = 1_000
    # Characters in one batch request, all items together: bounds the work one request can ask for.
    max_batch_chars: int = 1_000_000
    # The two clocks of the 信访工作条例, in calendar days (weekends and holidays count): hand-over
    # within `due_days` of receipt (转送/交办; stops when the department accepts), handling within
    # `handling_days` of acceptance (办理), one extension of at most `max_extension_days` (延期).
    due_days: int = Field(15, ge=1, le=365)
    handling_days: int = Field(60, ge=1, le=3650)
    max_extension_days: int = Field(30, ge=1, le=3650)
    lease_seconds: int = 300
    max_lease_seconds: int = 3_600
    # FULL: a 201 survives power loss, not only a killed process. NORMAL is faster and still
    # survives a process crash (SIGKILL); choose it only where losing the last commits on power
    # failure is acceptable.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # Concurrent classification requests are grouped into one model call of at most this many texts.
    max_predict_batch: int = 64
    # Fair scheduling: a model call takes at most this many characters from each waiting request, so one
    # large batch cannot hold a short classify for longer than one slice. 0 turns slicing off (the old
    # first-come-first-served whole requests; for comparison only).
    predict_slice_chars: int = Field(4_000, ge=0)
    log_level: str = "INFO"
    # /metrics carries counts only (no text), but queue sizes and traffic are internal: by default it needs
    # an API key of any role. Set TRIAGE_METRICS_PUBLIC=true where only the scraper can reach the port.
    metrics_public: bool = False
    # Similar and repeat petitions: how many to show, and the least cosine (character bigrams, idf
    # weighted) that counts as "about the same matter" (benchmarks/hotspots.py measures it).
    similar_limit: int = 5
    similar_min_score: float = 0.12
    # Key of the HMAC that turns a petitioner's contact into the stored identity (TRIAGE_PETITIONER_SECRET).
    # Without it a well-known development key is used, and the service says so at startup.
    petitioner_secret: SecretStr | None = None
    # Word segmenter (jieba or rjieba): what `triage train` trains new models with, and when set,
    # the only one the service and `triage classify` run; a model trained with the other refuses to load.
    segmenter: Segmenter | None = None

    def training_segmenter(self) -> Segmenter:
        return self.segmenter or DEFAULT_SEGMENTER

    def pool_options(self) -> PoolOptions:
        return PoolOptions(self.db_pool_size, self.db_max_overflow, self.db_pool_timeout, self.db_connect_timeout)

    @property
    def using_dev_keys(self) -> bool:
        return self.api_keys is None

    @property
    def deadlines(self) -> Deadlines:
        return Deadlines(self.due_days, self.handling_days, self.max_extension_days)

    def petitioner_hmac_key(self) -> bytes:
        secret = self.petitioner_secret.get_secret_value() if self.petitioner_secret else DEV_PETITIONER_SECRET
        return secret.encode("utf-8")

    def effective_api_keys(self) -> dict[str, ApiKeyConfig]:
        return dict(DEV_API_KEYS) if self.api_keys is None else dict(self.api_keys)


class ConfigurationError(ValueError):
    """The environment or .env holds a value the service cannot run with (message names the variable)."""


def _variable(field: object) -> str:
    return f"TRIAGE_{str(field).upper()}"


def load_settings() -> Settings:
    """Settings from the environment, or a ConfigurationError naming each bad variable in Chinese and English."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{_variable(problem['loc'][0]) if problem['loc'] else 'TRIAGE_*'}: {problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False)
        )
    except SourceError as error:
        named = re.search(r'field "(\w+)"', str(error))
        problems = f"{_variable(named.group(1)) if named else 'TRIAGE_*'}: 不是有效的 JSON / not valid JSON"
    raise ConfigurationError(f"配置错误 / invalid configuration: {problems}")

"""The one settings object. Every knob is an environment variable (prefix ``FHIR_``) or a ``.env`` entry."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FHIR_", env_file=".env", extra="ignore", env_nested_delimiter="__")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    base_path: str = "/fhir"
    store: str = Field(
        default="sqlite:///./data/fhir.db",
        description="Store URL: sqlite:///path/file.db (embedded default) or mongodb://host:port/db",
    )
    # Public base URL used in Location headers and Bundle links when the server sits behind a proxy.
    public_base_url: str | None = None

    max_body_bytes: int = 10 * 1024 * 1024
    max_json_depth: int = 64
    default_page_size: int = 20
    max_page_size: int = 1000

    canonical_base: str = "http://example.org/fhir/second-opinion"
    profiles_dir: Path = PROJECT_ROOT / "profiles"
    mappings_dir: Path = PROJECT_ROOT / "mappings"

    # Outbox delivery (plan copies, subscription notifications): polling, and retry back-off bounds.
    outbox_enabled: bool = True
    outbox_poll_seconds: float = 1.0
    outbox_base_delay_seconds: float = 1.0
    outbox_max_delay_seconds: float = 300.0
    # A delivery attempt's HTTP timeout, and how long a claimed message stays leased to the instance trying it
    # (another instance takes it over after that: a crashed instance's messages come back).
    outbox_timeout_seconds: float = Field(default=10.0, gt=0)
    outbox_lease_seconds: float = Field(default=60.0, gt=0)
    # Where each plan's copies of delegated decisions go (plan key -> FHIR base URL): plan data ships none.
    # FHIR_PLAN_COPY_ENDPOINT__BLUE_SHIELD_PROMISE_CMC=https://... (underscores stand for the key's hyphens), or
    # FHIR_PLAN_COPY_ENDPOINT='{"blue-shield-promise-cmc": "https://..."}'.
    plan_copy_endpoint: dict[str, str] = Field(default_factory=dict)
    # Attempts before a message is parked as dead (a plan's ``delivery.max_attempts`` overrides it for its copies).
    outbox_max_attempts: int = Field(default=10, ge=1)

    log_level: str = "info"
    log_format: Literal["json", "text"] = "json"
    # Browser origins allowed to call the API, comma-separated ("*" for any); empty: CORS off.
    cors_origins: str = ""
    # Answers at least this large are gzipped for clients that accept it.
    gzip_min_bytes: int = Field(default=1024, ge=0)
    workers: int = 1

    def public_base(self) -> str:
        """The server's own base URL, for absolute URLs made without a request to take it from (outgoing copies,
        notifications, the command line)."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://{self.host}:{self.port}{self.normalized_base_path()}"

    def plan_copy_endpoint_for(self, plan_key: str) -> str | None:
        """The configured endpoint of a plan, its key matched without regard to case or ``_`` versus ``-``."""
        wanted = plan_key.lower().replace("_", "-")
        return next((url for key, url in self.plan_copy_endpoint.items()
                     if key.lower().replace("_", "-") == wanted and url), None)

    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    def normalized_base_path(self) -> str:
        """``/fhir`` form: leading slash, no trailing slash ('' for the root)."""
        path = "/" + self.base_path.strip("/")
        return "" if path == "/" else path


@lru_cache
def get_settings() -> Settings:
    return Settings()

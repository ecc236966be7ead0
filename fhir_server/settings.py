"""The one settings object. Every knob is an environment variable (prefix ``FHIR_``) or a ``.env`` entry."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FHIR_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
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
    max_bundle_entries: int = 1000  # entries of one batch or transaction Bundle (HTTP)
    max_search_terms: int = 200  # search parameters and comma-separated values in one search, in all

    canonical_base: str = "http://example.org/fhir/second-opinion"
    profiles_dir: Path = PROJECT_ROOT / "profiles"
    mappings_dir: Path = PROJECT_ROOT / "mappings"

    # Outbox delivery (plan copies, subscription notifications): polling, and retry back-off bounds.
    outbox_enabled: bool = True
    outbox_poll_seconds: float = 1.0
    outbox_base_delay_seconds: float = 1.0
    outbox_max_delay_seconds: float = 300.0

    # Security (SMART Backend Services). "off" is a development mode without tokens, allowed on a loopback address
    # only and announced at start-up; the test suite switches it off in tests/conftest.py.
    auth: Literal["on", "off"] = "on"
    # The audit trail (AuditEvent per interaction): "auto" follows auth (on with it, off in development mode).
    audit: Literal["auto", "on", "off"] = "auto"
    access_token_seconds: int = 300  # lifetime of the access tokens the token endpoint issues
    assertion_max_seconds: int = 300  # a client assertion's exp may be at most this far ahead
    jwks_cache_seconds: int = 300  # how long a client's fetched jwks_uri is reused
    session_seconds: int = 3600  # lifetime of a person's sign-in token
    # Receivers this server authenticates to as a SMART backend client: FHIR base -> the client id it has there
    # (JSON in FHIR_OUTBOUND_CLIENTS), and the scopes it asks them for.
    outbound_clients: dict[str, str] = Field(default_factory=dict)
    outbound_scopes: str = "system/*.crus"

    # The case managers' and physician reviewers' pages (/ui). Their session cookies are signed with this secret
    # (unset: a random one per process, so a restart signs everyone out; set it when FHIR_WORKERS > 1); an open
    # worklist asks the server for changes this often.
    ui_session_secret: SecretStr | None = None
    ui_poll_seconds: float = 5.0

    log_level: str = "info"
    workers: int = 1

    def public_base(self) -> str:
        """The server's own base URL, for absolute URLs made without a request to take it from (outgoing copies,
        notifications, the command line)."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://{self.host}:{self.port}{self.normalized_base_path()}"

    def audit_enabled(self) -> bool:
        """Whether interactions are written to the audit trail (``audit=auto``: whenever security is on)."""
        return self.auth == "on" if self.audit == "auto" else self.audit == "on"

    def normalized_base_path(self) -> str:
        """``/fhir`` form: leading slash, no trailing slash ('' for the root)."""
        path = "/" + self.base_path.strip("/")
        return "" if path == "/" else path


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""The one settings object. Every knob is an environment variable (prefix ``FHIR_``) or a ``.env`` entry."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from fhir_server.search.query import SearchLimits

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
    # Host names a request's Host header may give absolute URLs (Location, fullUrl, links); any other Host gets
    # the configured base (public_base()), so a forged Host never reaches an answer. FHIR_HOST counts as listed.
    allowed_hosts: list[str] = ["localhost", "127.0.0.1", "[::1]"]

    max_body_bytes: int = 10 * 1024 * 1024
    max_json_depth: int = 64
    # Items of any one JSON array of a body (names, identifiers, Bundle entries...): 413 beyond.
    max_array_items: int = 1000
    default_page_size: int = 20
    max_page_size: int = 1000

    # Search limits (400 beyond each): values in one search, OR values and repeated parameters counted together;
    # _sort keys; characters of one value; _offset.
    max_search_values: int = 100
    max_sort_keys: int = 5
    max_search_value_length: int = 1024
    max_search_offset: int = 1_000_000

    # HTTP connections (serve): seconds a client has to send a request's headers, seconds an idle keep-alive
    # connection stays open, connections and requests in progress before new ones get 503, and the bytes a
    # request's line and headers may take.
    header_timeout_seconds: float = 10.0
    keep_alive_seconds: int = 5
    max_connections: int = 1000
    max_header_bytes: int = 64 * 1024

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

    # Security (SMART Backend Services). "off" is a development mode without tokens, allowed on a loopback address
    # only and announced at start-up; the test suite switches it off in tests/conftest.py.
    auth: Literal["on", "off"] = "on"
    # The audit trail (AuditEvent per interaction): "auto" follows auth (on with it, off in development mode).
    audit: Literal["auto", "on", "off"] = "auto"
    access_token_seconds: int = 300  # lifetime of the access tokens the token endpoint issues
    assertion_max_seconds: int = 300  # a client assertion's exp may be at most this far ahead
    jwks_cache_seconds: int = 300  # how long a client's fetched jwks_uri is reused
    session_seconds: int = 3600  # lifetime of a person's sign-in token
    # A used assertion's jti is kept (to refuse its replay) until this long after the assertion's exp, then dropped,
    # at most replay_purge_batch of them per token request.
    replay_leeway_seconds: int = Field(default=60, ge=0)
    replay_purge_batch: int = Field(default=100, ge=1)
    # Attempts at getting a token in each window of auth_attempts_window_seconds: failed token requests per client
    # id, failed sign-ins (API and pages) per account name, and every attempt of both per remote address; beyond,
    # 429 with Retry-After.
    # Counted in each server process (FHIR_WORKERS processes admit up to that many times as many).
    auth_attempts_window_seconds: int = Field(default=300, ge=1)
    token_attempts_per_client: int = Field(default=20, ge=1)
    sign_in_attempts_per_account: int = Field(default=10, ge=1)
    auth_attempts_per_address: int = Field(default=300, ge=1)
    # Receivers this server authenticates to as a SMART backend client: FHIR base -> the client id it has there
    # (JSON in FHIR_OUTBOUND_CLIENTS), and the scopes it asks them for.
    outbound_clients: dict[str, str] = Field(default_factory=dict)
    outbound_scopes: str = "system/*.crus"

    # The case managers' and physician reviewers' pages (/ui). Their session cookies are signed with this secret
    # (unset: a random one per process, so a restart signs everyone out; set it when FHIR_WORKERS > 1); an open
    # worklist asks the server for changes this often.
    ui_session_secret: SecretStr | None = None
    ui_poll_seconds: float = 5.0

    # People's sign-in to the pages through an external OpenID Connect provider (authorization code flow with PKCE);
    # off while no issuer is set. The issuer's discovery document names the endpoints; the client id and secret are
    # the ones the provider registered for this server, whose redirect URI is ``[root]/ui/sign-in/oidc/callback``
    # (``oidc_redirect_uri`` when the provider knows another, e.g. behind a proxy). A person signs in only when an
    # account is linked to their (issuer, ``oidc_link_claim``) pair: ``accounts link``.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = Field(default=None, validate_default=True)
    oidc_client_secret: SecretStr | None = None  # unset: a public client (PKCE only)
    oidc_provider_name: str = "single sign-on"  # the sign-in page says "Sign in with <this>"
    oidc_scopes: str = "openid profile email"
    oidc_redirect_uri: str | None = None
    # The ID token claim an account is linked by: "sub" (stable, the default), or e.g. "email" (then only a
    # verified address, email_verified true, signs in).
    oidc_link_claim: str = "sub"
    # Signature algorithms an ID token may use: asymmetric ones only ("none" and shared-secret HS* never).
    oidc_algorithms: list[Literal["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
                                  "EdDSA"]] = ["RS256", "ES256", "PS256"]
    oidc_leeway_seconds: int = Field(default=60, ge=0, le=300)  # clock difference allowed for exp, iat, nbf
    oidc_discovery_cache_seconds: int = Field(default=3600, ge=0)  # reuse of the discovery document and JWKS
    oidc_sign_in_seconds: int = Field(default=600, gt=0)  # how long a person has to finish at the provider
    oidc_timeout_seconds: float = Field(default=10.0, gt=0)  # each request to the provider

    log_level: str = "info"
    # Server processes sharing the listening socket (``serve``), and the HTTP stack each runs: ``auto`` takes
    # uvloop and httptools where they are installed (the default install has them), asyncio and h11 otherwise.
    workers: int = Field(default=1, ge=1)
    event_loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    http_implementation: Literal["auto", "h11", "httptools"] = "auto"
    log_format: Literal["json", "text"] = "json"
    # Browser origins allowed to call the API, comma-separated ("*" for any); empty: CORS off.
    cors_origins: str = ""
    # Answers at least this large are gzipped for clients that accept it.
    gzip_min_bytes: int = Field(default=1024, ge=0)

    @field_validator("oidc_client_id")
    @classmethod
    def _client_id_with_issuer(cls, value: str | None, info: ValidationInfo) -> str | None:
        """An issuer without a client id could not sign anyone in: said at start-up, not at the first sign-in."""
        if info.data.get("oidc_issuer") and not value:
            raise ValueError("needed when FHIR_OIDC_ISSUER is set (the client id the provider registered)")
        return value

    def public_base(self) -> str:
        """The server's own base URL, for absolute URLs made without a request to take it from (outgoing copies,
        notifications, the command line)."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://{self.host}:{self.port}{self.normalized_base_path()}"

    def audit_enabled(self) -> bool:
        """Whether interactions are written to the audit trail (``audit=auto``: whenever security is on)."""
        return self.auth == "on" if self.audit == "auto" else self.audit == "on"

    def search_limits(self) -> "SearchLimits":
        """The search limits above, as the query parser takes them."""
        from fhir_server.search.query import SearchLimits

        return SearchLimits(self.max_search_values, self.max_sort_keys, self.max_search_value_length,
                            self.max_search_offset)

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

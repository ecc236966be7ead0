"""``create_app()``: wires settings, store, definitions, validator, services and routers; nothing else.

The store is opened in the lifespan (and closed after it); conformance resources are registered for
validation at build time and published into the store at start-up, after which the CapabilityStatement is
built once. Route order matters: docs, metadata, the domain's operations and ``$validate`` come before the
generic ``/{type}/{id}`` routes so their literal segments win.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI

from fhir_server import __version__
from fhir_server.api import bundles, docs, metadata, operations, rest, second_opinion
from fhir_server.api import case_management, health
from fhir_server.api import pas as pas_api
from fhir_server.api import reports as report_api
from fhir_server.api import security as security_api
from fhir_server.api import subscriptions as subscription_api
from fhir_server.api.errors import install_error_handlers
from fhir_server.api.middleware import install_middleware
from fhir_server.api.registry import CapabilityRegistry
from fhir_server.clock import Clock
from fhir_server.conformance import load_conformance, publish_resources
from fhir_server.fhir.definitions import core_registry
from fhir_server.fhir.terminology import core_terminology
from fhir_server.fhir.validator import Validator
from fhir_server.metrics import Metrics
from fhir_server.outbox import start_worker, stop_worker
from fhir_server.second_opinion import plan_copies
from fhir_server.security.access import load_access_rules
from fhir_server.security.audit import AuditMiddleware, AuditTrail
from fhir_server.security.authorize import authorize
from fhir_server.security.oidc import OidcClient
from fhir_server.security.principal import RequestSecurityMiddleware
from fhir_server.security.outbound import OutboundAuth
from fhir_server.security.tenancy import GuardedStore, StampingStore
from fhir_server.security.tokens import TokenService
from fhir_server.services.resources import ResourceService
from fhir_server.settings import Settings, get_settings
from fhir_server.storage import open_store
from fhir_server.storage.observed import ChangeObservers, ObservedStore
from fhir_server.ui import external_sign_in as ui_external_sign_in
from fhir_server.ui import pages as ui_pages

log = logging.getLogger(__name__)


def check_development_mode(settings: Settings, announce: bool = True) -> None:
    """Development mode (no tokens) only on a loopback address, and never quietly (``announce``: log it)."""
    if settings.auth != "off":
        return
    try:
        loopback = settings.host == "localhost" or ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"FHIR_AUTH=off (development mode, no tokens) is refused on {settings.host}: "
                         "it is allowed on a loopback address only")
    if announce:
        log.warning("SECURITY IS OFF (FHIR_AUTH=off): development mode, every request acts with full access, no audit "
                    "unless FHIR_AUDIT=on. Never expose this server.")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the store, publish the conformance resources, build ``/metadata``; close the store at the end."""
    store = app.state.store
    await store.open()
    try:
        await publish_resources(app.state.conformance_resources, store)
        metadata.publish(app)
        start_worker(app)
        yield
    finally:
        await stop_worker(app)
        await app.state.audit_trail.close()
        await store.close()


def create_app(settings: Settings | None = None, clock: Clock | None = None,
               oidc_transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The application; ``clock`` (default: one following the wall clock) is the one clock of every component;
    ``oidc_transport`` (default: the network) carries the requests to the external sign-in provider."""
    settings = settings or get_settings()
    clock = clock or Clock()
    check_development_mode(settings)
    base_path = settings.normalized_base_path()
    app = FastAPI(
        title="Second-opinion FHIR server",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{base_path}/openapi.json",
        dependencies=[Depends(authorize)],  # the one authorization decision, before every route
    )
    definitions = core_registry().copy()
    terminology = core_terminology().copy()
    app.state.change_observers = ChangeObservers()
    # Stores, innermost first: the backend; tenant stamps on every write of a request (observers' too); the change
    # observers; the tenant guard every caller reads and writes through.
    access_rules = load_access_rules(settings.mappings_dir)
    raw_store = open_store(settings.store, clock)
    store = GuardedStore(
        ObservedStore(StampingStore(raw_store, access_rules), app.state.change_observers), access_rules
    )
    registry = CapabilityRegistry()
    validator = Validator(definitions, terminology)

    app.state.settings = settings
    app.state.clock = clock
    app.state.definitions = definitions
    app.state.terminology = terminology
    app.state.conformance_resources = load_conformance(settings.profiles_dir, definitions, terminology)
    app.state.validator = validator
    app.state.registry = registry
    app.state.store = store
    app.state.tokens = TokenService(raw_store, settings, clock)
    app.state.outbound_auth = OutboundAuth(settings, app.state.tokens.keys, clock)
    app.state.oidc = OidcClient(settings, clock, oidc_transport) if settings.oidc_issuer else None
    app.state.services = ResourceService(store, validator, definitions, settings)
    app.state.metrics = Metrics()

    # No 307 redirects for a trailing slash or an encoded one (a redirect would lose a POST/PUT body): unknown
    # URLs answer 404 with an OperationOutcome.
    app.router.redirect_slashes = False
    install_error_handlers(app)
    install_middleware(app, settings, app.state.metrics)
    app.state.audit_trail = AuditTrail(raw_store)
    app.add_middleware(AuditMiddleware, trail=app.state.audit_trail, now=clock, enabled=settings.audit_enabled())
    app.add_middleware(RequestSecurityMiddleware)  # outermost: the audit record reads what authorization decided
    health.register(app)
    docs.register(app, base_path)
    security_api.register(app, base_path)
    ui_pages.register(app)  # the case managers' and reviewers' pages under /ui
    ui_external_sign_in.register(app)  # their sign-in through an OpenID Connect provider
    metadata.register(app, base_path)
    second_opinion.register(app)
    pas_api.register(app)
    # issue-5 registrations (case management, subscriptions, reports): each module's register(app) goes here,
    # before the generic routes.
    case_management.register(app)
    report_api.register(app)
    plan_copies.register(app)
    subscription_api.register(app)
    operations.register(app)
    bundles.register(app, base_path)
    rest.register(app, base_path)
    return app

"""Command line: ``python -m fhir_server serve | load FILE... | validate FILE [--profile URL] | clients ... | accounts ...``.

``--host``, ``--port``, ``--base-path`` and ``--store`` override the ``FHIR_*`` environment settings. ``load``
goes through the same service layer as HTTP (validation, reference rewriting, change observers), straight into the store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import orjson

from fhir_server.errors import FhirError, error, operation_outcome
from fhir_server.settings import Settings

# Command-line flags that override the setting of the same name.
SETTING_FLAGS = ("host", "port", "base_path", "store", "auth")


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (setting name -> value)."""
    return {name: getattr(args, name) for name in SETTING_FLAGS if getattr(args, name, None)}


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment settings with the flags given on the command line on top."""
    return Settings(**flag_overrides(args))


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def read_json_file(path: str) -> dict[str, Any]:
    """A JSON object from a file; problems become a FhirError so they print as an OperationOutcome."""
    try:
        value = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise FhirError([error("not-found", f"{path}: {exc.strerror}")]) from None
    except orjson.JSONDecodeError as exc:
        raise FhirError([error("structure", f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}")]) from None
    if not isinstance(value, dict) or not value.get("resourceType"):
        raise FhirError([error("structure", f"{path}: not a FHIR resource")])
    return value


# -- commands -------------------------------------------------------------------------------------------------
def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fhir_server.app import create_app

    settings = settings_from(args)
    from fhir_server.app import check_development_mode

    try:
        check_development_mode(settings, announce=False)  # refused before uvicorn starts; the app announces it
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    common = {"host": settings.host, "port": settings.port, "log_level": settings.log_level}
    if settings.workers > 1:
        # Worker processes build their own app from the environment: hand the command-line overrides down.
        for name, value in flag_overrides(args).items():
            os.environ[f"FHIR_{name.upper()}"] = str(value)
        uvicorn.run("fhir_server.app:create_app", factory=True, workers=settings.workers, **common)
    else:
        uvicorn.run(create_app(settings), **common)
    return 0


def validate(args: argparse.Namespace) -> int:
    """Print the OperationOutcome of validating FILE (base rules, hosted profiles, ``--profile``)."""
    from fhir_server.conformance import load_conformance
    from fhir_server.fhir.definitions import core_registry
    from fhir_server.fhir.terminology import core_terminology
    from fhir_server.fhir.validator import Validator
    from fhir_server.services.validation import collect_issues, has_errors

    settings = settings_from(args)
    try:
        resource = read_json_file(args.file)
    except FhirError as exc:
        print_json(operation_outcome(exc.issues))
        return 1
    definitions, terminology = core_registry().copy(), core_terminology().copy()
    load_conformance(settings.profiles_dir, definitions, terminology)
    structure_issues, profile_issues = collect_issues(Validator(definitions, terminology), resource, args.profile)
    issues = structure_issues + profile_issues
    print_json(operation_outcome(issues))
    return 1 if has_errors(issues) else 0


def load(args: argparse.Namespace) -> int:
    """POST each file (a batch/transaction Bundle, another Bundle, or a resource) into the configured store."""
    return asyncio.run(_load(settings_from(args), args.files))


async def _load(settings: Settings, files: Sequence[str]) -> int:
    from fhir_server.app import create_app
    from fhir_server.services.context import RequestContext
    from fhir_server.services.transactions import BundleProcessor, as_transaction

    app = create_app(settings)
    ctx = RequestContext(base_url=settings.public_base(), prefer_return="minimal")
    failures = 0
    async with app.router.lifespan_context(app):
        processor = BundleProcessor(app.state.services)
        for path in files:
            try:
                response = await processor.process(ctx, as_transaction(read_json_file(path)))
            except FhirError as exc:
                failures += 1
                sys.stderr.write(f"{path}: failed ({exc.status})\n")
                print_json(operation_outcome(exc.issues))
                continue
            statuses = [entry.get("response", {}).get("status", "") for entry in response["entry"]]
            failed = [status for status in statuses if not status.startswith("2")]
            failures += bool(failed)
            sys.stdout.write(f"{path}: {len(statuses) - len(failed)} of {len(statuses)} entries stored\n")
    return 1 if failures else 0


def clients(args: argparse.Namespace) -> int:
    """``clients add|list|disable``: prints JSON (``add``: ``{"client_id": ...}`` as its last line)."""
    from fhir_server.security import cli

    try:
        result = asyncio.run(cli.run(args, settings_from(args).store))
    except FhirError as exc:
        print_json(operation_outcome(exc.issues))
        return 1
    cli.print_result(result)
    return 0


def accounts(args: argparse.Namespace) -> int:
    """``accounts add``: prints the account (without its hash)."""
    from fhir_server.security import cli

    try:
        result = asyncio.run(cli.run_accounts(args, settings_from(args).store))
    except FhirError as exc:
        print_json(operation_outcome(exc.issues))
        return 1
    cli.print_result(result)
    return 0


# -- parser ---------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fhir-server", description="FHIR R4 server for second-opinion requests")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", help="interface to listen on (FHIR_HOST)")
    common.add_argument("--port", type=int, help="port to listen on (FHIR_PORT)")
    common.add_argument("--base-path", dest="base_path", help="FHIR base path, e.g. /fhir (FHIR_BASE_PATH)")
    common.add_argument("--store", help="sqlite:///file.db or mongodb://host/db (FHIR_STORE)")
    common.add_argument("--auth", choices=["on", "off"],
                        help="off: development mode without tokens, loopback only (FHIR_AUTH)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", parents=[common], help="run the HTTP server")
    serve_parser.set_defaults(handler=serve)

    load_parser = commands.add_parser("load", parents=[common], help="store bundles or resources from files")
    load_parser.add_argument("files", nargs="+", metavar="FILE")
    load_parser.set_defaults(handler=load)

    validate_parser = commands.add_parser("validate", parents=[common], help="validate a resource file")
    validate_parser.add_argument("file", metavar="FILE")
    validate_parser.add_argument("--profile", action="append", default=[], metavar="URL",
                                 help="also validate against this profile (repeatable)")
    validate_parser.set_defaults(handler=validate)

    from fhir_server.security.cli import add_accounts_parser, add_parser as add_clients_parser

    add_clients_parser(commands, common, clients)
    add_accounts_parser(commands, common, accounts)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())

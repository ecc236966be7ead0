"""Command line: ``python -m fhir_server serve | load FILE... | validate FILE [--profile URL] | outbox list|retry |
clients ... | accounts ...``.

``--host``, ``--port``, ``--base-path`` and ``--store`` override the ``FHIR_*`` environment settings. ``load``
goes through the same service layer as HTTP (validation, reference rewriting, change observers), straight into the store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Any, Sequence

import orjson

from fhir_server.errors import FhirError, operation_outcome
from fhir_server.loading import read_json_file
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
    sys.stdout.flush()


# -- commands -------------------------------------------------------------------------------------------------
def serve(args: argparse.Namespace) -> int:
    from fhir_server.logs import configure_logging
    from fhir_server.serving import serve as run_server
    from fhir_server.startup import check_store

    settings = settings_from(args)
    from fhir_server.app import check_development_mode

    try:
        check_development_mode(settings, announce=False)  # refused before the server starts; the app announces it
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(check_store(settings))
    # Worker processes build their own app from the environment: hand the command-line overrides down.
    for name, value in flag_overrides(args).items():
        os.environ[f"FHIR_{name.upper()}"] = str(value)
    return run_server(settings, "fhir_server.__main__:worker_app")


def worker_app(settings: Settings | None = None) -> Any:
    """The app of a server process (each of several with ``FHIR_WORKERS``, from the environment): it sets up its
    own logging as ``serve`` did, since uvicorn leaves logging alone (``log_config=None``)."""
    from fhir_server.app import create_app
    from fhir_server.logs import configure_logging

    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


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
    """Store resources, Bundles and NDJSON from files and directories (see :mod:`fhir_server.loading`)."""
    return asyncio.run(_load(settings_from(args), args.files, progress=not args.no_progress))


async def _load(settings: Settings, paths: Sequence[str], progress: bool = True) -> int:
    from tqdm import tqdm

    from fhir_server.app import create_app
    from fhir_server.loading import documents, expand, refuse_submit_request
    from fhir_server.services.context import RequestContext
    from fhir_server.services.transactions import BundleProcessor, as_transaction

    app = create_app(settings)
    ctx = RequestContext(base_url=settings.public_base(), prefer_return="minimal")
    failures = 0
    async with app.router.lifespan_context(app):
        processor = BundleProcessor(app.state.services)
        with tqdm(desc="loading", unit=" resources", file=sys.stderr, disable=not progress) as bar:
            for path in expand(list(paths)):
                try:
                    for document in documents(path):
                        content = document.content
                        if content.get("resourceType") != "Bundle":
                            await _store_one(app.state.services, content)
                            bar.update(1)
                            continue
                        refuse_submit_request(content, document.where, settings.public_base())
                        response = await processor.process(ctx, as_transaction(content))
                        with tqdm.external_write_mode(file=sys.stderr):  # lines printed above the bar
                            failures += _report(document, response)
                        bar.update(document.size)
                except FhirError as exc:
                    failures += 1
                    with tqdm.external_write_mode(file=sys.stderr):
                        sys.stderr.write(f"{path}: failed ({exc.status})\n")
                        print_json(operation_outcome(exc.issues))
    return 1 if failures else 0


async def _store_one(services: Any, resource: dict[str, Any]) -> None:
    """One resource, as ``PUT`` under its id (``POST`` without one): its errors name its own elements."""
    resource_id = resource.get("id")
    if resource_id:
        await services.update(resource["resourceType"], resource_id, resource)
    else:
        await services.create(resource)


def entry_outcome(outcome: dict[str, Any], index: int, resource: dict[str, Any]) -> dict[str, Any]:
    """An entry's OperationOutcome with locations in the resource's own terms (``Patient.gender``, not
    ``Bundle.entry[3].resource.gender``): a loaded file's resources are not a Bundle the user wrote."""
    prefix = f"Bundle.entry[{index}]"
    resource_type = resource.get("resourceType")
    if not resource_type:
        return outcome
    issues = []
    for issue in outcome.get("issue", []):
        fixed = dict(issue)
        fixed["expression"] = [e.replace(f"{prefix}.resource", resource_type, 1) for e in issue.get("expression", [])]
        if not fixed["expression"]:
            del fixed["expression"]
        diagnostics = issue.get("diagnostics", "")
        if diagnostics.startswith(prefix) and "): " in diagnostics:
            fixed["diagnostics"] = diagnostics.split("): ", 1)[1]
        issues.append(fixed)
    return {**outcome, "issue": issues}


def _report(document: Any, response: dict[str, Any]) -> int:
    """Print the failed entries (with their NDJSON line) and a summary line; 1 when any entry failed."""
    entries = response.get("entry") or []
    failed = [(index, entry) for index, entry in enumerate(entries)
              if not entry.get("response", {}).get("status", "").startswith("2")]
    sent = document.content.get("entry") or []
    for index, entry in failed:
        where = f"{document.where}:{document.lines[index]}" if document.lines else f"{document.where} entry {index}"
        sys.stderr.write(f"{where}: {entry['response'].get('status')}\n")
        if entry["response"].get("outcome"):
            print_json(entry_outcome(entry["response"]["outcome"], index, sent[index].get("resource") or {}))
    sys.stdout.write(f"{document.where}: {len(entries) - len(failed)} of {len(entries)} entries stored\n")
    sys.stdout.flush()
    return 1 if failed else 0


def outbox(args: argparse.Namespace) -> int:
    """``outbox list`` prints the messages (waiting and dead by default); ``outbox retry [ID...]`` revives dead
    ones (all of them when no id is given) so the workers send them again."""
    return asyncio.run(_outbox(settings_from(args), args))


LISTED_STATES = {"undelivered": {"pending", "dead"}, "all": {"pending", "dead", "delivered"}}


def message_state(message: Any) -> str:
    if message.delivered_at is not None:
        return "delivered"
    return "dead" if message.dead else "pending"


async def _outbox(settings: Settings, args: argparse.Namespace) -> int:
    from fhir_server.clock import Clock
    from fhir_server.storage import open_store

    store = open_store(settings.store, Clock())
    await store.open()
    try:
        if args.action == "retry":
            revived = await store.outbox_retry(args.ids or None, Clock()())
            sys.stdout.write(f"{revived} dead message(s) queued again\n")
            return 0 if revived or not args.ids else 1
        wanted = LISTED_STATES.get(args.state, {args.state})
        shown = 0
        for message in await store.outbox_messages():
            state = message_state(message)
            if state not in wanted:
                continue
            shown += 1
            sys.stdout.write("\t".join([state, message.id, message.channel, message.destination,
                                         f"attempts={message.attempts}", (message.last_error or "")[:120]]) + "\n")
        sys.stderr.write(f"{shown} message(s)\n")
        return 0
    finally:
        await store.close()


def security_command(runner: str, summary: str) -> Callable[[argparse.Namespace], int]:
    """The handler of a security sub-command (``clients``, ``accounts``): runs ``fhir_server.security.cli``'s
    ``runner`` on the configured store and prints its JSON; a refused input prints an OperationOutcome, exit 1."""

    def handler(args: argparse.Namespace) -> int:
        from fhir_server.security import cli

        try:
            result = asyncio.run(getattr(cli, runner)(args, settings_from(args).store))
        except FhirError as exc:
            print_json(operation_outcome(exc.issues))
            return 1
        cli.print_result(result)
        return 0

    handler.__doc__ = summary
    return handler


clients = security_command(
    "run", '``clients add|list|disable``: prints JSON (``add``: ``{"client_id": ...}`` as its last line).'
)
accounts = security_command(
    "run_accounts", "``accounts add|link|unlink``: prints the account (without a password hash)."
)


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
    load_parser.add_argument("files", nargs="+", metavar="FILE|DIR",
                             help="resources, Bundles (.json) and NDJSON (.ndjson) files, or directories of them")
    load_parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    load_parser.set_defaults(handler=load)

    validate_parser = commands.add_parser("validate", parents=[common], help="validate a resource file")
    validate_parser.add_argument("file", metavar="FILE")
    validate_parser.add_argument("--profile", action="append", default=[], metavar="URL",
                                 help="also validate against this profile (repeatable)")
    validate_parser.set_defaults(handler=validate)

    outbox_parser = commands.add_parser("outbox", parents=[common], help="list or retry outgoing messages")
    outbox_actions = outbox_parser.add_subparsers(dest="action", required=True)
    list_parser = outbox_actions.add_parser("list", parents=[common], help="messages not yet delivered")
    list_parser.add_argument("--state", choices=("undelivered", "pending", "dead", "delivered", "all"),
                             default="undelivered", help="which messages (default: pending and dead)")
    retry_parser = outbox_actions.add_parser("retry", parents=[common], help="send dead messages again")
    retry_parser.add_argument("ids", nargs="*", metavar="ID", help="message ids (default: every dead message)")
    outbox_parser.set_defaults(handler=outbox)

    from fhir_server.security.cli import add_accounts_parser, add_parser as add_clients_parser

    add_clients_parser(commands, common, clients)
    add_accounts_parser(commands, common, accounts)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; a start-up problem (a bad setting, a store that cannot be used) is one line on stderr and
    exit status 2, never a traceback."""
    from pydantic import ValidationError

    from fhir_server.startup import EXIT_STARTUP_ERROR, settings_problem
    from fhir_server.storage import StoreUnavailable

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ValidationError as exc:
        sys.stderr.write(f"error: {settings_problem(exc)}\n")
    except StoreUnavailable as exc:
        sys.stderr.write(f"error: {exc}\n")
    return EXIT_STARTUP_ERROR


if __name__ == "__main__":
    sys.exit(main())

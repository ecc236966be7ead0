"""``python -m fhir_server clients add|list|disable`` and ``accounts add``: client registration and people's local
accounts, written straight into the store the server uses (a running server sees them at once: both are read from
the store on every token request and sign-in)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import orjson

from fhir_server.clock import Clock
from fhir_server.errors import FhirError, error
from fhir_server.security.clients import all_clients, disable_client, register_client
from fhir_server.storage import ResourceStore, open_store


def _json_file(path: str) -> dict[str, Any]:
    try:
        value = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise FhirError([error("invalid", f"{path}: not a readable JSON file ({type(exc).__name__})", "jwks")]) from None
    if not isinstance(value, dict):
        raise FhirError([error("invalid", f"{path}: a JWKS is a JSON object", "jwks")])
    return value


async def _with_store(url: str, work: Callable[[ResourceStore], Any]) -> Any:
    store = open_store(url, Clock())
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


async def run(args: argparse.Namespace, store_url: str) -> Any:
    """The answer of one ``clients`` command (printed as JSON by the caller)."""
    if args.clients_command == "add":
        jwks = _json_file(args.jwks) if args.jwks else None

        async def add(store: ResourceStore) -> Any:
            client = await register_client(
                store, name=args.name, organization=args.organization, role=args.role, scopes=args.scopes.split(),
                jwks=jwks, jwks_uri=args.jwks_uri, practitioner=args.practitioner,
            )
            return {"client_id": client.client_id}

        return await _with_store(store_url, add)
    if args.clients_command == "list":
        return await _with_store(store_url, lambda store: _summaries(store))
    return await _with_store(store_url, lambda store: _disable(store, args.client_id))


async def run_accounts(args: argparse.Namespace, store_url: str) -> Any:
    """``accounts add``: the password comes from standard input (one line), never from the command line."""
    from fhir_server.security.accounts import add_account, summary

    password = sys.stdin.readline().rstrip("\n")

    async def add(store: ResourceStore) -> Any:
        account = await add_account(store, username=args.username, password=password, practitioner=args.practitioner,
                                    organization=args.organization, role=args.role, scopes=args.scopes.split())
        return summary(account)

    return await _with_store(store_url, add)


def add_accounts_parser(commands: Any, common: argparse.ArgumentParser,
                        handler: Callable[[argparse.Namespace], int]) -> None:
    parser = commands.add_parser("accounts", parents=[common], help="people's local accounts (argon2 password hashes)")
    sub = parser.add_subparsers(dest="accounts_command", required=True)
    add = sub.add_parser("add", parents=[common], help="add or replace an account; the password is read from stdin")
    add.add_argument("--username", required=True)
    add.add_argument("--practitioner", required=True, help="Practitioner/ID the person is")
    add.add_argument("--organization", required=True, help="Organization/ID the person acts for")
    add.add_argument("--role", required=True, choices=["ehr", "group", "plan", "reviewer"])
    add.add_argument("--scopes", required=True, help='e.g. "system/Task.rus system/ServiceRequest.rs"')
    parser.set_defaults(handler=handler)


async def _summaries(store: ResourceStore) -> list[dict[str, Any]]:
    return [client.summary() for client in await all_clients(store)]


async def _disable(store: ResourceStore, client_id: str) -> dict[str, Any]:
    return (await disable_client(store, client_id)).summary()


def add_parser(commands: Any, common: argparse.ArgumentParser, handler: Callable[[argparse.Namespace], int]) -> None:
    parser = commands.add_parser("clients", parents=[common], help="register, list and disable SMART backend clients")
    sub = parser.add_subparsers(dest="clients_command", required=True)
    add = sub.add_parser("add", parents=[common], help="register a client; prints {\"client_id\": ...} last")
    add.add_argument("--name", required=True)
    add.add_argument("--organization", required=True, help="Organization/ID: the client's tenant")
    add.add_argument("--role", required=True, choices=["ehr", "group", "plan", "reviewer"])
    keys = add.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks", metavar="FILE", help="the client's public JWKS")
    keys.add_argument("--jwks-uri", dest="jwks_uri", metavar="URL", help="where the server fetches the client's JWKS")
    add.add_argument("--scopes", required=True, help='e.g. "system/ServiceRequest.cr system/Task.rs"')
    add.add_argument("--practitioner", help="Practitioner/ID a reviewer client decides as")
    sub.add_parser("list", parents=[common], help="the registered clients (no keys)")
    disable = sub.add_parser("disable", parents=[common], help="refuse a client's further token requests")
    disable.add_argument("client_id")
    parser.set_defaults(handler=handler)


def print_result(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")

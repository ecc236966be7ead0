"""``python -m fhir_server clients add|list|disable|keygen|assertion`` and ``accounts add|link|unlink``: client
registration, people's local accounts and their links to an external OpenID Connect identity, written straight
into the store the server uses (a running server sees them at once: they are read from the store on every token
request and sign-in)."""

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


def keygen(directory: str, algorithm: str) -> dict[str, Any]:
    """A client key pair for trying the server: ``private.pem`` (keep it) and ``jwks.json`` (register it)."""
    import json
    import uuid

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    if algorithm == "ES384":
        private: Any = ec.generate_private_key(ec.SECP384R1())
        public = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    kid = uuid.uuid4().hex[:16]
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    (target / "private.pem").write_bytes(pem)
    (target / "private.pem").chmod(0o600)
    (target / "kid").write_text(kid)
    jwks = {"keys": [{**public, "kid": kid, "alg": algorithm, "use": "sig"}]}
    (target / "jwks.json").write_text(json.dumps(jwks, indent=2))
    return {"private_key": str(target / "private.pem"), "jwks": str(target / "jwks.json"), "kid": kid}


def assertion(key_dir: str, client_id: str, token_url: str, seconds: int = 240) -> str:
    """A signed client assertion for the token endpoint (what a backend client sends as ``client_assertion``),
    dated by this machine's clock: it is made on the client's side, not by the server."""
    import uuid
    from datetime import datetime, timezone

    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    directory = Path(key_dir)
    private = serialization.load_pem_private_key((directory / "private.pem").read_bytes(), password=None)
    algorithm = "ES384" if isinstance(private, ec.EllipticCurvePrivateKey) else "RS384"
    now = int(Clock()().timestamp())
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + seconds, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, private, algorithm=algorithm, headers={"kid": (directory / "kid").read_text().strip()})


async def run(args: argparse.Namespace, store_url: str) -> Any:
    """The answer of one ``clients`` command (printed as JSON by the caller)."""
    if args.clients_command == "keygen":
        return keygen(args.out, args.alg)
    if args.clients_command == "assertion":
        return assertion(args.key_dir, args.client_id, args.token_url)
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
    """``accounts add``: the password comes from standard input (one line), never from the command line.
    ``accounts link`` and ``unlink``: people who sign in through the external OpenID Connect provider."""
    if args.accounts_command in ("link", "unlink"):
        return await _with_store(store_url, lambda store: _link(store, args))
    from fhir_server.security.accounts import add_account, summary

    password = sys.stdin.readline().rstrip("\n")

    async def add(store: ResourceStore) -> Any:
        account = await add_account(store, username=args.username, password=password, practitioner=args.practitioner,
                                    organization=args.organization, role=args.role, scopes=args.scopes.split())
        return summary(account)

    return await _with_store(store_url, add)


async def _link(store: ResourceStore, args: argparse.Namespace) -> Any:
    from fhir_server.security.identities import link_identity, summary, unlink_identity

    if args.accounts_command == "unlink":
        return summary(await unlink_identity(store, args.issuer, args.subject))
    return summary(await link_identity(store, issuer=args.issuer, subject=args.subject, username=args.username,
                                       practitioner=args.practitioner, organization=args.organization,
                                       role=args.role, scopes=args.scopes.split()))


def _person_arguments(parser: argparse.ArgumentParser) -> None:
    """Who the person is here: the same for a local account and a linked identity."""
    parser.add_argument("--practitioner", required=True, help="Practitioner/ID the person is")
    parser.add_argument("--organization", required=True, help="Organization/ID the person acts for")
    parser.add_argument("--role", required=True, choices=["ehr", "group", "plan", "reviewer"])
    parser.add_argument("--scopes", required=True, help='e.g. "system/Task.rus system/ServiceRequest.rs"')


def _identity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--issuer", required=True, help="the provider's issuer URL (FHIR_OIDC_ISSUER)")
    parser.add_argument("--subject", required=True,
                        help="the person's identifier at the provider (the ID token's FHIR_OIDC_LINK_CLAIM, sub by default)")


def add_accounts_parser(commands: Any, common: argparse.ArgumentParser,
                        handler: Callable[[argparse.Namespace], int]) -> None:
    parser = commands.add_parser("accounts", parents=[common], help="people's accounts: local (argon2 password "
                                 "hashes) or linked to an external OpenID Connect identity")
    sub = parser.add_subparsers(dest="accounts_command", required=True)
    add = sub.add_parser("add", parents=[common], help="add or replace an account; the password is read from stdin")
    add.add_argument("--username", required=True)
    _person_arguments(add)
    link = sub.add_parser("link", parents=[common], help="link (or link again) an external identity to who the "
                          "person is here; nobody else signs in through the provider")
    _identity_arguments(link)
    link.add_argument("--username", help="the person's name here (default: the subject)")
    _person_arguments(link)
    unlink = sub.add_parser("unlink", parents=[common], help="refuse an external identity's further sign-ins")
    _identity_arguments(unlink)
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
    generate = sub.add_parser("keygen", help="make a client key pair in a directory (private.pem, jwks.json)")
    generate.add_argument("--out", required=True, metavar="DIR")
    generate.add_argument("--alg", choices=["ES384", "RS384"], default="ES384")
    signed = sub.add_parser("assertion", help="print a client assertion signed with a keygen key (for curl)")
    signed.add_argument("--key-dir", dest="key_dir", required=True, metavar="DIR")
    signed.add_argument("--client-id", dest="client_id", required=True)
    signed.add_argument("--token-url", dest="token_url", required=True)
    parser.set_defaults(handler=handler)


def print_result(value: Any) -> None:
    """JSON, except a bare string (an assertion), printed as it is for shell use."""
    sys.stdout.write((value if isinstance(value, str) else orjson.dumps(value).decode()) + "\n")

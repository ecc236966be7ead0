"""One validation gate for every write (REST create/update, bundle entries, the CLI, ``$validate``).

Base R4 rule errors make a 400 (the resource is not valid FHIR); errors against a profile this server hosts
make a 422 (valid FHIR, but not what the server accepts). Warnings (e.g. an unhosted profile claimed in
``meta.profile``) never block: they are handed back so ``Prefer: return=OperationOutcome`` can show them.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from fhir_server.errors import FhirError, Issue


class ResourceValidator(Protocol):
    """What the gate needs from :class:`fhir_server.fhir.validator.Validator`."""

    def validate_structure(self, resource: dict[str, Any]) -> list[Issue]: ...

    def validate_profiles(
        self, resource: dict[str, Any], profiles: Sequence[str] = (), *, check_meta_profiles: bool = True
    ) -> list[Issue]: ...


def has_errors(issues: Sequence[Issue]) -> bool:
    return any(issue.is_error for issue in issues)


def collect_issues(
    validator: ResourceValidator, resource: dict[str, Any], profiles: Sequence[str] = ()
) -> tuple[list[Issue], list[Issue]]:
    """(base-rule issues, profile issues). Both passes always run, so one answer names every problem of the
    resource; the profile pass reports only what a profile adds to the base rules, never the same issue twice."""
    return validator.validate_structure(resource), validator.validate_profiles(resource, profiles=tuple(profiles))


def failure_status(structure_issues: Sequence[Issue], profile_issues: Sequence[Issue]) -> int | None:
    """400 when the base rules fail (not valid FHIR), 422 when only a hosted profile does, None when acceptable."""
    if has_errors(structure_issues):
        return 400
    if has_errors(profile_issues):
        return 422
    return None


def raise_for_issues(structure_issues: Sequence[Issue], profile_issues: Sequence[Issue]) -> list[Issue]:
    """Raise the failure (with every issue) or return the issues of an acceptable resource (warnings only)."""
    issues = [*structure_issues, *profile_issues]
    status = failure_status(structure_issues, profile_issues)
    if status is not None:
        raise FhirError(issues, status)
    return issues


def check_writable(
    validator: ResourceValidator, resource: dict[str, Any], profiles: Sequence[str] = ()
) -> list[Issue]:
    """Raise 400 / 422 with every issue found; return the warnings of an acceptable resource."""
    return raise_for_issues(*collect_issues(validator, resource, profiles))

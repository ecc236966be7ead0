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
    """(base-rule issues, profile issues); profiles are checked only when the base rules pass."""
    structure_issues = validator.validate_structure(resource)
    if has_errors(structure_issues):
        return structure_issues, []
    return structure_issues, validator.validate_profiles(resource, profiles=tuple(profiles))


def check_writable(validator: ResourceValidator, resource: dict[str, Any]) -> list[Issue]:
    """Raise 400 / 422 with every issue found; return the warnings of an acceptable resource."""
    structure_issues, profile_issues = collect_issues(validator, resource)
    if has_errors(structure_issues):
        raise FhirError(structure_issues, 400)
    if has_errors(profile_issues):
        raise FhirError(structure_issues + profile_issues, 422)
    return structure_issues + profile_issues

"""What the server offers, registered once and read by the router set-up and the CapabilityStatement.

Modelled on fhirstarter's provider registration: each API module registers the interactions and operations
it implements; ``api/metadata.py`` builds ``/metadata`` from this registry, so the CapabilityStatement can
never claim something that is not wired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OperationRegistration:
    name: str  # without the $, e.g. "submit"
    definition: str  # canonical URL of the OperationDefinition
    resource_types: tuple[str, ...] = ()  # empty: system level
    instance: bool = False
    documentation: str = ""


@dataclass
class CapabilityRegistry:
    operations: list[OperationRegistration] = field(default_factory=list)
    # resource type -> extra documentation lines for the CapabilityStatement (e.g. supported profiles)
    supported_profiles: dict[str, list[str]] = field(default_factory=dict)

    # resource type -> extensions of its CapabilityStatement ``rest.resource`` entry (e.g. the Subscriptions
    # Backport's ``capabilitystatement-subscriptiontopic-canonical`` on Subscription, advertising a topic)
    resource_extensions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add_resource_extension(self, resource_type: str, extension: dict[str, Any]) -> None:
        extensions = self.resource_extensions.setdefault(resource_type, [])
        if extension not in extensions:
            extensions.append(extension)

    def add_operation(self, op: OperationRegistration) -> None:
        if op not in self.operations:
            self.operations.append(op)

    def add_supported_profile(self, resource_type: str, url: str) -> None:
        urls = self.supported_profiles.setdefault(resource_type, [])
        if url not in urls:
            urls.append(url)

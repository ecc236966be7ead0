"""What a rule module needs from a validation pass: somewhere to report, and the definitions it validates against.

The walk (``validator._Run``) satisfies this protocol; rule modules for one type or family (Attachment, Bundle,
extensions, QuestionnaireResponse) depend only on it, so each stays a small module with one job.
"""

from __future__ import annotations

from typing import Protocol

from fhir_server.fhir.definitions import DefinitionRegistry


class Findings(Protocol):
    registry: DefinitionRegistry

    def fail(self, code: str, diagnostics: str, expression: str) -> None:
        """Report an error at a FHIRPath location."""

    def warn(self, code: str, diagnostics: str, expression: str) -> None:
        """Report a warning at a FHIRPath location."""

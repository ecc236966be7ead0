"""Codes and instants in the words a case manager reads (one place, so every page says the same)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

STATUS_LABELS = {
    "information-missing": "Pended for information",
    "physician-review": "Physician review",
    "consultative-review": "Consultative review",
    "member-services": "Member Services",
    "approved": "Approved",
    "denied": "Denied",
    "report-received": "Consultation report received",
}


def status_label(code: str | None) -> str:
    return STATUS_LABELS.get(code or "", code or "unknown")


def moment_of(text: Any) -> datetime | None:
    """A FHIR instant or dateTime with a zone; None for anything else."""
    if not isinstance(text, str) or "T" not in text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def when(moment: datetime | None) -> str:
    """An instant as the pages print it (UTC, to the minute)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if moment else "not set"

# What routing found (``RoutingDecision.situation``), as the case page says it.
SITUATIONS = {
    "complete-qualifying": "complete and qualifying: the nearest qualified professional is proposed",
    "member-choice-not-qualified": "the professional the member chose does not qualify: the plan's order decides",
    "member-choice-out-of-network": "the member chose an out-of-network professional while a qualified one is in network",
    "nobody-qualified": "no qualified professional was found",
    "out-of-network-only": "a qualified professional exists only out of network (the plan bears the cost)",
    "other-reason": "the reason is not one of the plan's listed reasons: a physician decides",
    "information-missing": "information is missing: nobody is proposed until the request is complete",
}
TIER_WORDS = {"group": "member's physician group", "network": "plan network", "out-of-network": "out of network"}


def situation_words(code: str | None) -> str:
    return SITUATIONS.get(code or "", code or "unknown")

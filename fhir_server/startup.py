"""Start-up checks: what can stop the server from starting is found before it listens, and said in one line.

Why before uvicorn: a store that fails to open inside the app's lifespan ends in uvicorn's traceback and exit
code 3; an operator needs the path or URL at fault and what to do. :func:`check_store` opens and closes the
configured store once (creating a new SQLite file and its directory, or reaching MongoDB and checking that it
can run transactions); :func:`settings_problem` turns a settings validation error into the variable's name and
what is wrong with its value. The command line prints either as ``error: ...`` and exits with status 2.
"""

from __future__ import annotations

from pydantic import ValidationError

from fhir_server.clock import Clock
from fhir_server.settings import Settings
from fhir_server.storage import open_store

EXIT_STARTUP_ERROR = 2


async def check_store(settings: Settings) -> None:
    """Open and close the configured store; a :class:`StoreUnavailable` says why it cannot be used."""
    store = open_store(settings.store, Clock())
    await store.open()
    await store.close()


def settings_problem(error: ValidationError) -> str:
    """``FHIR_PORT: Input should be a valid integer (got 'abc')``, one problem per ``; ``."""
    problems = []
    for item in error.errors():
        name = "FHIR_" + "_".join(str(part) for part in item["loc"]).upper()
        problems.append(f"{name}: {item['msg']} (got {item.get('input')!r})")
    return "invalid setting " + "; ".join(problems)

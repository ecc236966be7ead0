"""Case-management tests run over the same app as the intake's: the fixed test directory loaded, a fixed clock
(Wednesday 25 November 2026, 09:00 in Los Angeles), the embedded store, or each store for transactional paths."""

from tests.second_opinion.conftest import catalog, client, client_on_each_store, directory_resources  # noqa: F401

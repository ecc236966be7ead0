"""Report tests run over the intake's app: the fixed test directory loaded, the embedded store, or each store;
each test moves ``app.state.clock`` to place submissions and decisions in (or around) the reporting period."""

from tests.second_opinion.conftest import catalog, client, client_on_each_store, directory_resources  # noqa: F401

"""Apps for the operations endpoints and HTTP features, reusing the REST suite's per-backend app and client."""

from tests.api.conftest import app, client  # noqa: F401 - fixtures

"""The management API and browser fixtures, for the last run's endpoint and page."""

from tests.api.conftest import admin, admin_token, api_server  # noqa: F401 - fixtures
from tests.e2e.conftest import browser, page  # noqa: F401 - fixtures

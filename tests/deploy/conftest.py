"""Deploy tests check configuration against a real server, with the server tests' fixtures."""

from tests.server.conftest import server, shared_model, start_server  # noqa: F401 - pytest fixtures

"""Client tests use the same real-server fixtures as the server tests."""

from tests.server.conftest import server, shared_model, start_server  # noqa: F401 - pytest fixtures

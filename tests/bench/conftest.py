"""Benchmark tests that need a real server use the server tests' fixtures."""

from tests.server.conftest import server, shared_model, start_server  # noqa: F401 - pytest fixtures

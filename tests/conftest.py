"""Fixtures: kolabmeet servers on 127.0.0.1 and the clients that talk to them."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Callable

import aiohttp
import pytest

from kolabmeet.app import Server
from tests.helpers import Browser, KolabApp, make_config


@contextlib.asynccontextmanager
async def running_server(in_process_workers: bool = False, **overrides: Any) -> AsyncIterator[Server]:
    server = Server(make_config(**overrides), in_process_workers=in_process_workers)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="session")
async def server() -> AsyncIterator[Server]:
    """One server shared by the tests that need nothing special of it."""
    async with running_server() as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def app(server: Server, http: aiohttp.ClientSession) -> KolabApp:
    return KolabApp(server, http)


@pytest.fixture
async def browsers() -> AsyncIterator[list[Browser]]:
    """Browsers a test makes are put here and disconnected at its end."""
    made: list[Browser] = []
    yield made
    for browser in made:
        await browser.close()


@pytest.fixture
def server_with() -> Callable[..., Any]:
    """A server with its own configuration: `async with server_with(**overrides) as srv`."""
    return running_server


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: runs real timers (seconds); part of the default run")

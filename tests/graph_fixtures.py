"""Fixtures for tests that talk to FakeGraph through the real msgraph-sdk client: import them into a test module."""

from __future__ import annotations

import pytest

from config.settings import Settings
from graph.client import GraphCallCounter, build_graph_client, close_graph_client
from tests.graph_server import FakeGraph

SMALL_LIST_VIEW_THRESHOLD = 10


def graph_settings(graph: FakeGraph, **overrides) -> Settings:
    values = dict(graph_base_url=graph.base_url, graph_static_token=graph.token, sharepoint_site_id=graph.site_id,
                  sharepoint_drive_id=graph.drive_id, office_mailbox="audiovisual@proinversion.gob.pe")
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def fake_graph():
    """A FakeGraph whose list view threshold is 10 items, so 'large list' rules show with a few items."""
    async with FakeGraph(list_view_threshold=SMALL_LIST_VIEW_THRESHOLD) as graph:
        yield graph


@pytest.fixture
def graph_calls() -> GraphCallCounter:
    return GraphCallCounter()


@pytest.fixture
async def graph_client(fake_graph, graph_calls):
    """The real GraphServiceClient on FakeGraph: static token, no base delay on retries (Retry-After still honoured)."""
    client = build_graph_client(graph_settings(fake_graph), counter=graph_calls, retry_base_delay=0)
    yield client
    await close_graph_client(client)

"""Fixtures of the conformance suite: ``harness`` (one per adapter, see harness.py) and ``conn``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from workbench.broker import Connection

from .harness import Harness, harnesses


@pytest.fixture(
    params=[pytest.param(cls, id=cls.name, marks=cls.marks) for cls in harnesses()],
)
async def harness(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Harness]:
    h = request.param(tmp_path, request.node.name)
    try:
        yield h
    finally:
        await h.teardown()


@pytest.fixture
async def conn(harness: Harness) -> AsyncIterator[Connection]:
    connection = await harness.adapter().connect()
    try:
        yield connection
    finally:
        await connection.close()

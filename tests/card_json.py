"""Walking an Adaptive Card's JSON in tests: every object in it, depth first."""

from __future__ import annotations

from typing import Any, Iterator


def walk(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)

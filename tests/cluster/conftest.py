"""The cluster tests run only when asked for (``make test-cluster``: ``-m cluster``): they
need root, network namespaces and HAProxy, and take minutes."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "cluster" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="a cluster test: run it with `make test-cluster`")
    for item in items:
        if item.get_closest_marker("cluster") is not None:
            item.add_marker(skip)

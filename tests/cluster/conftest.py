"""A LocalCluster of 2 single-threaded worker processes per test module, always closed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def backend() -> Iterator[object]:
    pytest.importorskip("distributed")
    from beamstream.cluster.dask_backend import DaskBackend

    b = DaskBackend.connect(workers=2, timeout=60)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def two_workers(backend: object) -> object:
    """The module's backend, with both workers up (a previous test may have killed one)."""
    backend.client.wait_for_workers(2, timeout=60)
    return backend

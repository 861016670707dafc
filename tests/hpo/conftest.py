"""One intra-op thread: these tests run many tiny tensor operations (see trainlab.threads)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trainlab.threads import limit_threads


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with limit_threads(1):
        yield

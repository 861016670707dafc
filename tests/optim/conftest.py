"""One intra-op thread for these tests: they run many tiny tensor operations, where torch's thread
pool on a shared 2-core machine costs far more than it gives (see trainlab.threads.limit_threads)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trainlab.threads import limit_threads


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with limit_threads(1):
        yield

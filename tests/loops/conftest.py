"""One intra-op thread for this part's many small tensors (see trainlab.threads)."""

from __future__ import annotations

import pytest

from trainlab.threads import limit_threads


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with limit_threads(1):
        yield

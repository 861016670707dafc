"""Thread limits for many small tensor operations.

Small models and vectorised runs are many tiny kernels: on a busy 2-core machine torch's
intra-op thread pool made one step of a least-squares run 65× slower (7 ms instead of
0.1 ms, measured), and one thread per worker process was far faster than two for the
digits MLP. Claims, CLIs and benchmarks that run such work wrap it in :func:`limit_threads`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["limit_threads"]


@contextmanager
def limit_threads(num_threads: int = 1) -> Iterator[None]:
    """Run the block with at most ``num_threads`` intra-op threads, then restore the setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(before, num_threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)

"""Seeds: one derivation for every random stream trainlab makes, and RNG forking.

A seed given by the user is never used twice for different purposes: each stream gets
its own seed derived from (seed, key, key, ...) with a stable hash, so a claim gives the
same numbers whether it runs alone or with others, and two runs of one sweep point on
different machines draw the same batches.

>>> derive_seed(0, "optim.gd-min-norm") == derive_seed(0, "optim.gd-min-norm")
True
>>> derive_seed(0, "a") != derive_seed(0, "b")
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["derive_seed", "forked_rng", "generator", "numpy_rng"]

_MAX = 2**63 - 1


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed from ``seed`` and any number of keys (strings, ints), stable across runs."""
    h = hashlib.blake2b(digest_size=8)
    h.update(str(int(seed)).encode())
    for k in keys:
        h.update(b"\x1f" + str(k).encode())
    return int.from_bytes(h.digest(), "little") & _MAX


def generator(seed: int, *keys: object, device: str = "cpu"):  # -> torch.Generator
    """A fresh ``torch.Generator`` seeded with :func:`derive_seed` (``seed`` alone when no keys)."""
    import torch

    return torch.Generator(device=device).manual_seed(derive_seed(seed, *keys) if keys else int(seed))


def numpy_rng(seed: int, *keys: object):  # -> numpy.random.Generator
    import numpy as np

    return np.random.default_rng(derive_seed(seed, *keys) if keys else int(seed))


@contextmanager
def forked_rng(seed: int) -> Iterator[None]:
    """Run the block with torch's global RNG seeded to ``seed``; restore it afterwards.

    For code that draws from the global RNG (``nn.Module`` constructors): the caller's
    global state is the same after the block as before it.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield

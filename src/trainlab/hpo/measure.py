"""Measuring the extra memory of a hypergradient honestly.

Three meters, each of something real (never ``tracemalloc``, which does not see torch's
allocations):

- :class:`SavedTensorMeter`: the peak bytes of tensors kept alive by autograd graphs,
  counted with :func:`torch.autograd.graph.saved_tensors_hooks` (each storage once, freed
  when the graph lets go of it). Deterministic and exact for what reverse mode must keep,
  but blind to tensors held outside graphs (forward mode's tangents, checkpoints).
- :class:`RssPeak`: the process's resident set size sampled by a thread from
  ``/proc/self/statm`` every millisecond, minus its value at the start, after returning
  freed heap to the kernel (``malloc_trim``) so earlier work does not hide new growth.
  What the user pays, everything included; a sampler can miss peaks shorter than 1 ms.
- on CUDA, ``torch.cuda.max_memory_allocated`` above the starting allocation (exact).
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["CudaPeak", "RssPeak", "SavedTensorMeter", "rss_bytes", "trim_heap"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """The current resident set size of this process (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def trim_heap() -> None:
    """Give freed heap memory back to the kernel (glibc's ``malloc_trim``; a no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _Saved:
    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: Tensor):
        self.tensor = tensor


class SavedTensorMeter:
    """Peak bytes of tensors saved for backward that are alive at once (each storage counted once).

    >>> w = torch.ones(1000, requires_grad=True)
    >>> with SavedTensorMeter() as m:
    ...     loss = (w * w).sum()        # saves w (4,000 bytes, once though used twice)
    >>> m.peak_bytes
    4000
    """

    def __init__(self) -> None:
        self.live_bytes = 0
        self.peak_bytes = 0
        self._refs: dict[int, int] = {}
        self._sizes: dict[int, int] = {}
        self._ctx: Any = None

    def _key_and_size(self, t: Tensor) -> tuple[int, int]:
        try:
            st = t.untyped_storage()
            return st.data_ptr(), st.nbytes()
        except (RuntimeError, NotImplementedError):  # functorch wrappers have no storage of their own
            return id(t), t.numel() * t.element_size()

    def _release(self, key: int) -> None:
        self._refs[key] -= 1
        if self._refs[key] == 0:
            self.live_bytes -= self._sizes.pop(key)
            del self._refs[key]

    def _pack(self, t: Tensor) -> _Saved:
        key, size = self._key_and_size(t)
        if key in self._refs:
            self._refs[key] += 1
        else:
            self._refs[key] = 1
            self._sizes[key] = size
            self.live_bytes += size
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        holder = _Saved(t)
        weakref.finalize(holder, self._release, key)
        return holder

    @staticmethod
    def _unpack(holder: _Saved) -> Tensor:
        return holder.tensor

    def __enter__(self) -> SavedTensorMeter:
        self._ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)


@dataclass
class RssPeak:
    """Peak RSS above the starting RSS while the ``with`` block runs (sampled every ``interval`` s)."""

    interval: float = 0.001
    start_bytes: int = 0
    peak_bytes: int = 0

    def __enter__(self) -> RssPeak:
        trim_heap()
        self.start_bytes = self.peak_bytes = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc: Any) -> None:
        self.peak_bytes = max(self.peak_bytes, rss_bytes())
        self._stop.set()
        self._thread.join()

    @property
    def extra_bytes(self) -> int:
        return max(0, self.peak_bytes - self.start_bytes)


@dataclass
class CudaPeak:
    """Peak CUDA allocation above the allocation at the start (``torch.cuda.max_memory_allocated``)."""

    device: Any = None
    start_bytes: int = 0
    peak_bytes: int = 0

    def __enter__(self) -> CudaPeak:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.start_bytes = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc: Any) -> None:
        torch.cuda.synchronize(self.device)
        self.peak_bytes = torch.cuda.max_memory_allocated(self.device)

    @property
    def extra_bytes(self) -> int:
        return max(0, self.peak_bytes - self.start_bytes)

"""Memory: what this machine has available, and refusing work that would not fit.

Work whose memory can be estimated up front (a batch of runs, a network's activations, a
training horizon in reverse mode) is estimated before anything is allocated and refused
with the estimate, instead of being killed by the kernel's OOM killer half-way.
"""

from __future__ import annotations

import os
from typing import Any

from trainlab.errors import ResourceError

__all__ = ["available_memory_bytes", "format_bytes", "require_memory"]


def available_memory_bytes() -> int:
    """Memory the kernel says can be allocated without swapping (MemAvailable), in bytes."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:  # other POSIX systems: physical memory as an upper bound
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def format_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def require_memory(argument: str, value: Any, estimate_bytes: float, *, fraction: float = 0.8,
                   available: int | None = None) -> None:
    """Refuse (:class:`ResourceError`) when ``estimate_bytes`` exceeds ``fraction`` of available memory.

    ``argument``/``value`` name what the user set that makes the work this large.
    """
    avail = available_memory_bytes() if available is None else available
    if estimate_bytes > fraction * avail:
        raise ResourceError(argument, value, f"about {format_bytes(estimate_bytes)}",
                            f"{format_bytes(avail)} is available")

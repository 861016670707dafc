"""Claims of this part, registered on import with `trainlab.claims.claim`."""

from __future__ import annotations

__all__: list[str] = []

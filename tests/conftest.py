"""Shared test fixtures: a headless matplotlib backend and a few tiny claims."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

"""Figures without pyplot state, saved together with the data they show.

Library results own a ``plot(ax=None)`` method; this module gives them an Axes when they
were not handed one, and saves a finished figure as PNG plus a JSON file of its data
beside it (``fig.png`` + ``fig.json``), both written atomically.

matplotlib is imported when a figure is made, not when trainlab starts: commands that
draw nothing (``--help``, ``list``, the accountant) do not pay for it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainlab.runs import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["new_figure", "save_figure", "subplots_or"]


def new_figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] | None = None,
               **subplot_kw: Any) -> tuple[Figure, Any]:
    """A detached Figure and its axes (array of axes when nrows*ncols > 1)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size or (4.2 * ncols, 3.4 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=True, **subplot_kw)
    return fig, axes


def subplots_or(ax: Axes | None) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a fresh one-axes figure when ``ax`` is None."""
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    return new_figure()


def save_figure(fig: Figure, path: str | os.PathLike[str], data: dict[str, Any] | None = None,
                *, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG at ``path`` and ``data`` as JSON beside it (same stem)."""
    path = Path(path).with_suffix(".png")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write_bytes(path, buf.getvalue())
    if data is not None:
        atomic_write_json(path.with_suffix(".json"), data)
    return path

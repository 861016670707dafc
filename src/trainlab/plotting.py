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

from trainlab import runs

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FIGURE_FORMATS", "new_figure", "save_figure", "subplots_or"]


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


#: Figure formats by file extension (the format of a figure file follows its name).
FIGURE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def save_figure(fig: Figure, path: str | os.PathLike[str], data: dict[str, Any] | None = None,
                *, dpi: int = 110) -> Path:
    """Save ``fig`` at ``path`` and ``data`` as JSON beside it (same stem), both or neither.

    The format follows the extension (.png, .pdf, .svg); any other name gets ``.png``. Each
    file is written atomically; if the JSON cannot be written the figure is removed again.
    """
    path = Path(path)
    if path.suffix.lower() not in FIGURE_FORMATS:
        path = path.with_suffix(".png")
    buf = io.BytesIO()
    fig.savefig(buf, format=FIGURE_FORMATS[path.suffix.lower()], dpi=dpi)
    previous = path.read_bytes() if data is not None and path.is_file() else None
    runs.atomic_write_bytes(path, buf.getvalue())
    if data is not None:
        try:
            runs.atomic_write_json(path.with_suffix(".json"), data)
        except BaseException:  # leave the figure as it was: the one it replaced, or none
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                runs.atomic_write_bytes(path, previous)
            raise
    return path

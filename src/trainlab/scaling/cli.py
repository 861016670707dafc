"""``trainlab scaling …``: this part's commands."""

from __future__ import annotations

import click

__all__ = ["group"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def group() -> None:
    """§4 Trading off resources: noise scale, batch-size sweeps, critical batch size, model size."""

"""``trainlab hpo …``: this part's commands."""

from __future__ import annotations

import click

__all__ = ["group"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def group() -> None:
    """§2 Gradient-based hyperparameter optimization: hypergradients through training."""

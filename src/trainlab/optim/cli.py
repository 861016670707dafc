"""``trainlab optim …`` sub-commands."""

import click

__all__ = ["group"]


@click.group(help="trainlab.optim (under construction).")
def group() -> None:
    pass

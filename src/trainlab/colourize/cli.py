"""``trainlab colourize …`` sub-commands."""

import click

__all__ = ["group"]


@click.group(help="trainlab.colourize (under construction).")
def group() -> None:
    pass

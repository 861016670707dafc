"""``trainlab convnets …``: shape arithmetic from the command line."""

from __future__ import annotations

import click

from trainlab.convnets.shapes import (
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    solve_padding,
)

__all__ = ["group"]


@click.group(help="ConvNet accounting: output sizes, padding, counts.")
def group() -> None:
    pass


@group.command()
@click.argument("size", type=int)
@click.option("--layer", type=click.Choice(["conv", "convT", "maxpool", "avgpool"]),
              default="conv", show_default=True)
@click.option("-k", "--kernel-size", type=int, default=3, show_default=True)
@click.option("-s", "--stride", type=int, default=None, help="Default 1 (pooling: the kernel size).")
@click.option("-p", "--padding", type=int, default=0, show_default=True)
@click.option("-d", "--dilation", type=int, default=1, show_default=True)
@click.option("--output-padding", type=int, default=0, show_default=True)
@click.option("--ceil-mode", is_flag=True)
def shape(size: int, layer: str, kernel_size: int, stride: int | None, padding: int,
          dilation: int, output_padding: int, ceil_mode: bool) -> None:
    """Output size of one layer along one spatial dimension of size SIZE."""
    if layer == "conv":
        out = conv_output_size(size, kernel_size, stride or 1, padding, dilation)
    elif layer == "convT":
        out = conv_transpose_output_size(size, kernel_size, stride or 1, padding, dilation,
                                         output_padding)
    else:
        out = pool_output_size(size, kernel_size, stride, padding,
                               dilation if layer == "maxpool" else 1, ceil_mode)
    click.echo(out)


@group.command("solve-padding")
@click.argument("size_in", type=int)
@click.argument("size_out", type=int)
@click.option("-k", "--kernel-size", type=int, default=3, show_default=True)
@click.option("-s", "--stride", type=int, default=1, show_default=True)
@click.option("-d", "--dilation", type=int, default=1, show_default=True)
@click.option("--transposed", is_flag=True, help="A transposed convolution.")
def solve_padding_cmd(size_in: int, size_out: int, kernel_size: int, stride: int, dilation: int,
                      transposed: bool) -> None:
    """Every (padding, output_padding) taking SIZE_IN to SIZE_OUT."""
    for sol in solve_padding(size_in, size_out, kernel_size, stride, dilation, transposed=transposed):
        click.echo(f"padding={sol.padding} output_padding={sol.output_padding}")

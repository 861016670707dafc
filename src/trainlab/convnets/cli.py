"""``trainlab convnets …``: shape arithmetic, network accounting, symbolic counts, receptive fields."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import torch
from torch import nn

from trainlab.console import stdout_console
from trainlab.convnets.receptive_field import empirical_receptive_field
from trainlab.convnets.spec import build_from_spec
from trainlab.convnets.symbolic import symbolic_counts
from trainlab.convnets.table import LayerRow, Summary
from trainlab.convnets.tracer import IGNORABLE, parse_size, summary
from trainlab.errors import ArgumentError, TrainlabError, raised_by_trainlab
from trainlab.loader import is_factory_ref, load_factory, load_model, load_model_for_shapes
from trainlab.memory import require_memory
from trainlab.runs import atomic_write_text, check_output_file, output_errors
from trainlab.shapes import (
    adaptive_pool_windows,
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    solve_padding,
    upsample_output_size,
)

__all__ = ["group"]


@click.group(help="ConvNet accounting: output sizes, padding, counts.")
def group() -> None:
    pass


#: Library parameter names -> the flags (or arguments) of `shape` and `solve-padding`.
_FLAGS = {"size": "SIZE", "size_in": "SIZE_IN", "size_out": "SIZE_OUT", "kernel_size": "--kernel-size",
          "stride": "--stride", "padding": "--padding", "dilation": "--dilation",
          "output_padding": "--output-padding", "output_size": "--output-size",
          "scale_factor": "--scale-factor", "scale_factor/size": "--scale-factor/--output-size"}


@contextmanager
def _as_flags() -> Iterator[None]:
    """The shape rules name Python parameters (``kernel_size=``); on the command line, the flags."""
    try:
        yield
    except ArgumentError as e:
        if e.argument in _FLAGS:
            raise ArgumentError(_FLAGS[e.argument], e.value, e.valid) from None
        raise


def _echo(text: str) -> None:
    """One block of output on stdout through trainlab's console: never wrapped, no markup."""
    stdout_console().print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


@group.command()
@click.argument("size", type=int)
@click.option(
    "--layer",
    type=click.Choice(["conv", "convT", "maxpool", "avgpool", "adaptive", "upsample"]),
    default="conv",
    show_default=True,
)
@click.option("-k", "--kernel-size", type=int, default=3, show_default=True)
@click.option("-s", "--stride", type=int, default=None, help="Default 1 (pooling: the kernel size).")
@click.option("-p", "--padding", type=int, default=0, show_default=True)
@click.option("-d", "--dilation", type=int, default=1, show_default=True)
@click.option("--output-padding", type=int, default=0, show_default=True)
@click.option("--ceil-mode", is_flag=True)
@click.option("--output-size", type=int, default=None, help="adaptive pooling / upsample: the output size.")
@click.option("--scale-factor", type=float, default=None, help="upsample: the scale factor.")
def shape(
    size: int,
    layer: str,
    kernel_size: int,
    stride: int | None,
    padding: int,
    dilation: int,
    output_padding: int,
    ceil_mode: bool,
    output_size: int | None,
    scale_factor: float | None,
) -> None:
    """Output size of one layer along one spatial dimension of size SIZE.

    For adaptive pooling the input window of every output is printed as well.
    """
    with _as_flags():
        _shape(size, layer, kernel_size, stride, padding, dilation, output_padding, ceil_mode, output_size,
               scale_factor)


def _shape(size: int, layer: str, kernel_size: int, stride: int | None, padding: int, dilation: int,
           output_padding: int, ceil_mode: bool, output_size: int | None, scale_factor: float | None) -> None:
    one = 1 if stride is None else stride
    if layer == "conv":
        out = conv_output_size(size, kernel_size, one, padding, dilation)
    elif layer == "convT":
        out = conv_transpose_output_size(size, kernel_size, one, padding, dilation, output_padding)
    elif layer == "adaptive":
        if output_size is None:
            raise ArgumentError("--output-size", None, "the adaptive pooling output size (an integer ≥ 1)")
        if output_size <= 2 * _SHOWN_WINDOWS:
            windows = adaptive_pool_windows(size, output_size)
            _echo(f"{output_size} windows " + " ".join(f"[{a},{b})" for a, b in windows))
            return
        adaptive_pool_windows(size, 1)  # the same argument checks, without listing every window
        ends = [*range(_SHOWN_WINDOWS), *range(output_size - _SHOWN_WINDOWS, output_size)]
        shown = [f"[{(i * size) // output_size},{-(-((i + 1) * size) // output_size)})" for i in ends]
        _echo(f"{output_size} windows " + " ".join(shown[:_SHOWN_WINDOWS]) + " … "
              + " ".join(shown[_SHOWN_WINDOWS:]) + f" (the first and last {_SHOWN_WINDOWS})")
        return
    elif layer == "upsample":
        out = upsample_output_size(size, scale_factor, output_size)
    else:
        out = pool_output_size(
            size, kernel_size, stride, padding, dilation if layer == "maxpool" else 1, ceil_mode
        )
    _echo(str(out))


#: Adaptive pooling windows printed at each end when there are more than twice as many.
_SHOWN_WINDOWS = 32
#: Largest stride or dilation solve-padding takes: 2^16 (it lists up to 2^15 solutions).
_MAX_LISTED_STEP = 2**16


@group.command("solve-padding")
@click.argument("size_in", type=int)
@click.argument("size_out", type=int)
@click.option("-k", "--kernel-size", type=int, default=3, show_default=True)
@click.option("-s", "--stride", type=int, default=1, show_default=True)
@click.option("-d", "--dilation", type=int, default=1, show_default=True)
@click.option("--transposed", is_flag=True, help="A transposed convolution.")
def solve_padding_cmd(
    size_in: int, size_out: int, kernel_size: int, stride: int, dilation: int, transposed: bool
) -> None:
    """Every (padding, output_padding) taking SIZE_IN to SIZE_OUT."""
    for flag, value in (("--stride", stride), ("--dilation", dilation)):
        if value > _MAX_LISTED_STEP:  # up to max(s, d)/2 solutions, each listed
            raise ArgumentError(flag, value, f"at most {_MAX_LISTED_STEP} (every solution is listed, and a "
                                "stride or dilation s has up to s/2 of them)")
    with _as_flags():
        solutions = solve_padding(size_in, size_out, kernel_size, stride, dilation, transposed=transposed)
    for sol in solutions:
        _echo(f"padding={sol.padding} output_padding={sol.output_padding}")


# ---------------------------------------------------------------------------------------------
# Accounting: summary, symbolic counts, receptive fields.

_FORMATS = ("table", "json", "csv", "md")


def _ignore_option(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [t for t in items if t not in IGNORABLE]
    if bad:
        raise ArgumentError("--ignore", text, "a comma-separated subset of: " + ", ".join(IGNORABLE))
    return items


def _model_from(target: str, size: tuple[int, ...]) -> nn.Module:
    """A spec string or a MODULE reference, for shape-only tracing: built on the meta device (no
    weights allocated), or on the CPU after a memory estimate when its constructor needs values."""
    if is_factory_ref(target):
        return load_model_for_shapes(target, "TARGET")
    if len(size) != 3:
        raise ArgumentError(
            "--input", "x".join(map(str, size)), "channels×height×width for a spec, e.g. 3x112x112"
        )
    with torch.device("meta"):
        return build_from_spec(target, size)


def _user_code() -> contextlib.AbstractContextManager:
    """Around the user's own code (imports, factories, forward passes): what it prints goes to stderr,
    so that stdout holds only trainlab's table or its one JSON object."""
    return contextlib.redirect_stdout(sys.stderr)


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _trace(target: str, model: nn.Module, size: tuple[int, ...], **options) -> Summary:
    """``summary`` of the user's model; a forward pass that fails is one line (exit 2), not a traceback."""
    try:
        return summary(model, size, **options)
    except TrainlabError:
        raise
    except (Exception, SystemExit) as e:  # a forward that calls sys.exit() is the model's failure too
        if raised_by_trainlab(e):  # a rule's own bug: exit 3 with its traceback, not the model blamed
            raise
        raise ArgumentError("TARGET", target, f"a model whose forward pass runs on an input of "
                            f"{'x'.join(map(str, size))} ({type(e).__name__}: {_first_line(e)})") from None


_EXTENSIONS = {".txt": "table", ".json": "json", ".csv": "csv", ".md": "md"}


def _write_output(path: str, text: str, overwrite: bool) -> None:
    """Write ``text`` to the user's ``--output`` file (atomically; an existing file needs --overwrite)."""
    target = Path(path)
    if target.exists() and target.is_file() and not overwrite:
        raise ArgumentError("--output", path, "a new file (this one exists: add --overwrite to replace it)")
    with output_errors("--output", path):
        if target.is_dir():
            raise IsADirectoryError(21, os.strerror(21), path)
        atomic_write_text(target, text)


@group.command("summary")
@click.argument("target")
@click.option("--input", "input_size", required=True, help="Input size, channels first, e.g. 3x112x112.")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default=None,
              help="table (default), json, csv or md; with --output, the file's extension decides.")
@click.option(
    "--ignore", default="", help="Leave out of parameter counts: bias, batchnorm (comma-separated)."
)
@click.option("--strict", is_flag=True, help="Fail if any operation cannot be counted.")
@click.option("--batch-size", type=click.IntRange(1, 2**31 - 1), default=1, show_default=True)
@click.option("--train-mode", is_flag=True,
              help="Trace the training forward pass (stochastic depth, auxiliary heads); default: eval mode.")
@click.option("-o", "--output", default=None, help="Write the table to this file (.txt, .json, .csv or .md).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
def summary_cmd(target: str, input_size: str, fmt: str | None, ignore: str, strict: bool, batch_size: int,
                train_mode: bool, output: str | None, overwrite: bool) -> None:
    """Neurons, parameters, MACs, connections and receptive field of every layer.

    TARGET is a spec ('conv3-64, maxpool, fc-10') or a MODULE reference
    'package.module:factory(args)' / 'path/file.py:factory(args)'. The model is traced in eval
    mode unless --train-mode is given.
    """
    if output is not None:
        ext = Path(output).suffix.lower()
        if ext not in _EXTENSIONS:
            raise ArgumentError("--output", output, "a file ending in " + ", ".join(_EXTENSIONS))
        if fmt is not None and fmt != _EXTENSIONS[ext]:
            raise ArgumentError("--format", fmt, f"{_EXTENSIONS[ext]} for an --output ending in {ext} "
                                "(or leave --format out)")
        fmt = _EXTENSIONS[ext]
        # a folder, a path under a file, an existing file, a dangling link: refused before the trace
        check_output_file("--output", output, list(_EXTENSIONS), overwrite=overwrite)
    fmt = fmt or "table"
    size = parse_size(input_size)
    ignored = _ignore_option(ignore)
    with _user_code():
        model = _model_from(target, size)
        result = _trace(target, model, size, batch_size=batch_size, ignore=ignored, strict=strict,
                        training=train_mode)
    text = {"table": result.to_text, "json": result.to_json, "csv": result.to_csv, "md": result.to_markdown}[
        fmt
    ]()
    if output is not None:
        _write_output(output, text, overwrite)
        return
    _echo(text.rstrip("\n"))


@group.command("rf")
@click.argument("target")
@click.option("--input", "input_size", required=True, help="Input size, channels first, e.g. 3x112x112.")
@click.option(
    "--check",
    is_flag=True,
    help="Also measure the last layer's field as the gradient support of its centre unit.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--train-mode", is_flag=True, help="Trace the training forward pass; default: eval mode.")
def rf_cmd(target: str, input_size: str, check: bool, fmt: str, train_mode: bool) -> None:
    """Receptive field size, jump and start (centre of unit 0, in input pixels) of every layer.

    TARGET is a spec or a MODULE reference, as for `summary`. "(hull)": branches with different
    centres meet and the field is the hull of theirs; "(all; local n)": a gate (squeeze-excitation)
    or global pooling makes every unit see the whole input, n is the field of the local path.
    """
    size = parse_size(input_size)
    with _user_code():
        model = _model_from(target, size)
        result = _trace(target, model, size, training=train_mode)
    rows = [r for r in result.rows if r.receptive_field is not None]
    if not rows:
        if not 2 <= len(size) <= 4:
            raise ArgumentError(
                "--input", input_size, "an image-like input (C×L, C×H×W or C×D×H×W) for receptive fields"
            )
        raise ArgumentError("TARGET", target, "a model whose layers keep the input's spatial axes in view "
                            "(no layer's output could be mapped back to input pixels: the axes were mixed, "
                            "e.g. by a reshape across them, before any layer that has a field)")
    measured = None
    last = rows[-1]
    if check:
        # float64 weights and their gradients, the input, every activation and its gradient (and
        # the autograd graph's saved tensors): 8 bytes each, three times over for the activations
        require_memory("--input", input_size,
                       8 * (2 * result.total_params + 3 * (math.prod(size) + result.total_neurons)))
        with _user_code():
            real = load_model(target, "TARGET") if is_factory_ref(target) else build_from_spec(target, size)
        # The last spatial output that a module returns (a functional op has no hook to read it by):
        # the last layer row that is a module, or a block (container) that finished after it.
        modules = dict(real.named_modules())
        named = [i for i, r in enumerate(result.rows) if r.receptive_field is not None
                 and r.name.split(" (")[0] in modules and r.output_shape is not None]
        blocks = [(name, shape, rf, done) for name, (shape, rf, done) in result.block_fields.items()
                  if name in modules]
        if named:
            last = result.rows[named[-1]]
        if blocks and (not named or blocks[-1][3] > named[-1]):
            name, shape, rf, _ = blocks[-1]
            last = LayerRow(name or "(model)", type(modules[name]).__name__, shape, receptive_field=rf)
        layer = last.name.split(" (")[0] if last.name != "(model)" else None
        pos = tuple(n // 2 for n in last.output_shape[2:])
        try:
            with _user_code():
                measured = empirical_receptive_field(real, size, pos, layer=layer)
        except TrainlabError:
            raise
        except Exception as e:
            if raised_by_trainlab(e):
                raise
            raise ArgumentError("--check", True, f"a model whose gradient can be taken in float64 "
                                f"({type(e).__name__}: {_first_line(e)})") from None
    if fmt == "json":
        doc = {"input": list(size), "layers": [{"name": r.name, "type": r.type,
                                                 **r.receptive_field.as_numbers()} for r in rows]}
        if measured is not None:
            doc["check"] = {"layer": last.name, "position": list(measured.position), "lo": list(measured.lo),
                            "hi": list(measured.hi), "size": list(measured.size),
                            "formula_interval": [list(iv) for iv in
                                                 last.receptive_field.interval(measured.position)]}
        _echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    width = max(len(r.name) for r in rows)
    size_width = max(10, *(len(r.receptive_field.describe()[0]) for r in rows))
    type_width = max(18, *(len(r.type) for r in rows))
    header = f"{'layer'.ljust(width)}  {'type':<{type_width}} {'size':>{size_width}} {'jump':>8} {'start':>8}"
    lines = [header]
    for r in rows:
        s, j, st = r.receptive_field.describe()
        lines.append(f"{r.name.ljust(width)}  {r.type:<{type_width}} {s:>{size_width}} {j:>8} {st:>8}")
    if measured is not None:
        lines.append(
            f"gradient support of unit {measured.position} of {last.name or 'the output'}: "
            f"{measured.lo}..{measured.hi} "
            f"(size {'×'.join(map(str, measured.size))}); formula interval "
            + ", ".join(f"[{a:g}, {b:g}]" for a, b in last.receptive_field.interval(measured.position))
            + " before clipping to the image"
        )
    _echo("\n".join(lines))


def _symbolic_input(text: str) -> tuple[int | str, ...]:
    parts = [p.strip() for p in (text.split(",") if "," in text else text.split("x"))]
    out: list[int | str] = []
    for p in parts:
        if p.isdigit() and int(p) > 0:
            out.append(int(p))
        elif p.isidentifier():
            out.append(p)
        else:
            raise ArgumentError("--input", text, "sizes or variable names, e.g. 1,height,width or 3x32x32")
    return tuple(out)


def _vars_option(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, _, step = item.partition(":")
        if not name.isidentifier() or (step and not (step.isdigit() and int(step) > 0)):
            raise ArgumentError(
                "--vars",
                text,
                "comma-separated argument names, each with an optional :step "
                "(e.g. num_filters,num_colours,height:4)",
            )
        if name in out:
            raise ArgumentError("--vars", text, f"each argument named once ({name} is named twice)")
        out[name] = int(step) if step else 1
    if not out:
        raise ArgumentError("--vars", text, "at least one argument name")
    return out


@group.command("symbolic")
@click.argument("module")
@click.option(
    "--vars",
    "variables",
    required=True,
    help="Integer arguments (or input sizes) to keep symbolic, name[:step], comma-separated.",
)
@click.option(
    "--input",
    "input_size",
    required=True,
    help="Input size; entries may be variables: 1,height,width or num_in_channels,32,32.",
)
@click.option("--ignore", default="", help="Leave out of parameter counts: bias, batchnorm.")
@click.option(
    "--degree", type=click.IntRange(1, 4), default=2, show_default=True, help="Largest power of one variable."
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def symbolic_cmd(module: str, variables: str, input_size: str, ignore: str, degree: int, fmt: str) -> None:
    """Exact polynomials for parameters, neurons, MACs and connections of MODULE's factory.

    MODULE is 'package.module:factory(args)' or 'path/file.py:factory(args)'; the arguments given
    there are kept fixed, those named in --vars become symbols.
    """
    with _user_code():
        factory, ref = load_factory(module)
    if ref.args:
        raise ArgumentError("MODULE", module, "keyword arguments only, so that --vars can replace them")
    if not callable(factory) or isinstance(factory, nn.Module):
        raise ArgumentError("MODULE", module, "a factory (class or function) taking the --vars arguments")
    try:
        with _user_code():
            result = symbolic_counts(
                factory,
                _vars_option(variables),
                _symbolic_input(input_size),
                fixed=ref.kwargs,
                degree=degree,
                ignore=_ignore_option(ignore),
            )
    except TrainlabError:
        raise
    except Exception as e:  # the user's forward pass failed at some point of the fit
        if raised_by_trainlab(e):
            raise
        raise ArgumentError("MODULE", module, f"a model whose forward pass runs at every fitted point "
                            f"({type(e).__name__}: {_first_line(e)})") from None
    polys = result.as_strings()
    if fmt == "json":
        _echo(
            json.dumps(
                {"polynomials": polys, "fitted_on": result.fitted_at, "checked_at": result.checked_at},
                indent=2,
            )
        )
        return
    _echo("\n".join(f"{name:<12} {poly}" for name, poly in polys.items()))
    _echo(
        f"fitted on {result.fitted_at} traced points; exact at {len(result.checked_at)} fresh points: "
        + "; ".join(", ".join(f"{k}={v}" for k, v in pt.items()) for pt in result.checked_at)
    )

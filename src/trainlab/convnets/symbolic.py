"""Counts as exact polynomials in a model's integer arguments (SymPy).

For a model factory such as ``PoolUpsampleNet(num_in_channels, num_filters, num_colours)``
on an input of ``num_in_channels × height × width``, parameters, neurons, MACs and
connections are polynomials in those integers: each layer contributes a product of at most
two channel numbers (C_in·C_out) and one output area. :func:`symbolic_counts` finds them
exactly without symbolic tracing:

1. trace the model (:func:`trainlab.convnets.tracer.summary`, shapes only, built on the meta
   device) on the tensor grid of D + 1 values per variable (D = ``degree``, the largest power
   of one variable, 2 by default);
2. interpolate: on a tensor grid the monomial coefficients of a polynomial of degree ≤ D in
   each variable follow by inverting one (D+1)×(D+1) Vandermonde matrix per variable, applied
   axis by axis, in exact rational arithmetic;
3. verify at fresh random integer points never used in the fit. A count that is not such a
   polynomial (e.g. floor division by a stride when a size is not a multiple of it) fails
   this check and raises, rather than returning a wrong formula.

Spatial sizes divided by pooling are polynomials only on multiples of the total stride:
give such variables a ``step`` (``{"height": 4}``) and they are sampled on its multiples.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from trainlab.convnets.tracer import summary
from trainlab.errors import ArgumentError, ShapeError, TrainlabError

if TYPE_CHECKING:
    import sympy

__all__ = ["COUNTS", "SymbolicCounts", "symbolic_counts"]

COUNTS = ("params", "neurons", "macs", "connections")


@dataclass
class SymbolicCounts:
    """Polynomials for each count, how many points they were fitted on, the fresh points checked."""

    symbols: dict[str, sympy.Symbol]
    polynomials: dict[str, sympy.Expr]
    fitted_at: int
    checked_at: list[dict[str, int]] = field(default_factory=list)

    def evaluate(self, values: Mapping[str, int]) -> dict[str, int]:
        subs = {self.symbols[k]: v for k, v in values.items()}
        return {name: int(poly.subs(subs)) for name, poly in self.polynomials.items()}

    def as_strings(self) -> dict[str, str]:
        import sympy

        return {name: str(sympy.expand(poly)) for name, poly in self.polynomials.items()}


def _inverse_vandermonde(xs: Sequence[int]) -> list[list[Fraction]]:
    """V⁻¹ for V[i][j] = xs[i]**j, by Gauss–Jordan elimination over the rationals."""
    n = len(xs)
    a = [
        [Fraction(x) ** j for j in range(n)] + [Fraction(int(i == r)) for i in range(n)]
        for r, x in enumerate(xs)
    ]
    for col in range(n):
        pivot = next(r for r in range(col, n) if a[r][col] != 0)
        a[col], a[pivot] = a[pivot], a[col]
        scale = a[col][col]
        a[col] = [v / scale for v in a[col]]
        for r in range(n):
            if r != col and a[r][col] != 0:
                factor = a[r][col]
                a[r] = [v - factor * w for v, w in zip(a[r], a[col], strict=True)]
    return [row[n:] for row in a]


def _resolve_size(input_size: Sequence[int | str], values: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(values[v] if isinstance(v, str) else v for v in input_size)


def _accepts(factory: Callable[..., Any], name: str) -> bool:
    """Whether ``factory`` takes an argument ``name`` (input sizes such as ``height`` usually are not)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _counts_at(
    factory: Callable[..., nn.Module],
    input_size: Sequence[int | str],
    fixed: Mapping[str, Any],
    values: Mapping[str, int],
    input_names: set[str],
    ignore: frozenset[str],
) -> dict[str, int]:
    kwargs = {**fixed, **{k: v for k, v in values.items() if k not in input_names or _accepts(factory, k)}}
    try:
        with torch.device("meta"):  # no weights allocated, no random initialisation drawn
            model = factory(**kwargs)
    except TypeError as e:
        raise ArgumentError("--vars", ",".join(values), f"arguments the factory accepts ({e})") from None
    except TrainlabError:
        raise
    except Exception:  # a constructor computing with tensor values (RegNet's widths): on the CPU
        try:
            model = factory(**kwargs)
        except TrainlabError:
            raise
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            name = getattr(factory, "__name__", repr(factory))
            raise ArgumentError("MODULE", name, f"a factory that builds with {kwargs} "
                                f"({type(e).__name__}: {first})") from None
    s = summary(model, _resolve_size(input_size, values), ignore=ignore)
    totals = s.totals()
    return {name: totals[name] for name in COUNTS}


def symbolic_counts(
    factory: Callable[..., nn.Module],
    variables: Mapping[str, int] | Sequence[str],
    input_size: Sequence[int | str],
    *,
    fixed: Mapping[str, Any] | None = None,
    degree: int = 2,
    ignore: Sequence[str] = (),
    num_checks: int = 3,
    seed: int = 0,
) -> SymbolicCounts:
    """Exact polynomials for parameters, neurons, MACs and connections of ``factory(**args)``.

    ``variables`` names the integer arguments (and/or entries of ``input_size`` given as
    names) to keep symbolic, optionally mapped to a step: they are sampled on multiples of
    it. ``fixed`` holds the factory's other arguments. Raises :class:`ShapeError` when the
    counts are not polynomials of degree ≤ ``degree`` in each variable on those multiples.
    """
    steps = dict(variables) if isinstance(variables, Mapping) else dict.fromkeys(variables, 1)
    if not steps:
        raise ArgumentError("--vars", "", "at least one variable name, e.g. num_filters,num_colours")
    for name, step in steps.items():
        if not name.isidentifier() or isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ArgumentError("--vars", f"{name}:{step}", "identifiers with an optional integer step ≥ 1")
    if isinstance(degree, bool) or not isinstance(degree, int) or not 1 <= degree <= 4:
        raise ArgumentError("degree", degree, "an integer from 1 to 4")
    fixed = dict(fixed or {})
    input_names = {v for v in input_size if isinstance(v, str)}
    missing = input_names - set(steps)
    if missing:
        raise ArgumentError(
            "--input",
            "x".join(map(str, input_size)),
            f"sizes that are integers or among the variables (missing: {', '.join(sorted(missing))})",
        )
    names = list(steps)
    grids = [[steps[n] * (i + 2) for i in range(degree + 1)] for n in names]  # 2·step, 3·step, …
    inverses = [_inverse_vandermonde(g) for g in grids]
    ignore = frozenset(ignore)

    shape = (degree + 1,) * len(names)
    tables = {c: np.empty(shape, dtype=object) for c in COUNTS}
    for idx in itertools.product(range(degree + 1), repeat=len(names)):
        values = {n: grids[a][i] for a, (n, i) in enumerate(zip(names, idx, strict=True))}
        counts = _counts_at(factory, input_size, fixed, values, input_names, ignore)
        for c in COUNTS:
            tables[c][idx] = Fraction(counts[c])

    import sympy  # imported here: it takes most of a second, and only this function needs it

    symbols = {n: sympy.Symbol(n, integer=True, positive=True) for n in names}
    polynomials: dict[str, sympy.Expr] = {}
    for c in COUNTS:
        coeffs = tables[c]
        for axis, inv in enumerate(
            inverses
        ):  # values on the grid -> monomial coefficients, one axis at a time
            inv_arr = np.array(inv, dtype=object)
            coeffs = np.moveaxis(np.tensordot(inv_arr, np.moveaxis(coeffs, axis, 0), axes=1), 0, axis)
        poly = sympy.Integer(0)
        for powers in itertools.product(range(degree + 1), repeat=len(names)):
            q = coeffs[powers]
            if q != 0:
                poly += sympy.Rational(q.numerator, q.denominator) * math.prod(
                    (symbols[n] ** e for n, e in zip(names, powers, strict=True)), start=sympy.Integer(1)
                )
        polynomials[c] = sympy.expand(poly)

    result = SymbolicCounts(symbols, polynomials, fitted_at=int(np.prod(shape)))
    rng = np.random.default_rng(seed)
    for _ in range(num_checks):
        values = {n: steps[n] * int(rng.integers(degree + 3, degree + 13)) for n in names}  # off the grid
        measured = _counts_at(factory, input_size, fixed, values, input_names, ignore)
        predicted = result.evaluate(values)
        for c in COUNTS:
            if measured[c] != predicted[c]:
                raise ShapeError(
                    f"{c} is not a polynomial of degree ≤ {degree} per variable in {', '.join(names)}: at "
                    f"{values} the fit predicts {predicted[c]} but tracing gives {measured[c]}; "
                    "sample spatial "
                    "sizes on multiples of the total stride (e.g. --vars height:8) or raise the degree"
                )
        result.checked_at.append(values)
    return result

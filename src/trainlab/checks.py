"""Checks: each records measured, expected and tolerance, and decides pass or fail.

A claim's verdict is the conjunction of its checks, and its summary is rendered from the
same records, so a summary can never state what was not measured or claim a bound that
did not hold::

    checks = Checks()
    checks.at_most("rel_err", 3e-12, 1e-8, expected=0.0)      # measured ≤ tolerance
    checks.close("eta_star", 0.2500000001, 0.25, rtol=1e-8)   # |m − e| ≤ atol + rtol·|e|
    checks.record("steps", 140)                                # shown, not judged
    checks.summary("GD ends {rel_err} from w* after {steps} steps")
    # 'GD ends 3.0e-12 (≤ 1e-08 ✓) from w* after 140 steps'

``{name}`` renders a check as "measured (relation bound ✓/✗)" and a recorded value as
itself; ``{name!v}`` renders only the measured value; a format spec applies to the
measured value (``{rel_err:.1e}``). A placeholder naming nothing recorded is an error.
When any check fails, the summary starts with "FAILED" and the failed checks.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Check", "Checks", "format_number"]


def format_number(v: Any, spec: str = "") -> str:
    """Compact text for a number (or list of numbers): ints with separators, floats in 4 digits.

    A dict reads as "(name value, …)" rather than its Python repr.
    """
    if isinstance(v, dict):
        items = [f"{k} {format_number(x, spec)}" for k, x in list(v.items())[:8]]
        return "(" + ", ".join(items) + (", …" if len(v) > 8 else "") + ")"
    if spec:
        if isinstance(v, list | tuple):
            return "[" + ", ".join(format(x, spec) for x in v) + "]"
        return format(v, spec)
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v == 0:
            return "0"
        a = abs(v)
        if 1e-3 <= a < 1e5:
            return f"{v:.3g}"
        return f"{v:,.0f}" if 1e5 <= a < 1e12 else f"{v:.1e}"  # 160,168 bytes reads better than 1.6e+05
    if isinstance(v, list | tuple):
        items = [format_number(x) for x in v[:8]]
        return "[" + ", ".join(items) + (", …" if len(v) > 8 else "") + "]"
    return str(v)


def _plain(v: Any) -> Any:
    """Python numbers/lists from numpy or torch values (so records are JSON-ready)."""
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    tolist = getattr(v, "tolist", None)
    if callable(tolist):
        return _plain(tolist())
    return v


def _max_abs_diff(measured: Any, expected: Any) -> tuple[float, float]:
    """(max |m − e|, max |e|) elementwise over scalars or nested lists of equal shape."""
    m, e = _flat(measured), _flat(expected)
    if len(m) != len(e):
        raise ValueError(f"measured has {len(m)} values, expected {len(e)}")
    diff = max((abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf
                for a, b in zip(m, e, strict=True)), default=0.0)
    return diff, max((abs(b) for b in e), default=0.0)


def _flat(v: Any) -> list[float]:
    v = _plain(v)
    if isinstance(v, list):
        return [x for item in v for x in _flat(item)]
    return [float(v)]


@dataclass(frozen=True)
class Check:
    """One judged quantity. ``relation`` is how measured is compared (≤, ≥, ≈, =, <, >)."""

    name: str
    measured: Any
    expected: Any
    tolerance: Any
    relation: str
    passed: bool
    bound: Any = None  # what the relation compares against, as shown in the summary

    def describe(self, spec: str = "") -> str:
        mark = "✓" if self.passed else "✗"
        return f"{format_number(self.measured, spec)} ({self.relation} {format_number(self.bound)} {mark})"

    def as_record(self) -> dict[str, Any]:
        return {"name": self.name, "measured": self.measured, "expected": self.expected,
                "tolerance": self.tolerance, "relation": self.relation, "bound": self.bound,
                "passed": self.passed}


@dataclass
class Checks:
    """The checks and plain records of one claim run, in the order they were made."""

    checks: list[Check] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)
    tolerance: dict[str, Any] = field(default_factory=dict)

    # -- judged quantities -------------------------------------------------------------

    def _add(self, name: str, measured: Any, expected: Any, tolerance: Any, relation: str,
             passed: bool, bound: Any) -> bool:
        if name in self.measured:
            raise ValueError(f"check {name!r} recorded twice")
        measured, expected, tolerance, bound = map(_plain, (measured, expected, tolerance, bound))
        self.checks.append(Check(name, measured, expected, tolerance, relation, bool(passed), bound))
        self.measured[name] = measured
        if expected is not None:
            self.expected[name] = expected
        if tolerance is not None:
            self.tolerance[name] = tolerance
        return bool(passed)

    def close(self, name: str, measured: Any, expected: Any, *, rtol: float = 0.0,
              atol: float = 0.0) -> bool:
        """max |measured − expected| ≤ atol + rtol·max|expected| (scalars or equal-shape lists)."""
        if rtol < 0 or atol < 0 or (rtol == 0 and atol == 0):
            raise ValueError("close() needs a positive rtol or atol (use equal() for exact values)")
        diff, scale = _max_abs_diff(measured, expected)
        limit = atol + rtol * scale
        tol = {k: v for k, v in (("rtol", rtol), ("atol", atol)) if v}
        return self._add(name, measured, expected, tol, "≈", diff <= limit, expected)

    def at_most(self, name: str, measured: Any, bound: Any, *, expected: Any = None,
                strict: bool = False) -> bool:
        """Every measured value ≤ ``bound`` (< with ``strict``); ``expected`` is theory's value, if any."""
        values = _flat(measured)
        ok = all(math.isfinite(v) and (v < bound if strict else v <= bound) for v in values)
        return self._add(name, measured, expected, {"max": bound}, "<" if strict else "≤", ok, bound)

    def at_least(self, name: str, measured: Any, bound: Any, *, expected: Any = None,
                 strict: bool = False) -> bool:
        """Every measured value ≥ ``bound`` (> with ``strict``)."""
        values = _flat(measured)
        ok = all(math.isfinite(v) and (v > bound if strict else v >= bound) for v in values)
        return self._add(name, measured, expected, {"min": bound}, ">" if strict else "≥", ok, bound)

    def between(self, name: str, measured: Any, low: float, high: float, *, expected: Any = None) -> bool:
        """low ≤ every measured value ≤ high."""
        values = _flat(measured)
        ok = all(math.isfinite(v) and low <= v <= high for v in values)
        return self._add(name, measured, expected, {"min": low, "max": high}, "in",
                         ok, [low, high])

    def equal(self, name: str, measured: Any, expected: Any) -> bool:
        """measured == expected exactly (ints, strings, lists of them)."""
        return self._add(name, measured, expected, None, "=", _plain(measured) == _plain(expected),
                         expected)

    def holds(self, name: str, value: bool, condition: str) -> bool:
        """A property that holds or not; ``condition`` says in words what was required."""
        return self._add(name, bool(value), True, None, "is", bool(value), condition)

    # -- plain records (shown, not judged) -----------------------------------------------

    def record(self, name: str, value: Any) -> Any:
        """A measured value that is evidence but not itself judged (a count, a curve)."""
        if name in self.measured:
            raise ValueError(f"{name!r} recorded twice")
        self.measured[name] = _plain(value)
        return value

    def expect(self, name: str, value: Any) -> Any:
        """What theory (or the course) says, where it is not itself a check's bound."""
        self.expected[name] = _plain(value)
        return value

    # -- verdict and summary -----------------------------------------------------------

    @property
    def passed(self) -> bool:
        """True when at least one check was made and every check passed."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self, template: str | None = None) -> str:
        """The one-line summary, rendered from the recorded numbers (see the module doc)."""
        if template is None:
            text = "; ".join(f"{c.name} {c.describe()}" for c in self.checks[:4])
            if len(self.checks) > 4:
                text += f"; {len(self.checks)} checks in all"
        else:
            text = _Renderer(self).format(" ".join(template.split()))
        if not self.checks:
            return "no checks were made: " + text
        failed = self.failed
        if failed:
            head = "; ".join(f"{c.name} {c.describe()}" for c in failed[:3])
            more = f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""
            return f"FAILED {head}{more} | {text}"
        return text

    def names(self) -> Sequence[str]:
        return [c.name for c in self.checks]


class _Renderer(string.Formatter):
    def __init__(self, checks: Checks):
        self._checks = {c.name: c for c in checks.checks}
        self._values = checks.measured

    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        if key in self._checks:
            return self._checks[key]
        if key in self._values:
            return _Value(self._values[key])
        raise KeyError(f"summary placeholder {{{key}}} names nothing recorded "
                       f"(checks and records: {', '.join(self._values)})")

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion == "v":
            return _Value(value.measured if isinstance(value, Check) else value.value)
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Check):
            return value.describe(format_spec)
        if isinstance(value, _Value):
            return format_number(value.value, format_spec)
        return super().format_field(value, format_spec)


@dataclass(frozen=True)
class _Value:
    value: Any

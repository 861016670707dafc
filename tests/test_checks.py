"""Checks decide pass/fail from recorded numbers, and summaries are rendered from the same records."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainlab.checks import Checks, format_number


def test_close_uses_atol_plus_rtol_times_expected():
    c = Checks()
    assert c.close("a", 1.0 + 5e-9, 1.0, rtol=1e-8)
    assert not c.close("b", 1.0 + 2e-8, 1.0, rtol=1e-8)
    assert c.close("c", [1.0, 2.0], [1.0, 2.0 + 1e-13], atol=1e-12)
    assert not c.close("d", [1.0, float("nan")], [1.0, 2.0], atol=1.0)
    assert c.tolerance["a"] == {"rtol": 1e-8} and c.expected["b"] == 1.0
    with pytest.raises(ValueError, match="rtol or atol"):
        c.close("e", 1.0, 1.0)


def test_bounds_are_judged_on_every_value_and_nan_never_passes():
    c = Checks()
    assert c.at_most("le", [1e-9, 2e-9], 1e-8)
    assert not c.at_most("le-nan", float("nan"), 1.0)
    assert not c.at_most("lt", 1.0, 1.0, strict=True)
    assert c.at_least("ge", np.array([3.0, 4.0]), 3.0)
    assert not c.at_least("gt", torch.tensor(3.0), 3.0, strict=True)
    assert c.between("in", 0.5, 0.0, 1.0) and not c.between("out", 1.5, 0.0, 1.0)
    assert c.equal("eq", [1, 2], (1, 2)) and not c.equal("ne", "a", "b")
    assert c.holds("yes", True, "it holds") and not c.holds("no", False, "it holds")
    assert [x.name for x in c.failed] == ["le-nan", "lt", "gt", "out", "ne", "no"]
    assert not c.passed
    assert c.measured["ge"] == [3.0, 4.0]  # numpy/torch values are stored as plain numbers


def test_verdict_needs_at_least_one_check():
    c = Checks()
    c.record("x", 1)
    assert not c.passed
    c.at_most("err", 0.0, 1.0)
    assert c.passed


def test_summary_renders_recorded_numbers_with_their_relation():
    c = Checks()
    c.at_most("rel_err", 3e-12, 1e-8, expected=0.0)
    c.record("steps", 140)
    assert c.summary("GD ends {rel_err} from w* after {steps} steps") == \
        "GD ends 3.0e-12 (≤ 1.0e-08 ✓) from w* after 140 steps"
    assert c.summary("{rel_err!v} / {rel_err:.2e}") == "3.0e-12 / 3.00e-12 (≤ 1.0e-08 ✓)"


def test_a_failed_check_is_named_first_whatever_the_template_says():
    c = Checks()
    c.at_least("speedup", 4.0, 10.0)
    text = c.summary("fast enough")
    assert text.startswith("FAILED speedup 4 (≥ 10 ✗)") and text.endswith("| fast enough")


def test_summary_cannot_name_what_was_not_recorded():
    c = Checks()
    c.at_most("err", 1e-3, 1e-2)
    with pytest.raises(KeyError, match="speedup"):
        c.summary("{speedup}× faster")


def test_a_name_is_recorded_once():
    c = Checks()
    c.record("x", 1)
    with pytest.raises(ValueError, match="twice"):
        c.at_most("x", 1, 2)


def test_default_summary_lists_the_checks():
    c = Checks()
    for i in range(5):
        c.at_most(f"e{i}", 0.1 * i, 1.0)
    assert c.summary().startswith("e0 0 (≤ 1 ✓); e1 0.1 (≤ 1 ✓)") and "5 checks in all" in c.summary()


@pytest.mark.parametrize("value, text", [
    (1234567, "1,234,567"), (0.25, "0.25"), (3e-12, "3.0e-12"), (160168.4, "160,168"), (2.5e13, "2.5e+13"),
    (math.inf, "inf"), ([1, 2.5], "[1, 2.5]"), (True, "True"),
    ({"forward": 0.0801, "reverse": 2}, "(forward 0.0801, reverse 2)"),
])
def test_format_number(value, text):
    assert format_number(value) == text


def test_a_dict_in_a_summary_is_not_its_python_repr():
    c = Checks()
    c.record("slopes", {"forward": 0.08, "reverse": 0.947})
    c.at_most("err", 0.0, 1.0)
    assert c.summary("slopes {slopes!v}; {err}") == "slopes (forward 0.08, reverse 0.947); 0 (≤ 1 ✓)"

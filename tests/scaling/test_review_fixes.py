"""Defects found by a review of the scaling CLI, each pinned by a test."""

from __future__ import annotations

import pytest

from trainlab.cli import main


@pytest.mark.parametrize("args", [["noise-scale", "--seed", str(2**70)], ["noise-scale", "--seed", "-1"],
                                  ["sweep", "--seeds", f"1,{2**70}"], ["sweep", "--data-seed", "-1"]])
def test_seeds_outside_64_bits_are_refused(tmp_path, capsys, args):
    # 2**70 overflowed the generator (exit 3), and -1 gave the same numbers as 2**64 - 1
    out = ["--out", str(tmp_path / "r")] if args[0] == "sweep" else []
    assert main(["scaling", *args, *out]) == 2
    assert "seed" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("width", ["100000000", "99999999999999999999"])
def test_a_width_whose_network_cannot_fit_is_refused_before_anything_is_built(tmp_path, capsys, width):
    assert main(["scaling", "noise-scale", "--width", width]) == 2
    err = capsys.readouterr().err
    assert "--width" in err and "available" in err
    assert main(["scaling", "sweep", "--width", width, "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def test_an_existing_figure_is_kept_unless_overwrite_is_given(tmp_path, capsys):
    fig = tmp_path / "nqm.png"
    fig.write_bytes(b"the user's figure")
    args = ["scaling", "nqm", "--dim", "5", "--batch-sizes", "1,4", "--figure", str(fig)]
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err and fig.read_bytes() == b"the user's figure"
    (tmp_path / "lonely.json").write_text("{}")  # the data file beside it counts too
    assert main([*args[:-1], str(tmp_path / "lonely.png")]) == 2
    assert main([*args, "--overwrite"]) == 0
    assert fig.read_bytes().startswith(b"\x89PNG") and (tmp_path / "nqm.json").is_file()

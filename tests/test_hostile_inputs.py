"""A hostile-input campaign against every command: files, outputs, disk, unicode, NaN/inf, huge values.

tests/test_cli_bad_input.py walks every option with values of the wrong type or out of its
range, and tests/test_bad_user_inputs.py holds the bad factories and data files found by
review. This campaign covers what they do not: NaN, inf and enormous numbers in every numeric
option, empty and malformed texts, truncated and malicious files (pickles that would run code,
object arrays, garbage JSON and JSONL, text posing as images, truncated PNGs, a FIFO that
would block a reader), outputs that cannot be written (a folder, a path under a file, a
folder root may not write in, an existing file), undecodable and unusual file names, and a
full disk (RLIMIT_FSIZE in a subprocess).

Every case starts from a valid invocation (:data:`BASE`) and spoils one thing. It must end
with exit 2 and one line on stderr that names what was wrong (``expect``), no traceback,
nothing on stdout, nothing left in the working folder, no file of the campaign's changed
(hashed before and after), and no code from a file run (the malicious files try to make
:data:`PWNED`). The count is printed by ``test_the_campaign_has_at_least_300_cases``.

Root writes through chmod: a read-only folder is simulated by a folder of /sys (permission
denied for root too) and by a path under a regular file; a full disk by RLIMIT_FSIZE.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import resource
import signal
import struct
import subprocess
import sys
import tarfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from trainlab.cli import main

#: The folder the malicious files try to make; it must never exist.
PWNED = "PWNED-by-a-hostile-file"


@dataclass(frozen=True)
class Case:
    """One spoiled invocation: ``argv`` with ``{H}`` for the hostile folder; ``expect``: words the
    one-line error must hold (the option or the file at fault)."""

    group: str
    name: str
    argv: tuple[str, ...]
    expect: tuple[str, ...] = ()
    slow: bool = False

    @property
    def id(self) -> str:
        return f"{self.group}:{self.name}"


# ---------------------------------------------------------------------------------------------
# Valid invocations, cheap to run, that each case spoils in one place.

TINY_COLOUR = ("--max-train", "24", "--max-valid", "8", "--epochs", "1", "--batch-size", "12",
               "--num-filters", "4", "--num-colours", "5", "--num-crops", "48", "--patch-size", "8",
               "--lr-schedule", "constant")
CIFAR = ("--data", "cifar10:{H}/cifar-ok", "--patch-size", "32")
BASE: dict[str, tuple[str, ...]] = {
    "optim compare": ("optim", "compare", "--n", "4", "--d", "8", "--seeds", "1", "--steps", "10"),
    "optim path": ("optim", "path", "--x", "2,1", "--t", "1", "--steps", "10", "-o", "path.png"),
    "hpo hypergrad": ("hpo", "hypergrad", "--steps", "3", "--lr", "0.01"),
    "hpo tune-lr": ("hpo", "tune-lr", "--steps", "3", "--meta-steps", "2"),
    "convnets rf": ("convnets", "rf", "conv3-8, maxpool", "--input", "3x16x16"),
    "convnets shape": ("convnets", "shape", "32"),
    "convnets solve-padding": ("convnets", "solve-padding", "32", "16", "-s", "2"),
    "convnets summary": ("convnets", "summary", "conv3-8, maxpool, fc-10", "--input", "3x16x16"),
    "convnets symbolic": ("convnets", "symbolic", "{H}/models.py:widthnet", "--vars", "width",
                          "--input", "3x8x8"),
    "scaling fit": ("scaling", "fit", "{H}/sweep-ok"),
    "scaling noise-scale": ("scaling", "noise-scale", "--method", "two-batch", "--num-batches", "2",
                            "--b-small", "2", "--b-big", "4"),
    "scaling nqm": ("scaling", "nqm", "--dim", "10", "--batch-sizes", "1,4"),
    "scaling sweep": ("scaling", "sweep", "--batch-sizes", "4", "--seeds", "1", "--targets", "0.5",
                      "--max-steps", "10", "--out", "sweep-run"),
    "colourize train": ("colourize", "train", "--model", "pool", *TINY_COLOUR),
    "colourize compare": ("colourize", "compare", *TINY_COLOUR),
    "colourize eval": ("colourize", "eval", "{H}/crun", "-o", "eval-out"),
    "colourize predict": ("colourize", "predict", "{H}/crun", "{H}/photo.png", "-o", "out.png"),
    "loops lr-find": ("loops", "lr-find", "--problem", "linreg", "--steps", "5"),
    "loops sharpness": ("loops", "sharpness", "--problem", "linreg"),
    "list": ("list",),
    "verify": ("verify", "convnets.by-hand", "--out", "verify-run"),
    "report": ("report", "{H}/vrun-ok"),
}


def _with(command: str, *extra: str, drop: tuple[str, ...] = ()) -> tuple[str, ...]:
    """BASE[command] with the options in ``drop`` (and their values) removed, then ``extra``."""
    base = list(BASE[command])
    for flag in drop:
        if flag in base:
            i = base.index(flag)
            del base[i:i + 2]
    return (*base, *extra)


# ---------------------------------------------------------------------------------------------
# The cases.

NON_FINITE = ("nan", "inf", "-inf", "1e999")

#: (command, option, context) of every option that takes a real number; ``context``: the other
#: options that make it matter (an option the command ignores in the base is no test of it).
FLOAT_OPTIONS: list[tuple[str, str, tuple[str, ...]]] = [
    ("optim compare", "--lr", ()), ("optim compare", "--tol", ()), ("optim path", "--lr", ()),
    ("hpo hypergrad", "--lr", ()), ("hpo hypergrad", "--momentum", ("--optimizer", "momentum")),
    ("hpo hypergrad", "--weight-decay", ()),
    ("hpo tune-lr", "--lr", ()), ("hpo tune-lr", "--meta-lr", ()),
    ("hpo tune-lr", "--hypergrad-lr", ("--online",)),
    ("convnets shape", "--scale-factor", ("--layer", "upsample")),
    ("scaling fit", "--target", ()), ("scaling noise-scale", "--lr", ("--at", "trained", "--steps", "2")),
    ("scaling nqm", "--target-fraction", ()),
    ("scaling sweep", "--lr-min", ()), ("scaling sweep", "--lr-max", ()),
    ("scaling sweep", "--momentum", ("--optimizer", "momentum")),
    ("colourize train", "--lr", ()), ("colourize compare", "--lr", ()),
    ("loops lr-find", "--min-lr", ()), ("loops lr-find", "--max-lr", ()),
    ("loops lr-find", "--momentum", ()), ("loops lr-find", "--smoothing", ()),
    ("loops lr-find", "--diverge-factor", ()), ("loops sharpness", "--tol", ()),
]

#: (command, option, value, context) of integer options without an upper bound, at sizes no
#: machine has (caps such as --max-train, where a huge value means "all", are left out).
HUGE = "1000000000000000"  # 10^15
HUGE_INTS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("optim compare", "--n", HUGE, ()), ("optim compare", "--d", HUGE, ()),
    ("optim compare", "--seeds", HUGE, ()), ("optim compare", "--batch-size", HUGE, ()),
    ("hpo hypergrad", "--batch-size", HUGE, ()), ("hpo tune-lr", "--batch-size", HUGE, ()),
    ("convnets summary", "--batch-size", str(2**31), ()),
    ("scaling noise-scale", "--width", HUGE, ()), ("scaling noise-scale", "--b-big", HUGE, ()),
    ("scaling noise-scale", "--num-batches", HUGE, ()),
    ("scaling noise-scale", "--batch-size", HUGE, ("--method", "exact", "--at", "trained", "--steps", "2")),
    ("scaling sweep", "--width", HUGE, ()),
    ("scaling fit", "--bootstrap", HUGE, ()),
    ("loops lr-find", "--batch-size", HUGE, ()), ("loops sharpness", "--batch-size", HUGE, ()),
    ("colourize train", "--num-filters", "10000000", ()), ("colourize train", "--kernel", HUGE, ()),
    ("colourize compare", "--num-filters", "10000000", ()),
]

#: (command, option) of text options that an empty or blank value cannot satisfy.
TEXT_OPTIONS: list[tuple[str, str]] = [
    ("optim compare", "--optimizers"), ("optim path", "--optimizers"), ("optim path", "--x"),
    ("hpo hypergrad", "--problem"), ("hpo hypergrad", "--wrt"), ("hpo hypergrad", "--betas"),
    ("hpo tune-lr", "--problem"),
    ("convnets rf", "--input"), ("convnets summary", "--input"),
    ("convnets symbolic", "--vars"), ("convnets symbolic", "--input"),
    ("scaling noise-scale", "--problem"), ("scaling sweep", "--problem"),
    ("scaling sweep", "--batch-sizes"), ("scaling sweep", "--seeds"), ("scaling sweep", "--targets"),
    ("scaling sweep", "--executor"), ("scaling nqm", "--batch-sizes"),
    ("colourize train", "--data"), ("colourize train", "--device"),
    ("colourize eval", "--device"), ("colourize predict", "--device"),
    ("loops lr-find", "--problem"), ("loops sharpness", "--problem"),
]

#: Malformed texts for options that parse a structure: (command, option, value, context).
MALFORMED: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("optim path", "--x", "1,nan", ()), ("optim path", "--x", "inf,1", ()),
    ("optim path", "--x", "1e999,0", ()),
    ("optim path", "--x", "1,,2", ()), ("optim path", "--x", "0,0", ()), ("optim path", "--x", "1,2,3", ()),
    ("optim path", "--t", "0", ()),
    ("optim compare", "--optimizers", "sgd,,adam", ()), ("optim compare", "--optimizers", "ＳＧＤ", ()),
    ("optim compare", "--optimizers", "sgd,sgd", ()),
    ("hpo hypergrad", "--betas", "nan,0.999", ("--optimizer", "adam")),
    ("hpo hypergrad", "--betas", "0.9", ("--optimizer", "adam")),
    ("hpo hypergrad", "--betas", "0.9,0.999,0.5", ("--optimizer", "adam")),
    ("hpo hypergrad", "--betas", "1,1", ("--optimizer", "adam")),
    ("hpo hypergrad", "--wrt", "λ", ()), ("hpo hypergrad", "--wrt", "lr,lr", ()),
    ("convnets summary", "--input", "3x-1x4", ()), ("convnets summary", "--input", "3xx4", ()),
    ("convnets summary", "--input", "3x1e9x1e9", ()),
    ("convnets summary", "--input", "3x99999999999x99999999999", ()),
    ("convnets summary", "--ignore", "bias,,λ", ()),
    ("convnets rf", "--input", "3x0x16", ()), ("convnets rf", "--input", "nanxnan", ()),
    ("convnets symbolic", "--vars", "no_such_arg", ()), ("convnets symbolic", "--vars", "1width", ()),
    ("convnets symbolic", "--input", "3xheightx8", ()), ("convnets symbolic", "--vars", "width,width", ()),
    ("scaling sweep", "--batch-sizes", "nan", ()), ("scaling sweep", "--batch-sizes", "-4", ()),
    ("scaling sweep", "--batch-sizes", "4.5", ()), ("scaling sweep", "--batch-sizes", HUGE, ()),
    ("scaling sweep", "--seeds", "nan", ()), ("scaling sweep", "--seeds", "1,1", ()),
    ("scaling sweep", "--targets", "nan", ()), ("scaling sweep", "--targets", "inf", ()),
    ("scaling sweep", "--targets", "-0.1", ()),
    ("scaling sweep", "--executor", "rm -rf /", ()), ("scaling sweep", "--address", "ray://[::1", ()),
    ("scaling nqm", "--batch-sizes", "0", ()), ("scaling nqm", "--batch-sizes", "inf", ()),
    ("scaling nqm", "--batch-sizes", "1e999", ()),
    ("colourize train", "--category", "licorne", CIFAR), ("colourize train", "--category", "10", CIFAR),
    ("colourize train", "--category", "", CIFAR),
    ("colourize train", "--device", "cuda:99", ()), ("colourize train", "--device", "tpu", ()),
    ("colourize train", "--data", "cifar10:", ("--patch-size", "32")),
    ("colourize train", "--data", "folder:", ()),
    ("colourize train", "--data", "http://example.com/x.tar.gz", ()),
    ("loops sharpness", "--problem", "linreg:", ()),
    ("loops sharpness", "--problem", "no_such_module:f()", ("--data", "{H}/good.npz")),
    ("loops lr-find", "--problem", "digits-mlp:extra", ("--data", "{H}/good.npz")),
]

#: Spec strings no network has; each names the token at fault.
SPECS = {"conv3-99999999999": "conv3-99999999999", "conv0-8": "conv0-8", "conv3-8/0": "conv3-8/0",
         "fc-0": "fc-0", "conv3-8, fc-2147483648": "fc-2147483648", "λ": "λ", "conv3-8,,fc-10": "token 2",
         "maxpool99999999999": "maxpool99999999999", "convT3-8/0": "convT3-8/0", "upsample0": "upsample0",
         "conv3-8; import os": "conv3-8; import os", "": "spec=''",
         "conv3-8" + ", maxpool" * 6: "maxpool"}


def _option_cases() -> list[Case]:
    cases = []
    for command, flag, context in FLOAT_OPTIONS:
        for v in NON_FINITE:
            argv = _with(command, *context, flag, v, drop=(flag, *context[::2]))
            cases.append(Case(command, f"{flag}={v}", argv, (flag,)))
    for command, flag, v, context in HUGE_INTS:
        argv = _with(command, *context, flag, v, drop=(flag, *context[::2]))
        cases.append(Case(command, f"{flag}=huge", argv, (flag,)))
    for command, flag in TEXT_OPTIONS:
        for v in ("", " "):
            cases.append(Case(command, f"{flag}={v!r}", _with(command, flag, v, drop=(flag,)), (flag,)))
    for command, flag, v, context in MALFORMED:
        argv = _with(command, *context, flag, v, drop=(flag, *context[::2]))
        cases.append(Case(command, f"{flag}={v!r}", argv, (flag,)))
    for pattern in ("[", "no.such.*", "[!", "ü*"):
        cases.append(Case("list", f"pattern={pattern!r}", ("list", pattern), (pattern,)))
        cases.append(Case("verify", f"pattern={pattern!r}", ("verify", pattern, "--out", "verify-run"),
                          (pattern,)))
    for spec, word in SPECS.items():
        for command in ("convnets summary", "convnets rf"):
            argv = (*BASE[command][:2], spec, *BASE[command][3:])
            cases.append(Case(command, f"TARGET={spec[:30]!r}", argv, (word,)))
    for flags, word in ((("-k", HUGE), "kernel"), (("-s", "0"), "--stride"), (("-d", "0"), "--dilation"),
                        (("-p", "-1"), "--padding"),
                        (("--layer", "convT", "-s", "2", "--output-padding", "5"), "--output-padding"),
                        (("--layer", "adaptive", "--output-size", "0"), "--output-size"),
                        (("--layer", "upsample", "--scale-factor", "0"), "--scale-factor"),
                        (("--layer", "upsample", "--scale-factor", "1e300"), "--scale-factor")):
        cases.append(Case("convnets shape", " ".join(flags), ("convnets", "shape", "32", *flags), (word,)))
    for args, word in ((("32", "16", "-k", HUGE), "kernel"), (("32", "16", "-s", HUGE), "stride"),
                       (("32", "16", "-d", "0"), "--dilation"),
                       (("32", "99999999999", "--transposed"), "99999999999"),
                       (("0", "16"), "SIZE_IN"), (("32", "0"), "SIZE_OUT"),
                       (("4", "100", "-s", "2", "--transposed"), "4 to 100"),
                       (("32", "16", "-s", str(2**17)), "--stride")):
        cases.append(Case("convnets solve-padding", " ".join(args)[:30], ("convnets", "solve-padding", *args),
                          (word,)))
    return cases


# Files: (name in the hostile folder, short description). Made by _make_hostile_folder.
NPZ_FILES = {
    "empty.npz": "zero bytes",
    "truncated.npz": "a valid archive cut in half",
    "text.npz": "a text file",
    "payload.npz": "a pickle whose loading would make PWNED",
    "member-payload.npz": "an archive whose x is a pickled object that would make PWNED",
    "objects.npz": "an object array",
    "no-keys.npz": "arrays named a and b",
    "x-1d.npz": "x of one dimension",
    "x-empty.npz": "no examples",
    "x-inf.npz": "x holding inf",
    "y-float.npz": "labels 0.5",
    "y-negative.npz": "label -1",
    "y-huge.npz": "label 10^12",
    "lengths.npz": "10 inputs, 9 labels",
    "claims-huge.npz": "a header claiming 10^15 elements",
    "fifo.npz": "a named pipe (a reader would block)",
    "unreadable.npz": "a file whose reading fails (a link to /proc/self/mem: EIO, even for root)",
    "dangling.npz": "a link to nothing",
    "folder.npz": "a folder",
    "données ✓/不存在.npz": "missing, unicode path",
    "bad-\udcff-name.npz": "a name that is not UTF-8 (missing)",
    "x" * 300 + ".npz": "a name too long for the file system",
}
#: Files that name arrays X, t (the linreg problem) spoil the same ways.
LINREG_ONLY = {"no-keys.npz", "x-1d.npz", "x-empty.npz", "x-inf.npz", "lengths.npz"}
FACTORY_ONLY = {"y-float.npz", "y-negative.npz", "y-huge.npz"}

IMAGE_FILES = {
    "text.png": "text posing as a PNG",
    "truncated.png": "a PNG cut in half",
    "empty.png": "zero bytes",
    "bomb.png": "a header claiming 60000×60000 pixels",
    "folder.png": "a folder",
    "fifo.png": "a named pipe",
    "unreadable.png": "a file whose reading fails",
    "payload.png": "a pickle posing as an image",
    "missing ✓.png": "missing, unicode name",
}

#: Colourize run folders, each a copy of a valid run with one file spoiled.
RUN_SPOILS = {
    "ckpt-payload": "checkpoint.pt holding a pickle that would make PWNED (torch's zip format)",
    "ckpt-raw-payload": "checkpoint.pt a bare pickle that would make PWNED",
    "ckpt-truncated": "checkpoint.pt cut in half",
    "ckpt-empty": "checkpoint.pt of zero bytes",
    "ckpt-text": "checkpoint.pt a text file",
    "ckpt-folder": "checkpoint.pt a folder",
    "ckpt-list": "checkpoint.pt a list of tensors",
    "ckpt-shapes": "checkpoint.pt with weights of other shapes",
    "ckpt-missing": "no checkpoint.pt",
    "ckpt-unreadable": "checkpoint.pt whose reading fails",
    "palette-objects": "palette.npy an object array",
    "palette-nan": "palette.npy holding NaN",
    "palette-shape": "palette.npy of shape (5, 4)",
    "palette-payload": "palette.npy a pickle that would make PWNED",
    "palette-count": "palette.npy of 7 colours for a config of 5",
    "config-garbage": "config.json not JSON",
    "config-deep": "config.json nested 100000 deep",
    "config-list": "config.json a list",
    "config-model": "config.json naming an unknown model",
    "config-types": "config.json with epochs 'many'",
    "config-huge": "config.json with 10^7 filters (petabytes of weights)",
    "config-nan": "config.json with lr NaN",
    "config-binary": "config.json not UTF-8",
    "config-fifo": "config.json a named pipe",
    "config-unreadable": "config.json whose reading fails",
}

RESULT_SPOILS = {
    "garbage": b"{not json",
    "empty": b"",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "list": b"[1, 2, 3]",
    "schema": b'{"claims": "none"}',
    "binary": b"\xff\xfe\x00garbage",
    "nan": b'{"trainlab_version": NaN, "claims": [{"id": NaN}]}',
}

SWEEP_SPOILS = {
    "config-garbage": "sweep.json not JSON",
    "config-deep": "sweep.json nested 100000 deep",
    "config-list": "sweep.json a list",
    "config-values": "sweep.json with batch sizes [-4]",
    "config-nan": "sweep.json with lr_base NaN",
    "config-binary": "sweep.json not UTF-8",
    "points-garbage": "points.jsonl of garbage lines",
    "points-binary": "points.jsonl not UTF-8",
    "points-nan": "points.jsonl whose points have NaN learning rates",
    "points-wrong": "points.jsonl of JSON objects that are not points",
    "points-deep": "points.jsonl with a line nested 100000 deep",
    "points-folder": "points.jsonl a folder",
    "no-points": "a sweep with no points",
}


def _file_cases() -> list[Case]:
    cases = []
    for name in NPZ_FILES:
        short = name[:24]
        if name not in FACTORY_ONLY:
            for command in ("hpo hypergrad", "loops sharpness", "loops lr-find"):
                argv = _with(command, "--problem", f"linreg:{{H}}/{name}", drop=("--problem",))
                cases.append(Case(command, f"linreg:{short}", argv, ("--problem",)))
        if name not in LINREG_ONLY:
            for command in ("hpo hypergrad", "loops sharpness", "scaling noise-scale"):
                argv = _with(command, "--problem", "{H}/models.py:mlp", "--data", f"{{H}}/{name}",
                             drop=("--problem",))
                cases.append(Case(command, f"--data {short}", argv, ("--data",)))
    for name in IMAGE_FILES:
        argv = ("colourize", "predict", "{H}/crun", f"{{H}}/{name}", "-o", "out.png")
        word = "IMAGE" if "missing" in name else name[:6]
        cases.append(Case("colourize predict", f"IMAGE {name}", argv, (word,)))
    for folder in ("images-text", "images-truncated", "images-none", "images-bomb"):
        argv = _with("colourize train", "--data", f"folder:{{H}}/{folder}", drop=("--data",))
        cases.append(Case("colourize train", f"--data folder:{folder}", argv, (folder,)))
    for tar in ("cifar-garbage.tar.gz", "cifar-truncated.tar.gz", "cifar-payload.tar.gz",
                "cifar-empty.tar.gz", "cifar-payload-folder"):
        argv = _with("colourize train", "--data", f"cifar10:{{H}}/{tar}", "--patch-size", "32",
                     drop=("--data", "--patch-size"))
        cases.append(Case("colourize train", f"--data cifar10:{tar}", argv,
                          ("posix.mkdir",) if "payload" in tar else (tar,)))
    for spoil in RUN_SPOILS:
        what = spoil.split("-")[0]
        word = {"ckpt": "checkpoint.pt", "palette": "palette.npy", "config": "config.json"}[what]
        cases.append(Case("colourize eval", f"RUN {spoil}", ("colourize", "eval", f"{{H}}/run-{spoil}"),
                          (word,)))
        cases.append(Case("colourize predict", f"RUN {spoil}",
                          ("colourize", "predict", f"{{H}}/run-{spoil}", "{H}/photo.png", "-o", "out.png"),
                          (word,)))
        if what == "config":
            cases.append(Case("colourize train", f"--resume {spoil}",
                              ("colourize", "train", "--out", f"{{H}}/run-{spoil}", "--resume"), (word,)))
    for spoil in RESULT_SPOILS:
        cases.append(Case("report", f"results.json {spoil}", ("report", f"{{H}}/vrun-{spoil}"),
                          ("results.json",)))
        cases.append(Case("verify", f"--resume results.json {spoil}",
                          ("verify", "convnets.by-hand", "--out", f"{{H}}/vrun-{spoil}", "--resume"),
                          ("results.json",)))
    for name in ("vrun-fifo", "vrun-folder", "vrun-unreadable"):
        cases.append(Case("report", f"results.json {name[5:]}", ("report", f"{{H}}/{name}"),
                          ("results.json",)))
    for spoil, _ in SWEEP_SPOILS.items():
        word = "sweep.json" if "config" in spoil else "points.jsonl"
        word = "no finished point" if spoil == "no-points" else word
        cases.append(Case("scaling fit", f"RUN {spoil}", ("scaling", "fit", f"{{H}}/sweep-{spoil}"), (word,)))
        if "config" in spoil:  # (points are read only once the settings match: not reached here)
            argv = _with("scaling sweep", "--out", f"{{H}}/sweep-{spoil}", "--resume", drop=("--out",))
            cases.append(Case("scaling sweep", f"--resume {spoil}", argv,
                              ("--resume",) if spoil in ("config-values", "config-nan") else (word,)))
    for name in ("models.py:no_such", "models.py:not_a_model", "models.py:raises", "nothere.py:f",
                 "models.py:widthnet(width=)", "models.py:sys_exit"):
        argv = ("convnets", "summary", f"{{H}}/{name}", "--input", "3x16x16")
        cases.append(Case("convnets summary", f"TARGET {name}", argv, ("TARGET",)))
    for name in ("models.py:no_such", "models.py:raises"):
        cases.append(Case("convnets symbolic", f"MODULE {name}",
                          ("convnets", "symbolic", f"{{H}}/{name}", "--vars", "width", "--input", "3x8x8"),
                          ("MODULE",)))
    return cases


#: Output options, with a valid file name to spoil, and the extension they take.
OUTPUTS: list[tuple[str, str, str]] = [
    ("convnets summary", "--output", ".json"), ("optim path", "--output", ".png"),
    ("loops lr-find", "--output", ".png"), ("scaling nqm", "--figure", ".png"),
    ("scaling noise-scale", "--figure", ".png"), ("colourize predict", "--output", ".png"),
    ("colourize eval", "--out", ""), ("verify", "--out", ""), ("scaling sweep", "--out", ""),
    ("colourize train", "--out", ""),
]


def _output_cases() -> list[Case]:
    cases = []
    for command, flag, ext in OUTPUTS:
        folder_out = not ext  # a run folder (or eval's output folder)
        spoils = {
            "an existing folder": "{H}/a-folder" + ext if not folder_out else None,
            "under a regular file": "{H}/a-file/out" + (ext or ""),
            "in a folder root cannot write": "/sys/trainlab-hostile/out" + (ext or ""),
            "an existing file": "{H}/existing" + (ext or ".txt"),
            "an empty name": "",
            "a name too long": "x" * 300 + (ext or ""),
            "a link to nothing": "{H}/dangling" + (ext or ""),
            "a folder holding other files": "{H}/a-full-folder" if folder_out and command != "colourize eval"
            else None,
            "a wrong extension": "out.exe" if ext else None,
            "not UTF-8": "{H}/a-file/bad-\udcff" + (ext or ""),
        }
        for what, path in spoils.items():
            if path is None:
                continue
            argv = _with(command, flag, path, drop=(flag, "-o"))
            cases.append(Case(command, f"{flag} {what}", argv, (flag,)))
    return cases


ALL_CASES = [*_option_cases(), *_file_cases(), *_output_cases()]


# ---------------------------------------------------------------------------------------------
# The hostile folder: every file the cases name, made once; hashed before and after each case.

class _Payload:
    """Unpickling this calls os.mkdir(target): a file holding it must be refused, never loaded."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def _png(width: int, height: int, pixels: bytes | None = None) -> bytes:
    """A PNG of 8-bit grey pixels (zeros unless given), written by hand: the header can claim any size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = pixels if pixels is not None else b"".join(b"\x00" + bytes(width) for _ in range(min(height, 2)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


MODELS_PY = '''
import sys
from torch import nn

def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))

def widthnet(width=4):
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2)) if False else \\
        nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU())

def not_a_model():
    return 42

def raises(width=4):
    raise RuntimeError("the user's constructor fails")

def sys_exit():
    sys.exit(0)
'''


def _make_hostile_folder(h: Path) -> None:
    import torch

    from trainlab.colourize.models import build_model
    from trainlab.colourize.palette import Palette
    from trainlab.colourize.train import TrainConfig, _save_checkpoint
    from trainlab.runs import RUN_MARKER, atomic_write_json
    from trainlab.scaling.sweep import SweepConfig

    pwned = str(h / PWNED)
    (h / "models.py").write_text(MODELS_PY)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 4)).astype(np.float32), rng.integers(0, 3, 10)
    # --data files (x, y) and linreg files (X, t)
    np.savez(h / "good.npz", x=x, y=y)
    (h / "empty.npz").write_bytes(b"")
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y, X=x, t=x[:, 0])
    (h / "truncated.npz").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (h / "text.npz").write_text("x,y\n1,2\n")
    (h / "payload.npz").write_bytes(pickle.dumps(_Payload(pwned)))
    np.savez(h / "member-payload.npz", x=np.array([_Payload(pwned)], dtype=object), y=y,
             X=np.array([_Payload(pwned)], dtype=object), t=x[:, 0])
    np.savez(h / "objects.npz", x=np.array([{"a": 1}, None], dtype=object), y=y[:2],
             X=np.array([{"a": 1}, None], dtype=object), t=x[:2, 0])
    np.savez(h / "no-keys.npz", a=x, b=y)
    np.savez(h / "x-1d.npz", X=x[:, 0], t=x[:, 0])
    np.savez(h / "x-empty.npz", X=x[:0], t=x[:0, 0])
    x_inf = x.copy()
    x_inf[3, 2] = np.inf
    np.savez(h / "x-inf.npz", X=x_inf, t=x[:, 0])
    np.savez(h / "y-float.npz", x=x, y=np.full(10, 0.5))
    np.savez(h / "y-negative.npz", x=x, y=np.where(np.arange(10) == 4, -1, y))
    np.savez(h / "y-huge.npz", x=x, y=np.where(np.arange(10) == 4, 10**12, y))
    np.savez(h / "lengths.npz", X=x, t=x[:9, 0], x=x, y=y[:9])
    np.savez(h / "x-bool.npz", X=x > 0, t=x[:, 0])
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000000,), }"
    header += " " * (63 - len(header) % 64) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(64)
    import zipfile

    with zipfile.ZipFile(h / "claims-huge.npz", "w") as z:
        for key in ("x", "y", "X", "t"):
            z.writestr(f"{key}.npy", npy)
    os.mkfifo(h / "fifo.npz")
    for name in ("unreadable.npz", "unreadable.png"):  # root reads through chmod 000: /proc/self/mem is EIO
        os.symlink("/proc/self/mem", h / name)
    os.symlink(h / "nowhere.npz", h / "dangling.npz")
    (h / "folder.npz").mkdir()
    # images
    photo = b"".join(b"\x00" + bytes(range(i, i + 16)) for i in range(12))  # a grey ramp, 16×12
    (h / "photo.png").write_bytes(_png(16, 12, photo))
    (h / "text.png").write_text("this is not an image\n")
    good = _png(64, 64, b"".join(b"\x00" + bytes([i] * 64) for i in range(64)))
    (h / "truncated.png").write_bytes(good[: len(good) // 2])
    (h / "empty.png").write_bytes(b"")
    (h / "bomb.png").write_bytes(_png(60000, 60000))
    (h / "folder.png").mkdir()
    os.mkfifo(h / "fifo.png")
    (h / "payload.png").write_bytes(pickle.dumps(_Payload(pwned)))
    for folder, content in (("images-text", b"not an image"), ("images-truncated", good[:100]),
                            ("images-bomb", _png(60000, 60000))):
        (h / folder).mkdir()
        for i in range(3):
            (h / folder / f"im{i}.png").write_bytes(content)
    (h / "images-none").mkdir()
    (h / "images-none" / "notes.txt").write_text("no images here")
    # CIFAR-10 archives
    (h / "cifar-garbage.tar.gz").write_bytes(b"\x1f\x8b garbage")
    members = {f"cifar-10-batches-py/{n}": pickle.dumps(_Payload(pwned), protocol=2)
               for n in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")}
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (h / "cifar-payload.tar.gz").write_bytes(tar_buf.getvalue())
    (h / "cifar-truncated.tar.gz").write_bytes(tar_buf.getvalue()[:200])
    with tarfile.open(h / "cifar-empty.tar.gz", "w:gz"):
        pass
    (h / "cifar-ok").mkdir()  # a valid CIFAR-10 folder: 4 images a batch, every category
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"):
        batch = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), b"labels": list(range(10)) * 2}
        (h / "cifar-ok" / name).write_bytes(pickle.dumps(batch, protocol=2))
    (h / "cifar-payload-folder" / "cifar-10-batches-py").mkdir(parents=True)
    for name, data in members.items():
        (h / "cifar-payload-folder" / name).write_bytes(data)
    # a valid colourize run (written by trainlab's own writers, untrained) and its spoiled copies
    config = TrainConfig(model="pool", num_filters=4, num_colours=5, patch_size=8, epochs=1, batch_size=12,
                         max_train=24, max_valid=8, num_crops=48)
    model = build_model("pool", num_filters=4, num_colours=5)
    palette = Palette(torch.linspace(0.05, 0.95, 15).reshape(5, 3))

    def colour_run(name: str) -> Path:
        run = h / name
        run.mkdir()
        (run / RUN_MARKER).write_text("trainlab colourize-pool run folder\n")
        from dataclasses import asdict

        atomic_write_json(run / "config.json", asdict(config))
        palette.save(run / "palette.npy")
        _save_checkpoint(run / "checkpoint.pt", model, torch.optim.SGD(model.parameters(), lr=0.1), 1, 2,
                         0.0, [])
        return run

    colour_run("crun")
    for spoil in RUN_SPOILS:
        run = colour_run(f"run-{spoil}")
        ckpt, pal, cfg = run / "checkpoint.pt", run / "palette.npy", run / "config.json"
        raw = ckpt.read_bytes()
        if spoil == "ckpt-payload":
            torch.save({"model": _Payload(pwned)}, ckpt)
        elif spoil == "ckpt-raw-payload":
            ckpt.write_bytes(pickle.dumps({"model": _Payload(pwned)}))
        elif spoil == "ckpt-truncated":
            ckpt.write_bytes(raw[: len(raw) // 2])
        elif spoil == "ckpt-empty":
            ckpt.write_bytes(b"")
        elif spoil == "ckpt-text":
            ckpt.write_text("weights: none\n")
        elif spoil == "ckpt-folder":
            ckpt.unlink()
            ckpt.mkdir()
        elif spoil == "ckpt-list":
            torch.save([torch.zeros(3)], ckpt)
        elif spoil == "ckpt-shapes":
            other = build_model("pool", num_filters=8, num_colours=5)
            torch.save({"model": other.state_dict()}, ckpt)
        elif spoil == "ckpt-missing":
            ckpt.unlink()
        elif spoil == "ckpt-unreadable":
            ckpt.unlink()
            os.symlink("/proc/self/mem", ckpt)
        elif spoil == "palette-objects":
            np.save(pal, np.array([[{"r": 1}] * 3] * 5, dtype=object), allow_pickle=True)
        elif spoil == "palette-nan":
            np.save(pal, np.full((5, 3), np.nan, dtype=np.float32))
        elif spoil == "palette-shape":
            np.save(pal, np.zeros((5, 4), dtype=np.float32))
        elif spoil == "palette-payload":
            pal.write_bytes(pickle.dumps(_Payload(pwned)))
        elif spoil == "palette-count":
            np.save(pal, np.zeros((7, 3), dtype=np.float32))
        elif spoil == "config-garbage":
            cfg.write_text("{model: pool")
        elif spoil == "config-deep":
            cfg.write_text("[" * 100_000 + "]" * 100_000)
        elif spoil == "config-list":
            cfg.write_text("[]")
        elif spoil in ("config-model", "config-types", "config-huge", "config-nan"):
            d = json.loads(cfg.read_text())
            d.update({"config-model": {"model": "resnet"}, "config-types": {"epochs": "many"},
                      "config-huge": {"num_filters": 10**7}, "config-nan": {"lr": float("nan")}}[spoil])
            cfg.write_text(json.dumps(d))
        elif spoil == "config-binary":
            cfg.write_bytes(b"\xff\xfe{\x00")
        elif spoil == "config-fifo":
            cfg.unlink()
            os.mkfifo(cfg)
        elif spoil == "config-unreadable":
            cfg.unlink()
            os.symlink("/proc/self/mem", cfg)
    # verify run folders, spoiled
    for spoil, data in RESULT_SPOILS.items():
        run = h / f"vrun-{spoil}"
        run.mkdir()
        (run / RUN_MARKER).write_text("trainlab verify run folder\n")
        (run / "results.json").write_bytes(data)
    for name in ("vrun-fifo", "vrun-folder", "vrun-unreadable"):
        run = h / name
        run.mkdir()
        (run / RUN_MARKER).write_text("trainlab verify run folder\n")
    os.mkfifo(h / "vrun-fifo" / "results.json")
    (h / "vrun-folder" / "results.json").mkdir()
    os.symlink("/proc/self/mem", h / "vrun-unreadable" / "results.json")
    # sweep run folders
    sweep = SweepConfig(batch_sizes=(4, 8), seeds=(1,), targets=(0.5,), max_steps=30).to_json()
    for spoil in [*SWEEP_SPOILS, "ok"]:
        run = h / f"sweep-{spoil}"
        run.mkdir()
        (run / RUN_MARKER).write_text("trainlab scaling-sweep run folder\n")
        cfg = run / "sweep.json"
        cfg.write_text(json.dumps(sweep))
        points = run / "points.jsonl"
        if spoil == "ok":  # points as the sweep writes them: fewer steps at the larger batch size
            points.write_text("".join(
                json.dumps({"key": f"B={b}/k={k}/seed=1", "batch_size": b, "lr_index": k,
                            "lr": 0.05 * 2 ** (k / 2), "seed": 1, "optimizer": "sgd", "targets": [0.5],
                            "steps_to_target": [int(400 / b * (1 + abs(k - 4)))], "final_loss": 0.4,
                            "steps_run": 30, "diverged": False, "censored": False, "examples_seen": 30 * b,
                            "seconds": 0.1}) + "\n"
                for b in (4, 8) for k in sweep["lr_indices"]))
        elif spoil == "config-garbage":
            cfg.write_text("{batch_sizes: [4")
        elif spoil == "config-deep":
            cfg.write_text("[" * 100_000 + "]" * 100_000)
        elif spoil == "config-list":
            cfg.write_text("[4, 8]")
        elif spoil == "config-values":
            cfg.write_text(json.dumps({**sweep, "batch_sizes": [-4]}))
        elif spoil == "config-nan":
            cfg.write_text(json.dumps({**sweep, "lr_base": float("nan")}))
        elif spoil == "config-binary":
            cfg.write_bytes(b"\xff\xfe{")
        elif spoil == "points-garbage":
            points.write_text("garbage\n{\"key\": \n[1, 2]\n")
        elif spoil == "points-binary":
            points.write_bytes(b"\xff\xfe\x00\x01\n")
        elif spoil == "points-nan":
            points.write_text("".join(json.dumps({"key": f"B={b}/k=0/seed=1", "batch_size": b, "lr_index": 0,
                                                  "lr": float("nan"), "seed": 1, "optimizer": "sgd",
                                                  "targets": [0.5], "steps_to_target": [3]}) + "\n"
                                      for b in (4, 8)))
        elif spoil == "points-wrong":
            points.write_text('{"a": 1}\n{"key": 5}\n')
        elif spoil == "points-deep":
            points.write_text("[" * 100_000 + "]" * 100_000 + "\n")
        elif spoil == "points-folder":
            points.mkdir()
    # outputs
    (h / "a-folder.png").mkdir()
    (h / "a-folder.json").mkdir()
    (h / "a-file").write_text("a regular file\n")
    for ext in (".json", ".png", ".txt"):
        (h / f"existing{ext}").write_text("the user's own file\n")
    os.symlink(h / "nowhere", h / "dangling")
    for ext in (".json", ".png"):
        os.symlink(h / f"nowhere{ext}", h / f"dangling{ext}")
    (h / "a-full-folder").mkdir()
    (h / "a-full-folder" / "thesis.tex").write_text("the user's thesis\n")


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under ``root``: its mode and, for a regular file, its SHA-256."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            st = os.lstat(p)
            digest = ""
            if os.path.isfile(p) and not os.path.islink(p):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            out[os.fsencode(p.relative_to(root)).decode("utf-8", "backslashreplace")] = (st.st_mode, digest)
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The hostile folder and the snapshot each case is compared with (updated after every case, so
    that one case's damage is reported once, not by every case after it)."""
    h = tmp_path_factory.mktemp("hostile")
    _make_hostile_folder(h)
    from trainlab.scaling.sweep import load_sweep

    config, points = load_sweep(h / "sweep-ok")
    assert len(points) == 2 * len(config.lr_indices), "the sweep-ok points no longer read as points"
    return h, {"snapshot": _snapshot(h)}


@pytest.fixture(autouse=True)
def _crash_files_elsewhere(tmp_path_factory, monkeypatch):
    """An internal error's traceback goes to a folder of its own, not into a run folder of the campaign."""
    monkeypatch.setenv("TRAINLAB_CRASH_DIR", str(tmp_path_factory.mktemp("crashes")))


def _argv(case: Case, h: Path) -> list[str]:
    return [a.replace("{H}", str(h)) for a in case.argv]


class _TooLong(BaseException):
    """Raised by the alarm: a BaseException, so that main does not report it as an internal error."""


def _check(case: Case, hostile, work: Path, capsys) -> None:
    h, state = hostile
    old = os.getcwd()
    os.chdir(work)

    def too_long(signum, frame):
        raise _TooLong(f"{case.id} ran for 30 s instead of being refused")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(30)
    try:
        code = main(_argv(case, h))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(old)
    captured = capsys.readouterr()
    before, after = state["snapshot"], _snapshot(h)
    state["snapshot"] = after
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    err = captured.err.strip()
    assert code == 2, (case.id, code, err)
    assert err and "\n" not in err and "Traceback" not in err, (case.id, err)
    assert err.startswith("trainlab"), (case.id, err)
    for word in case.expect:
        assert word in err, (case.id, word, err)
    assert captured.out == "", (case.id, "printed on stdout", captured.out[:200])
    assert list(work.iterdir()) == [], (case.id, "left behind", sorted(p.name for p in work.iterdir()))
    assert not (h / PWNED).exists(), (case.id, "ran code from a file")
    assert not changed, (case.id, "changed the campaign's files", changed[:5])


#: Cases that fail today in files of other parts, reported to their owners: expected to fail (strict,
#: so that a fix shows up here), instead of being left out of the count.
KNOWN: dict[str, str] = {}
#: Cases that run for seconds before they end: in the slow run only.
SLOW: set[str] = set()
ALL_CASES = [Case(c.group, c.name, c.argv, c.expect, slow=c.slow or c.id in SLOW) for c in ALL_CASES]


def _param(c: Case):
    marks = [pytest.mark.xfail(reason=KNOWN[c.id], strict=True)] if c.id in KNOWN else []
    return pytest.param(c, marks=[*marks, *([pytest.mark.slow] if c.slow else [])])


FAST = [c for c in ALL_CASES if not c.slow]


def test_the_campaign_has_at_least_300_cases():
    groups = Counter(c.id.split(" ")[0].split(":")[0] for c in ALL_CASES)
    print(f"\nhostile-input campaign: {len(ALL_CASES)} cases ({len(FAST)} in the default run): "
          + ", ".join(f"{g} {n}" for g, n in sorted(groups.items())))
    assert len(ALL_CASES) >= 300 and set(KNOWN) <= {c.id for c in ALL_CASES}
    assert len({c.id for c in ALL_CASES}) == len(ALL_CASES), "two cases share an id"
    commands = {" ".join(BASE[k][:2]) if k not in ("list", "verify", "report") else k for k in BASE}
    assert {c.group for c in ALL_CASES} == set(BASE) and len(commands) == len(BASE)


@pytest.mark.parametrize("case", [_param(c) for c in ALL_CASES], ids=lambda c: c.id)
def test_a_hostile_input_is_one_line_and_exit_2_and_changes_nothing(case, hostile, tmp_path, capsys):
    _check(case, hostile, tmp_path, capsys)


# ---------------------------------------------------------------------------------------------
# A full disk: RLIMIT_FSIZE in a subprocess (a write past the limit fails with EFBIG; Python ignores
# SIGXFSZ), so every file trainlab writes is cut short where a full disk would cut it.

FULL_DISK: list[tuple[str, tuple[str, ...], str, bool]] = [
    # (name, argv, the flag the one line names, slow)
    ("convnets summary --output", ("convnets", "summary", "conv3-64, conv3-64, maxpool, fc-10", "--input",
                                   "3x32x32", "--output", "table.md"), "--output", False),
    ("optim path --output", ("optim", "path", "--x", "2,1", "--t", "1", "--steps", "50", "--output",
                             "path.png"), "--output", True),
    ("verify --out", ("verify", "convnets.by-hand", "--out", "run"), "--out", True),
    ("scaling nqm --figure", ("scaling", "nqm", "--dim", "10", "--batch-sizes", "1,4", "--figure", "n.png"),
     "--figure", True),
    ("loops lr-find --output", ("loops", "lr-find", "--problem", "linreg", "--steps", "10", "--output",
                                "lr.png"), "--output", True),
    ("colourize predict --output", ("colourize", "predict", "{H}/crun", "{H}/photo.png", "--output",
                                    "big.bmp"), "--output", True),
]


def _full_disk(limit: int):
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.parametrize("name, argv, flag", [
    pytest.param(n, a, f, marks=[pytest.mark.slow] if slow else []) for n, a, f, slow in FULL_DISK],
    ids=[n for n, *_ in FULL_DISK])
def test_a_full_disk_is_one_line_and_leaves_no_partial_file(name, argv, flag, hostile, tmp_path):
    h, _ = hostile
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TRAINLAB_CRASH_DIR": str(tmp_path / "crashes"),
           "COLUMNS": "100"}
    (tmp_path / "crashes").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    cmd = [sys.executable, "-m", "trainlab", *(a.replace("{H}", str(h)) for a in argv)]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=_full_disk(600))
    err = proc.stderr.strip()
    assert proc.returncode == 2, (name, proc.returncode, err)
    assert err and "\n" not in err and "Traceback" not in err, (name, err)
    assert flag in err and "File too large" in err, (name, err)
    left = sorted(str(p.relative_to(work)) for p in work.rglob("*") if not p.is_dir())
    # a run folder may stay as trainlab made it (its marker, written whole, and empty folders); no
    # other file, no temporary file
    assert left in ([], ["run/.trainlab-run"]), (name, left)


# ---------------------------------------------------------------------------------------------
# The valid invocations the cases spoil: each must succeed, or a case could pass for a reason other
# than the one thing it spoils.

#: Bases that run in a second or two stay in the default run; the others (training) are slow.
QUICK_BASES = set(BASE) - {"colourize compare", "scaling sweep"}


def _no_fifos(folder: str, names: list[str]) -> list[str]:
    import stat

    return [n for n in names if stat.S_ISFIFO(os.lstat(os.path.join(folder, n)).st_mode)]


@pytest.mark.parametrize("command", [pytest.param(c, marks=[] if c in QUICK_BASES else [pytest.mark.slow])
                                     for c in sorted(BASE)])
def test_each_invocation_the_cases_spoil_is_valid(command, hostile, tmp_path, capsys):
    import shutil

    h, _ = hostile
    copy = tmp_path / "h"
    shutil.copytree(h, copy, symlinks=True, ignore=_no_fifos)  # a copy: a valid run may write its outputs
    work = tmp_path / "work"
    work.mkdir()
    old = os.getcwd()
    os.chdir(work)
    try:
        if command == "report":
            assert main(["verify", "convnets.by-hand", "--out", str(copy / "vrun-ok")]) == 0
        code = main([a.replace("{H}", str(copy)) for a in BASE[command]])
    finally:
        os.chdir(old)
    assert code == 0, (command, capsys.readouterr().err[-2000:])


# ---------------------------------------------------------------------------------------------
# Bugs the campaign found, beside their cases above: the fix's own arithmetic checked.

def test_solve_padding_in_closed_form_lists_what_the_search_over_paddings_found():
    """`solve-padding 32 16 -k 1e15` never ended: it tried every padding up to k/2. The closed form
    gives the same solutions, in the same order, as the definition searched by brute force."""
    import itertools

    from trainlab.errors import ShapeError
    from trainlab.shapes import conv_output_size, conv_transpose_output_size, solve_padding

    def transposed_size(h: int, k: int, s: int, p: int, d: int, op: int) -> int | None:
        try:
            return conv_transpose_output_size(h, k, s, p, d, op)
        except ShapeError:  # no positive output
            return None

    checked = 0
    for h, h_out, k, s, d in itertools.product(range(1, 10), range(1, 20), range(1, 5), range(1, 4),
                                               range(1, 3)):
        reach = d * (k - 1)
        conv = [(p, 0) for p in range((h_out * s + reach) // 2 + 2)
                if h + 2 * p - reach - 1 >= 0 and conv_output_size(h, k, s, p, d) == h_out]
        tconv = [(p, op) for op in range(max(s, d)) for p in range((h - 1) * s + reach + 2)
                 if transposed_size(h, k, s, p, d, op) == h_out]
        for transposed, expected in ((False, conv), (True, sorted(tconv, key=lambda t: t[1]))):
            try:
                found = [tuple(x) for x in solve_padding(h, h_out, k, s, d, transposed=transposed)]
            except ShapeError:
                found = []
            assert found == expected, (h, h_out, k, s, d, transposed)
            checked += 1
    assert checked == 2 * 9 * 19 * 4 * 3 * 2
    assert solve_padding(32, 16, 10**15 + 1, 1)[0].padding == (10**15 - 16) // 2  # 32 + 2p − 10^15 − 1 = 15

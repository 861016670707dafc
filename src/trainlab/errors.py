"""The exception tree.

User mistakes raise a :class:`TrainlabError` subclass whose message is one line that
names the argument, shows its value and says what would be valid; the CLI prints it and
exits 2. Bugs raise ordinary exceptions and keep their tracebacks.

    TrainlabError
    ├── ArgumentError   a bad value for a named argument or option
    ├── SpecError       a network spec string that does not parse
    ├── ShapeError      sizes that no layer can produce (non-positive output, channels)
    ├── DataError       a missing, unreadable, tampered or wrongly shaped data file
    ├── OutputError     a path the user named cannot be written (read-only, a folder, disk full)
    └── ResourceError   work too large for this machine (its estimate is in the message)

Where trainlab runs the user's code (a factory, a model's forward pass traced by the
convnets rules), what that code raises is the user's mistake, but a bug of trainlab's own
code raised inside the same call is not: :func:`raised_by_trainlab` tells them apart, so
that a rule's bug exits 3 ("internal error, please report") instead of blaming the model.
"""

from __future__ import annotations

import os
import sysconfig
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "ArgumentError",
    "DataError",
    "OutputError",
    "ResourceError",
    "ShapeError",
    "SpecError",
    "TrainlabError",
    "raised_by_trainlab",
]


class TrainlabError(Exception):
    """A mistake in what the user asked for. The CLI maps it to exit code 2."""

    exit_code = 2


class ArgumentError(TrainlabError, ValueError):
    """``argument`` got ``value``; ``valid`` says what it accepts.

    >>> str(ArgumentError("--scale", "huge", "one of: quick, full"))
    "--scale='huge' is not valid: expected one of: quick, full"
    """

    def __init__(self, argument: str, value: Any, valid: str):
        self.argument, self.value, self.valid = argument, value, valid
        super().__init__(f"{argument}={value!r} is not valid: expected {valid}")


class SpecError(TrainlabError, ValueError):
    """A spec string that does not parse; the message names the token and its position."""


class ShapeError(TrainlabError, ValueError):
    """Sizes that cannot be realised; the message names the layer and the arithmetic."""


class DataError(TrainlabError):
    """A data file that is missing, unreadable, unsafe or of the wrong shape."""


class OutputError(TrainlabError, OSError):
    """``argument`` names ``path``, which cannot be written; ``reason`` says why.

    >>> str(OutputError("--out", "/ro/run", "the file system is read-only"))
    "--out='/ro/run' cannot be written: the file system is read-only"
    """

    def __init__(self, argument: str, path: str, reason: str):
        self.argument, self.path, self.reason = argument, path, reason
        Exception.__init__(self, f"{argument}={path!r} cannot be written: {reason}")

    def __str__(self) -> str:
        return str(self.args[0])


class ResourceError(TrainlabError):
    """Work whose estimated memory (or time) exceeds what this machine has.

    >>> print(ResourceError("--seeds", 10**9, "about 19.5 GB", "8.1 GB is available"))
    --seeds=1000000000 needs about 19.5 GB but 8.1 GB is available: use a smaller value
    """

    def __init__(self, argument: str, value: Any, estimate: str, available: str,
                 advice: str = "use a smaller value"):
        self.argument, self.value, self.estimate, self.available = argument, value, estimate, available
        super().__init__(f"{argument}={value!r} needs {estimate} but {available}: {advice}")


# ---------------------------------------------------------------------------------------------
# Whose code raised: the user's, a library's, or trainlab's own.

#: trainlab's own dependencies (pyproject.toml), by import name: tools it calls, never the user's model.
_TOOLS = frozenset({"torch", "numpy", "matplotlib", "rich", "click", "sympy", "mpmath", "skimage", "sklearn",
                    "scipy", "PIL"})

#: What torch's Python checks raise for shapes or values they refuse: the model's input at fault,
#: even when a trainlab rule made the call on the model's behalf. A bug of trainlab's own raises
#: the others (AttributeError, KeyError, NameError, ZeroDivisionError, ...).
_REFUSALS = (RuntimeError, ValueError, IndexError, TypeError, AssertionError)

_TRAINLAB_FOLDER = os.path.join(os.path.dirname(os.path.realpath(__file__)), "")


@cache
def _stdlib_folders() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple({os.path.join(os.path.realpath(paths[k]), "") for k in ("stdlib", "platstdlib")
                  if paths.get(k)})


def _owner(filename: str) -> str:
    """Whose code a frame runs: 'trainlab'; 'tool' (the standard library or a dependency of trainlab:
    torch, numpy, ...); 'library' (another installed package, which a model may be made of:
    torchvision, timm); or 'user' (any other file: the user's own)."""
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, but <string> is code the user ran
        return "user" if filename.startswith("<string") else "tool"
    path = os.path.realpath(filename)
    if path.startswith(_TRAINLAB_FOLDER):
        return "trainlab"
    parts = Path(path).parts
    installed = [i for i, part in enumerate(parts) if part in ("site-packages", "dist-packages")]
    if installed and installed[-1] + 1 < len(parts):
        top = parts[installed[-1] + 1].removesuffix(".py")
        return "tool" if top in _TOOLS else "library"
    return "tool" if path.startswith(_stdlib_folders()) else "user"


def raised_by_trainlab(e: BaseException) -> bool:
    """Whether ``e``, caught around the user's code, comes from a bug of trainlab's own code.

    The frames below the one that caught ``e`` are read from the raise outwards, skipping the
    standard library and trainlab's dependencies (torch, numpy, ...). The first other frame
    decides. The user's file, or an installed package the model is made of (torchvision,
    timm): the user's code failed (False). A frame of trainlab (a convnets rule, the tracer's
    hooks): trainlab's code failed (True), unless torch refused what that frame passed on from
    the model - a kernel's RuntimeError or "Dimension out of range", or a ValueError (TypeError,
    AssertionError, ...) from torch's Python checks - which is the model's input (False). A
    :class:`TrainlabError` is never a bug: trainlab raised it on purpose.

    A heuristic where the two overlap: a rule that hands torch shapes it should have checked
    shows as the model's error (exit 2), with torch's message naming what was refused.
    """
    if isinstance(e, TrainlabError) or not isinstance(e, Exception):
        return False
    tb = e.__traceback__.tb_next if e.__traceback__ is not None else None  # not the catching frame
    owners = []
    while tb is not None:
        owners.append(_owner(tb.tb_frame.f_code.co_filename))
        tb = tb.tb_next
    for depth, owner in enumerate(reversed(owners)):  # innermost first
        if owner == "tool":
            continue
        if owner != "trainlab":
            return False
        if isinstance(e, RecursionError):
            return True
        if depth == 0:  # raised on trainlab's own line, or by a torch kernel that line called
            return not _kernel_refusal(e)
        return not isinstance(e, _REFUSALS)  # raised in torch's Python code, called by trainlab
    return False


def _kernel_refusal(e: Exception) -> bool:
    """A torch kernel's refusal (it has no Python frame of its own): a RuntimeError (NotImplementedError
    for a missing kernel included), or an IndexError such as "Dimension out of range" - but not
    Python's own "list index out of range", a bug of the line that indexed."""
    if isinstance(e, RuntimeError):
        return True
    return isinstance(e, IndexError) and not str(e).endswith("index out of range")

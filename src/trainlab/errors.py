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
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArgumentError",
    "DataError",
    "OutputError",
    "ResourceError",
    "ShapeError",
    "SpecError",
    "TrainlabError",
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

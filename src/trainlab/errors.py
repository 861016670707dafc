"""The exception tree.

User mistakes raise a :class:`TrainlabError` subclass whose message is one line that
names the argument, shows its value and says what would be valid; the CLI prints it and
exits 2. Bugs raise ordinary exceptions and keep their tracebacks.

    TrainlabError
    ├── ArgumentError   a bad value for a named argument or option
    ├── SpecError       a network spec string that does not parse
    ├── ShapeError      sizes that no layer can produce (non-positive output, channels)
    └── DataError       a missing, unreadable, tampered or wrongly shaped data file
"""

from __future__ import annotations

from typing import Any

__all__ = ["ArgumentError", "DataError", "ShapeError", "SpecError", "TrainlabError"]


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

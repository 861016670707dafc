"""Run folders, atomic writes and run metadata.

Every file trainlab writes goes through :func:`atomic_write_bytes`: the bytes land in a
temporary file in the same folder, are flushed to disk, then renamed over the target, so
a reader (or a crash, or Ctrl-C) never sees half a file.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainlab.errors import ArgumentError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "environment",
    "make_run_dir",
    "read_json",
    "timestamp",
    "to_jsonable",
]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Plain-JSON form of numbers, arrays and tensors.

    NumPy and torch scalars become Python numbers, arrays become nested lists, and
    non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"`` (strict JSON has
    no NaN, and a diverged run must still be recorded).
    """
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    tolist = getattr(obj, "tolist", None)  # numpy arrays/scalars, torch tensors
    if callable(tolist):
        return to_jsonable(tolist())
    item = getattr(obj, "item", None)
    if callable(item):
        return to_jsonable(item())
    raise TypeError(f"cannot store {type(obj).__name__} in JSON: {obj!r}")


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def timestamp() -> str:
    """Current UTC time, ISO-8601 with seconds."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def make_run_dir(out: str | os.PathLike[str] | None, prefix: str, *, argument: str = "--out") -> Path:
    """Create (or reuse) a run folder and check it is writable.

    ``out=None`` makes ``runs/<prefix>-<UTC time>`` in the current folder. A folder that
    cannot be created or written raises :class:`ArgumentError` naming ``argument``.
    """
    if out is None:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{prefix}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = Path("runs") / f"{prefix}-{stamp}-{n}"
    else:
        path = Path(out)
    if path.exists() and not path.is_dir():
        raise ArgumentError(argument, str(out), "a folder (this path is an existing file)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ArgumentError(argument, str(out), f"a writable folder ({e.strerror or e})") from None
    return path


def environment() -> dict[str, Any]:
    """Versions and hardware facts recorded with every run."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "platform": platform.platform(),
    }

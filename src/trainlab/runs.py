"""Run folders, atomic writes and run metadata.

Every file trainlab writes goes through :func:`atomic_write_bytes`: the bytes land in a
temporary file in the same folder, are flushed to disk, then renamed over the target, so
a reader (or a crash, or Ctrl-C) never sees half a file. Files get the mode the umask
gives (0644 under umask 022), as ``open()`` would.

Run folders (:func:`prepare_run_dir`) are never silently reused: a folder that already
holds a run is refused unless the user says ``--resume`` (continue it) or ``--overwrite``
(replace it whole); ``--overwrite`` only ever deletes a folder that trainlab made.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import math
import os
import platform
import shutil
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trainlab.errors import ArgumentError, OutputError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_output_file",
    "check_run_dir",
    "environment",
    "describe_os_error",
    "file_mode",
    "is_users_os_error",
    "last_run_dir",
    "output_errors",
    "path_is_named",
    "prepare_run_dir",
    "read_json",
    "timestamp",
    "to_jsonable",
]

#: The file that marks a folder as a trainlab run (written first, by prepare_run_dir).
RUN_MARKER = ".trainlab-run"


def file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask



def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes 0600 whatever the umask
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
    """The JSON in ``path``. What does not decode raises ValueError (json's JSONDecodeError, the
    UnicodeDecodeError of bytes that are not UTF-8, and nesting too deep for the parser, which
    would otherwise end in a RecursionError), so a caller's ``except ValueError`` catches them all."""
    with open(path, encoding="utf-8") as f:
        try:
            text = f.read()
        except OSError as e:  # a read error names no file: name it
            raise type(e)(e.errno, e.strerror, os.fspath(path)) from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply to read") from None


def timestamp() -> str:
    """Current UTC time, ISO-8601 with seconds."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def describe_os_error(e: OSError) -> str:
    reasons = {errno.EROFS: "the file system is read-only", errno.ENOSPC: "no space is left on the device",
               errno.EISDIR: "it is a folder", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied", errno.ENOTDIR: "a part of the path is a file",
               errno.ENAMETOOLONG: "the name is too long", errno.EDQUOT: "the disk quota is exceeded"}
    return reasons.get(e.errno or 0, e.strerror or str(e))


#: OS errors that say what the machine or the file system refuses, whatever the path: the user's to fix.
_ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                                 errno.EFBIG, errno.EMFILE, errno.ENFILE, errno.EIO, errno.ENAMETOOLONG})


def is_users_os_error(e: OSError, paths: Iterable[str | os.PathLike[str]]) -> bool:
    """Whether ``e`` is the user's to fix: the disk, a quota or a permission refused it, or its file
    is one of ``paths`` (see :func:`path_is_named`). Any other file failing (one inside the
    package, one trainlab chose) is trainlab's bug."""
    if e.errno in _ENVIRONMENT_ERRNOS:
        return True
    return e.filename is not None and path_is_named(e.filename, paths)


def path_is_named(filename: str | bytes | os.PathLike[str], paths: Iterable[str | os.PathLike[str]]) -> bool:
    """Whether ``filename`` is one of ``paths``, lies inside one (a file of a named folder) or above
    one (a parent folder made for it)."""
    target = os.path.abspath(os.fsdecode(filename))
    for path in paths:
        text = os.fspath(path)
        if not text.strip():
            continue
        named = os.path.abspath(text)
        if target == named or target.startswith(os.path.join(named, "")) or named.startswith(
                os.path.join(target, "")):
            return True
    return False


@contextmanager
def output_errors(argument: str, path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an OS error while writing the user's ``path`` into a one-line :class:`OutputError`;
    one on another file (not the user's: a bug) is left to reach the CLI as it is."""
    try:
        yield
    except OSError as e:
        if not is_users_os_error(e, [path]):
            raise
        raise OutputError(argument, os.fspath(path), describe_os_error(e)) from None


def check_output_file(argument: str, path: str | os.PathLike[str], suffixes: Collection[str], *,
                      overwrite: bool, companions: Collection[str] = (),
                      make_folders: bool = True) -> Path:
    """Refuse, before any work, an output file the command could not or should not write.

    ``path`` must end in one of ``suffixes`` (any case), not be a folder, not lie under a
    file, and neither it nor its ``companions`` (the same name with those suffixes, such as
    the ``.json`` beside a figure) may exist unless ``overwrite``. Missing folders are made
    when the file is written, or refused with ``make_folders=False``. Each refusal is an
    :class:`ArgumentError` naming ``argument``.
    """
    text = os.fspath(path)
    p = Path(text)
    if not text.strip() or p.suffix.lower() not in {s.lower() for s in suffixes} or not p.stem:
        raise ArgumentError(argument, text, "a file name ending in " + ", ".join(suffixes))
    if p.is_dir():
        raise ArgumentError(argument, text, "a file name (this is a folder)")
    if p.is_symlink() and not p.exists():  # writing would replace the link with a file
        raise ArgumentError(argument, text, f"a file name (this is a link to nothing: {os.readlink(p)!r} "
                            "does not exist)")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ArgumentError(argument, text, f"a file in a folder ({parent} is a file)")
    if not make_folders and parent != p.parent:
        raise ArgumentError(argument, text, f"a file in an existing folder ({p.parent} does not exist)")
    existing = [f for f in (p, *(p.with_suffix(c) for c in companions)) if f.exists()]
    if existing and not overwrite:
        raise ArgumentError(argument, text, f"a new file ({existing[0]} exists; add --overwrite to "
                            "replace it)")
    return p


#: The run folder the running command writes, set by prepare_run_dir and cleared by the CLI's main
#: before each command: where a crash report goes (see :func:`last_run_dir`).
_last_run_dir: list[Path] = []


def last_run_dir(*, clear: bool = False) -> Path | None:
    """The run folder :func:`prepare_run_dir` last made or reused (None if none); ``clear`` forgets it.

    The CLI saves an internal error's traceback there, beside the run it broke.
    """
    last = _last_run_dir[-1] if _last_run_dir else None
    if clear:
        _last_run_dir.clear()
    return last


def _is_run_dir(path: Path) -> bool:
    return (path / RUN_MARKER).is_file() or (path / "results.json").is_file()


def check_run_dir(out: str | os.PathLike[str] | None, *, argument: str = "--out", resume: bool = False,
                  overwrite: bool = False) -> Path | None:
    """The refusals of :func:`prepare_run_dir`, with nothing made: a command checks its ``--out``
    with this before its work (loading data), and makes the folder after. None for no ``out``."""
    if resume and overwrite:
        raise ArgumentError("--resume/--overwrite", "both", "at most one of them")
    if out is None:
        return None
    if not os.fspath(out).strip():
        raise ArgumentError(argument, os.fspath(out), "a folder name (an empty path would write "
                            "into the current folder)")
    path = Path(out)
    if path.is_symlink() and not path.exists():
        raise ArgumentError(argument, str(path), "a folder (this path is a link to nothing: "
                            f"{os.readlink(path)!r} does not exist)")
    if path.exists() and not path.is_dir():
        raise ArgumentError(argument, str(path), "a folder (this path is an existing file)")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ArgumentError(argument, str(path), f"a folder in a folder ({parent} is a file)")
    if path.is_dir() and any(path.iterdir()):
        if not _is_run_dir(path):
            raise ArgumentError(argument, str(path), "a new or empty folder (this one holds files "
                                "trainlab did not make; it is never overwritten)")
        if overwrite and not (path / RUN_MARKER).is_file():  # a results.json alone may be another tool's
            raise ArgumentError(argument, str(path), f"a folder trainlab made (it has no {RUN_MARKER}); "
                                "--overwrite empties only those")
        if not overwrite and not resume:
            if not (path / RUN_MARKER).is_file():
                raise ArgumentError(argument, str(path), "a new or empty folder (this one holds a "
                                    f"results.json but no {RUN_MARKER}: if trainlab made it, --resume "
                                    "continues it; trainlab never overwrites it)")
            raise ArgumentError(argument, str(path), "a new folder; this one holds a run: add --resume "
                                "to continue it or --overwrite to replace it")
    return path


def prepare_run_dir(out: str | os.PathLike[str] | None, prefix: str, *, argument: str = "--out",
                    resume: bool = False, overwrite: bool = False) -> Path:
    """Create the run folder ``out`` (or ``runs/<prefix>-<UTC time>``) and check it is writable.

    - a new or empty folder is used as it is;
    - a folder holding a trainlab run needs ``resume`` (kept as it is, to be continued) or
      ``overwrite`` (emptied first, figures included);
    - any other non-empty folder is refused, even with ``overwrite``: trainlab deletes only
      what it made.
    An empty path, a path that is a file (or lies under one) and a folder that cannot be written
    raise :class:`ArgumentError` naming ``argument`` (see :func:`check_run_dir`).
    """
    path = check_run_dir(out, argument=argument, resume=resume, overwrite=overwrite)
    if path is None:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{prefix}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = Path("runs") / f"{prefix}-{stamp}-{n}"
    occupied = path.is_dir() and any(path.iterdir())
    if occupied and overwrite:
        with output_errors(argument, path):
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    # A folder that is resumed keeps what it has: only a folder trainlab starts gets the marker (a
    # results.json without one may be another tool's, which --overwrite must never empty).
    marked = not (resume and occupied)
    with output_errors(argument, path):
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
        marker = path / RUN_MARKER
        if marked and not marker.exists():
            atomic_write_text(marker, f"trainlab {prefix} run folder\n")
    _last_run_dir[:] = [path]
    return path


def environment() -> dict[str, Any]:
    """Versions and hardware facts recorded with every run."""
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "platform": platform.platform(),
    }

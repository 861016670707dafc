"""The results.json schema (public: tests and outside tools read it).

One file per ``trainlab verify`` run, in the run folder. Keys are only ever added,
never renamed. ``checks`` (added in 0.2) lists every judged quantity of a claim with its
relation and bound; ``measured``/``expected``/``tolerance`` keep their 0.1 meaning.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, get_args

__all__ = ["STATUSES", "CheckRecord", "ClaimRecord", "Environment", "Results", "Status", "schema_problems"]

Status = Literal["passed", "failed", "skipped", "error"]
STATUSES: tuple[str, ...] = get_args(Status)


class Environment(TypedDict):
    python: str
    torch: str
    threads: int
    device: str


class CheckRecord(TypedDict):
    name: str
    measured: Any
    expected: Any
    tolerance: Any
    relation: str
    bound: Any
    passed: bool


class ClaimRecord(TypedDict):
    id: str
    section: str
    statement: str
    status: Status
    measured: dict[str, Any]
    expected: dict[str, Any]
    tolerance: dict[str, Any]
    summary: str
    seconds: float
    figures: list[str]
    checks: list[CheckRecord]


class _ResultsRequired(TypedDict):
    trainlab_version: str
    created: str
    scale: Literal["quick", "full"]
    seed: int
    environment: Environment
    claims: list[ClaimRecord]


class Results(_ResultsRequired, total=False):
    interrupted: bool  # some claim the run was asked for has not finished (see ``pending``)
    pending: list[str]  # those claims, for a later --resume with other patterns


def _missing(obj: Any, keys: Any) -> list[str]:
    return [k for k in keys if not isinstance(obj, dict) or k not in obj]


def schema_problems(results: Any) -> list[str]:
    """What is wrong with ``results`` against the schema (empty when it conforms)."""
    if not isinstance(results, dict):
        return ["results is not a JSON object"]
    problems = [f"missing key {k!r}" for k in _missing(results, _ResultsRequired.__annotations__)]
    if problems:
        return problems
    if results["scale"] not in ("quick", "full"):
        problems.append(f"scale {results['scale']!r} is not quick or full")
    if not isinstance(results["seed"], int):
        problems.append("seed is not an integer")
    problems += [f"environment: missing key {k!r}"
                 for k in _missing(results["environment"], Environment.__annotations__)]
    if not isinstance(results["claims"], list):
        return [*problems, "claims is not a list"]
    required = [k for k in ClaimRecord.__annotations__ if k != "checks"]  # absent in 0.1 files
    if not isinstance(results["environment"], dict):
        problems.append("environment is not an object")
    for key in ("trainlab_version", "created"):
        if not isinstance(results[key], str):
            problems.append(f"{key} is not a string")
    pending = results.get("pending", [])
    if not isinstance(pending, list) or not all(isinstance(cid, str) for cid in pending):
        problems.append("pending is not a list of claim ids")
    for i, c in enumerate(results["claims"]):
        missing = _missing(c, required)
        problems += [f"claims[{i}]: missing key {k!r}" for k in missing]
        if missing:
            continue
        if c.get("status") not in STATUSES:
            problems.append(f"claims[{i}]: status {c.get('status')!r} is not one of {', '.join(STATUSES)}")
        for key, kind, what in _CLAIM_TYPES:
            value = c[key]
            if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
                problems.append(f"claims[{i}]: {key} is not {what}")
        if isinstance(c["figures"], list) and not all(_file_name(f) for f in c["figures"]):
            problems.append(f"claims[{i}]: figures is not a list of file names (relative paths "
                            "without NUL bytes, each part at most 255 bytes)")
    return problems


def _file_name(name: object) -> bool:
    """A figure path that can name a file at all: a string without NUL bytes whose parts fit a
    file system's 255-byte limit (whether it lies inside the run folder is the report's check)."""
    if not isinstance(name, str) or not name or "\0" in name:
        return False
    try:
        return all(len(part.encode()) <= 255 for part in name.split("/"))
    except UnicodeEncodeError:  # a lone surrogate from a hand edit
        return False


#: (key, type, in words) of every claim record key the reports read.
_CLAIM_TYPES = (("id", str, "a string"), ("section", str, "a string"), ("statement", str, "a string"),
                ("summary", str, "a string"), ("seconds", (int, float), "a number"),
                ("measured", dict, "an object"), ("expected", dict, "an object"),
                ("tolerance", dict, "an object"), ("figures", list, "a list"))

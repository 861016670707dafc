"""Every public module declares ``__all__`` and every name in it exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import trainlab

# Private helpers (a leading underscore) have no public surface to pin; leave them out
# instead of letting their tests pass without asserting anything.
MODULES = sorted(m.name for m in pkgutil.walk_packages(trainlab.__path__, "trainlab.")
                 if not m.name.endswith("__main__") and not m.name.rsplit(".", 1)[-1].startswith("_"))


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_all_and_every_name_exists(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"


FRAME = {
    "trainlab.checks": ["Check", "Checks", "format_number"],
    "trainlab.results": ["STATUSES", "CheckRecord", "ClaimRecord", "Environment", "Results", "Status",
                         "schema_problems"],
    "trainlab.seeding": ["derive_seed", "forked_rng", "generator", "numpy_rng"],
    "trainlab.errors": ["ArgumentError", "DataError", "OutputError", "ResourceError", "ShapeError",
                        "SpecError", "TrainlabError", "raised_by_trainlab"],
}


@pytest.mark.parametrize("name", sorted(FRAME))
def test_the_frames_public_names_are_what_they_should_be(name):
    assert sorted(importlib.import_module(name).__all__) == sorted(FRAME[name])


def test_there_are_public_modules_to_check():
    assert len(MODULES) > 30 and "trainlab.claims" in MODULES

"""Every public module declares ``__all__`` and every name in it exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import trainlab

MODULES = sorted(m.name for m in pkgutil.walk_packages(trainlab.__path__, "trainlab.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_all_and_every_name_exists(name):
    module = importlib.import_module(name)
    if name.rsplit(".", 1)[-1].startswith("_"):
        return  # private helpers: no public surface to pin
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"

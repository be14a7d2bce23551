"""Each package's ``__all__`` names only what exists, so ``from x import *`` and the docs stay honest."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import app
import channels
import models


def _modules() -> list[str]:
    names = []
    for package in (app, channels, models):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            if ".piccolo_migrations" not in info.name and not info.name.endswith("__main__"):
                names.append(info.name)
    return names


@pytest.mark.parametrize("module_name", _modules())
def test_all_names_exist(module_name: str) -> None:
    """Every name in a module's __all__ is defined by it, and the module declares __all__."""
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} declares no __all__"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names missing objects: {missing}"


def test_channels_imports_no_framework() -> None:
    """The relay package imports neither Litestar, Piccolo, nor the app or models packages."""
    import subprocess
    import sys

    code = (
        "import sys, channels, channels.redis, channels.hub\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('litestar', 'piccolo', 'app', 'models')]\n"
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""

"""Old module paths that users' notebooks, saved MLflow models and checkpoints still name.

The code moved into domain packages (latentsci.molecules, latentsci.fields subpackages); each
old dotted path here is an alias of its new module, not a copy: `import latentsci.models.vae`
returns `latentsci.molecules.vae.model` itself, so classes compare equal and pickles saved
under the old names load. New code imports the new paths only (tests/test_layout.py checks).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

# old module -> its home now
MOVED: dict[str, str] = {
    "latentsci.fields.sources": "latentsci.fields.data.sources",
}


class _Alias(importlib.abc.Loader):
    """Loads an old path by importing the new module and registering it under both names."""

    def __init__(self, target: str):
        self.target = target
        self.spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.spec = module.__spec__  # the import system overwrites it with the alias's spec
        return module

    def exec_module(self, module) -> None:
        """Nothing to run (the new module ran when imported); give it its own spec back."""
        module.__spec__ = self.spec


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Answers imports of moved paths before the file system is searched."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(MOVED[fullname]))


def install() -> None:
    """Put the finder first on sys.meta_path (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())

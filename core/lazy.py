"""Public names of a package imported on first use (PEP 562), so that importing the package (and
enabling the Blender extension) loads nothing heavy."""

from __future__ import annotations

from importlib import import_module
from typing import Callable


def lazy_attributes(package: str, public: dict[str, str]) -> Callable[[str], object]:
    """The module ``__getattr__`` of ``package``: a name of ``public`` (name → the module that
    defines it, relative to ``package``) is imported from its module when first asked for.

    Raises (from the returned function):
        AttributeError: a name ``public`` does not hold.
    """
    def __getattr__(name: str):
        if name in public:
            return getattr(import_module(public[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__

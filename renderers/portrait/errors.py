"""The portrait animator's user-fixable error.

One class for both photo renderers: the neural renderer (``renderers/neural/crop.py``) defined
``PortraitError(EmoflameError, ValueError)`` first, and a second class of the same name would
make ``except PortraitError`` miss half the cases. It belongs in ``core/errors.py`` beside the
other user-fixable errors (the lead's file); until it moves, both renderers share this one.
"""

from ..neural.crop import PortraitError

__all__ = ["PortraitError"]

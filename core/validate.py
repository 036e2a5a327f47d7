"""Checks of the numbers users give, shared by every front door (API, command line, add-on,
worker), so that each message names the problem and the fix the same way everywhere.

Plain Python (no numpy): Blender's side imports it while drawing and generating.
"""

from __future__ import annotations

import math

from .errors import IntensityError


def unit_interval(value, what: str = "the intensity") -> float:
    """``value`` as a float in [0, 1] (0 neutral, 1 the full emotion).

    Raises:
        IntensityError: not a finite number in [0, 1]; the message names ``what``.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise IntensityError(f"{what} is {value!r}; give a number from 0 (neutral) to 1 (the full emotion)") from None
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise IntensityError(f"{what} is {value}; it must lie in [0, 1] (0 neutral, 1 the full emotion)")
    return number

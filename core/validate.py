"""Checks of the numbers users give, shared by every front door (API, command line, add-on,
worker), so that each message names the problem and the fix the same way everywhere.

Plain Python (no numpy): Blender's side imports it while drawing and generating.
"""

from __future__ import annotations

import math
import operator

from .errors import IntensityError, SettingsError

MAX_SEED = 2**32 - 1


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


def frame_rate(value, high: float) -> float:
    """``value`` as frames per second: a finite real number from 1 to ``high``.

    Raises:
        SettingsError: anything else (text, None, a bool, complex, NaN, out of range).
    """
    number = None
    if not isinstance(value, (bool, str, bytes)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            pass
    if number is None or not (math.isfinite(number) and 1.0 <= number <= high):
        raise SettingsError(f"fps is {value!r}; give a frame rate between 1 and {high:g} (25, 30, 60 …)")
    return number


def seed(value) -> int:
    """``value`` as a random seed: a whole number from 0 to 2³² − 1 (an int, a whole float, or its
    digits as text).

    Raises:
        SettingsError: anything else (negative, fractional, too large, not a number).
    """
    if isinstance(value, str):
        number = int(value.strip()) if value.strip().isdigit() else None
    elif isinstance(value, float):
        number = int(value) if value.is_integer() else None
    elif isinstance(value, bool):
        number = None
    else:
        try:
            number = operator.index(value)
        except TypeError:
            number = None
    if number is None or not 0 <= number <= MAX_SEED:
        raise SettingsError(f"the seed is {value!r}; give a whole number from 0 to {MAX_SEED}")
    return number

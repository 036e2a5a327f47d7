"""The intensity control: how strongly the emotion shows in every frame.

Four forms, as the CLI and the Python API take them: ``'audio'`` (predicted from the speaking
tone), a constant in [0, 1], a (T,) array, or a CSV curve file of ``time,intensity`` (seconds)
or ``frame,intensity`` (Blender frame numbers: the take starts on frame 1) rows.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio.features import Prosody, frame_times
from ..audio.load import MAX_DURATION
from ..errors import IntensityError
from ..validate import unit_interval
from .prosody import prosody_intensity


def is_audio_control(control) -> bool:
    """True for the ``'audio'`` control (any case, spaces around allowed)."""
    return isinstance(control, str) and control.strip().lower() == "audio"


def resolve_intensity(control: str | float | np.ndarray | os.PathLike, samples: np.ndarray, fps: float,
                      num_frames: int, tracks: Prosody | None = None,
                      from_audio: Callable[[], np.ndarray] | None = None) -> np.ndarray:
    """Turn any intensity control into a per-frame curve.

    Args:
        control: ``'audio'``; a number in [0, 1]; a (num_frames,) array in [0, 1]; or the path
            of a CSV curve (see :func:`read_curve`).
        samples: (N,) float32 mono at 16 kHz (used by ``'audio'``).
        fps: frames per second.
        num_frames: T, frames of the take.
        tracks: the recording's prosody, if already computed.
        from_audio: computes the ``'audio'`` curve, (T,) in [0, 1]: the pipeline passes the
            learned predictor P (Xu et al. Sec. 3.2); without it, the curve comes from prosody
            (:func:`.prosody.prosody_intensity`).

    Returns:
        (T,) float32 in [0, 1].

    Raises:
        IntensityError: a value outside [0, 1], an array of the wrong length, or a curve file
            that is missing or malformed; the message says how to fix it.
    """
    if is_audio_control(control):
        curve = from_audio() if from_audio is not None else prosody_intensity(samples, fps, tracks)
        return curve[:num_frames]
    if isinstance(control, (int, float, np.floating, np.integer)) and not isinstance(control, bool):
        return np.full(num_frames, unit_interval(float(control), "the intensity"), np.float32)
    if isinstance(control, (str, os.PathLike)):
        text = str(control).strip()
        try:
            return np.full(num_frames, unit_interval(float(text), "the intensity"), np.float32)
        except ValueError:
            pass
        return read_curve(text, fps, num_frames)
    try:
        curve = np.asarray(control, dtype=np.float64)
    except (TypeError, ValueError):
        raise IntensityError(f"the intensity is {type(control).__name__} of values that are not numbers; give "
                             "'audio', a number from 0 to 1, one number per frame, or a CSV curve") from None
    if curve.shape != (num_frames,):
        raise IntensityError(
            f"the intensity curve has shape {curve.shape} but the take has {num_frames} frames at {fps:g} fps; "
            f"give one value per frame, or a CSV curve of time,intensity rows to be resampled"
        )
    bad = ~np.isfinite(curve) | (curve < 0) | (curve > 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise IntensityError(f"the intensity curve is {curve[i]} at frame {i}; every value must lie in [0, 1]")
    return curve.astype(np.float32)


def read_curve(path: str | os.PathLike, fps: float, num_frames: int) -> np.ndarray:
    """Read a CSV intensity curve and resample it to the frame grid by linear interpolation.

    The file has two columns. A header row ``time,intensity`` means the first column is seconds
    from the start of the audio; ``frame,intensity`` means Blender frame numbers (the audio
    starts on frame 1). Without a header, the first column is seconds, unless it holds only whole
    numbers, which is ambiguous and refused. Before the first row and after the last, the curve
    holds its end values.

    Returns:
        (num_frames,) float32 in [0, 1].

    Raises:
        IntensityError: missing file, fewer than one row, non-numbers, values outside [0, 1],
            times not increasing, or an ambiguous headerless file.
    """
    path = Path(path)
    if not path.is_file():
        raise IntensityError(
            f"intensity {str(path)!r} is neither 'audio', a number in [0, 1], nor an existing CSV curve file"
        )
    try:
        rows = [r for r in csv.reader(path.read_text(encoding="utf-8").splitlines()) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise IntensityError(f"cannot read the intensity curve {path} ({exc}); give a UTF-8 CSV file") from None
    unit = None
    if rows and not _is_number(rows[0][0]):
        head = rows.pop(0)[0].strip().lower()
        unit = "frame" if head.startswith("frame") else "time" if head in ("time", "t", "seconds", "second", "s", "sec") else None
        if unit is None:
            raise IntensityError(f"{path}: the first column header {head!r} must be 'time' (seconds) or 'frame' (Blender frames)")
    if not rows:
        raise IntensityError(f"{path} has no rows; write time,intensity rows such as '0.0,0.5'")
    values = []
    for line, row in enumerate(rows, start=2 if unit else 1):
        extra = [cell for cell in row[2:] if cell.strip()]
        if len(row) < 2 or extra or not _is_number(row[0]) or not _is_number(row[1]):
            raise IntensityError(f"{path} line {line}: expected two numbers 'time,intensity', got {','.join(row)!r}")
        values.append((float(row[0]), unit_interval(float(row[1]), f"{path} line {line}: the intensity")))
    keys, levels = np.array(values).T
    if unit is None:
        if np.all(keys == np.round(keys)) and len(keys) > 1:
            raise IntensityError(
                f"{path}: the first column holds whole numbers, which could be seconds or frames; add a header "
                f"row 'time,intensity' or 'frame,intensity'"
            )
        unit = "time"
    if np.any(np.diff(keys) <= 0):
        raise IntensityError(f"{path}: the {unit} column must increase from row to row")
    first = 0.0 if unit == "time" else 1.0
    last = MAX_DURATION if unit == "time" else MAX_DURATION * fps + 1
    if keys[-1] > last:
        raise IntensityError(f"intensity curve {path}: the {unit} column reaches {keys[-1]:g}, past the longest "
                             f"recording emoflame reads ({MAX_DURATION / 3600:g} h); give {unit}s within the take")
    if keys[0] < first or not np.all(np.isfinite(keys)):
        raise IntensityError(f"intensity curve {path}: the {unit} column starts at {keys[0]:g}, before the take's first "
                             f"{'second (0)' if unit == 'time' else 'frame (1)'}; give {unit}s from {first:g} on")
    times = (keys - 1) / fps if unit == "frame" else keys
    return np.interp(frame_times(num_frames, fps), times, levels).astype(np.float32)


def _is_number(text: str) -> bool:
    try:
        return np.isfinite(float(text))
    except ValueError:
        return False

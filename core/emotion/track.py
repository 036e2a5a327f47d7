"""Emotion over time: an emotion track ("neutral@0,angry@2.5,sad@6"), each emotion holding until
the next, with eased transitions blended in the emotion's own space (not by cross-fading the
animation).

The track gives every frame its mix of the track's emotions (:meth:`EmotionTrack.mix`) and the
share of it that is an emotion at all rather than neutral (:meth:`EmotionTrack.presence`).
Engines blend their emotion representation with the mix: the phonetic engine its FACS directions,
the learned engine the direction of the adapter's feature by spherical interpolation while the
norm stays the intensity's (Xu et al., Sec. 3.3: direction is the type, norm is the intensity;
neutral is the origin, so a fade to neutral is a fall of the intensity, not a turn).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EmotionError
from ..validate import unit_interval
from .vocabulary import Emotion, read_emotion

DEFAULT_TRANSITION_S = 0.3
"""Seconds over which one emotion eases into the next, from the next one's start time."""
MAX_TRANSITION_S = 10.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class EmotionTrack:
    """The emotions of a take and when each begins.

    Attributes:
        emotions: (K,) the emotions, read by :func:`.vocabulary.read_emotion`.
        starts: (K,) seconds into the recording at which each begins, the first 0, increasing.
        intensities: (K,) a fixed intensity per entry (from a track file's third column), or None.
        transition: seconds of each eased change, from the next emotion's start.
    """

    emotions: tuple[Emotion, ...]
    starts: tuple[float, ...]
    intensities: tuple[float, ...] | None = None
    transition: float = DEFAULT_TRANSITION_S

    def __post_init__(self) -> None:
        if not self.emotions or len(self.emotions) != len(self.starts):
            raise EmotionError("an emotion track needs one start time per emotion")
        if self.starts[0] != 0 or any(b <= a for a, b in zip(self.starts, self.starts[1:])):
            raise EmotionError(f"emotion track times {list(self.starts)} must start at 0 and increase; "
                               "write them in order, e.g. 'neutral@0,angry@2.5'")
        if not (math.isfinite(self.transition) and 0 <= self.transition <= MAX_TRANSITION_S):
            raise EmotionError(f"the transition is {self.transition} s; give 0 to {MAX_TRANSITION_S:g} seconds")

    @property
    def names(self) -> tuple[str | None, ...]:
        """(K,) the MEAD emotion of each entry, None for free text."""
        return tuple(e.name for e in self.emotions)

    def describe(self) -> str:
        """The emotions in order, for a take's name: "neutral → angry"."""
        return " → ".join(e.text for e in self.emotions)

    def entries(self) -> tuple[tuple[str, float], ...]:
        """``((words, start seconds), ...)``, as an AnimationClip records it."""
        return tuple((e.text, s) for e, s in zip(self.emotions, self.starts))

    def takeovers(self, times: np.ndarray) -> np.ndarray:
        """(T, K) float64: how far each emotion has taken over at ``times`` (T,) seconds, 0 before
        its start, easing (smoothstep) to 1 over :attr:`transition` seconds; the first is 1."""
        times = np.asarray(times, np.float64)
        out = np.ones((len(times), len(self.emotions)))
        for k, start in enumerate(self.starts[1:], start=1):
            if self.transition > 0:
                x = np.clip((times - start) / self.transition, 0.0, 1.0)
                out[:, k] = x * x * (3 - 2 * x)
            else:
                out[:, k] = times >= start
        return out

    def mix(self, times: np.ndarray) -> np.ndarray:
        """(T, K) float64 share of each emotion at ``times`` (T,) seconds; rows sum to 1.

        Each emotion takes over from whatever mix holds at its start (:meth:`takeovers`); one that
        starts before the last change has finished takes over from the blend, so nothing jumps.
        """
        takeovers = self.takeovers(times)
        out = np.zeros_like(takeovers)
        out[:, 0] = 1.0
        for k in range(1, takeovers.shape[1]):
            out *= (1 - takeovers[:, k])[:, None]
            out[:, k] += takeovers[:, k]
        return out

    def presence(self, times: np.ndarray) -> np.ndarray:
        """(T,) share of the mix that is an emotion rather than neutral, in [0, 1]."""
        emotional = np.array([name != "neutral" for name in self.names], np.float64)
        return self.mix(times) @ emotional

    def intensity(self, times: np.ndarray) -> np.ndarray | None:
        """(T,) the track file's intensities blended like the emotions, or None without them."""
        if self.intensities is None:
            return None
        return (self.mix(times) @ np.asarray(self.intensities, np.float64)).astype(np.float32)


def read_emotion_track(value, free_text: bool = False, transition: float = DEFAULT_TRANSITION_S) -> EmotionTrack:
    """Read any form of emotion: one emotion, a track text, a track file, or (emotion, seconds) pairs.

    Forms:
        ``"happy"`` or free text (one emotion for the whole take); ``"neutral@0,angry@2.5,sad@6"``
        (emotion@seconds, comma-separated: the ``@`` makes it a track); the path of a CSV file
        with a header ``time,emotion`` or ``time,emotion,intensity`` (seconds; intensities in
        [0, 1]); a sequence of ``(emotion, seconds)`` pairs. Before the first time, neutral holds.

    Args:
        value: the emotion in one of the forms above.
        free_text: the engine reads free text (each emotion may then be any description).
        transition: seconds of each eased change (0 to 10).

    Raises:
        EmotionError: unknown or empty emotions, times that are not finite, negative or
            increasing, a transition out of range, a malformed track file.
        IntensityError: a track file's intensity outside [0, 1].
    """
    transition = _seconds(transition, "the transition")
    if isinstance(value, (list, tuple)):
        pairs = [_pair(entry) for entry in value]
        return _track(pairs, None, free_text, transition)
    if isinstance(value, os.PathLike) or (isinstance(value, str) and value.lower().endswith(".csv")):
        pairs, intensities = _read_track_file(Path(value))
        return _track(pairs, intensities, free_text, transition)
    text = "" if value is None else str(value)
    if "@" not in text:
        return EmotionTrack((read_emotion(text, free_text),), (0.0,), transition=transition)
    pairs = []
    for part in text.split(","):
        words, at, start = part.rpartition("@")
        if not at or not words.strip():
            raise EmotionError(f"cannot read {part.strip()!r} in the emotion track {text!r}; write emotion@seconds "
                               "entries separated by commas, e.g. 'neutral@0,angry@2.5'")
        pairs.append((words, start))
    return _track(pairs, None, free_text, transition)


def _track(pairs, intensities, free_text: bool, transition: float) -> EmotionTrack:
    if not pairs:
        raise EmotionError("the emotion track is empty; give at least one emotion, e.g. 'neutral@0'")
    if len(pairs) > MAX_ENTRIES:
        raise EmotionError(f"the emotion track has {len(pairs)} entries; at most {MAX_ENTRIES} are read")
    emotions = [read_emotion(words, free_text) for words, _ in pairs]
    starts = [_seconds(start, f"the start of {emotion.text!r}") for emotion, (_, start) in zip(emotions, pairs)]
    if any(b <= a for a, b in zip(starts, starts[1:])):
        raise EmotionError(f"emotion track times {starts} must increase; write the entries in order")
    if starts[0] > 0:  # before the first change the face is at rest
        emotions.insert(0, read_emotion("neutral"))
        starts.insert(0, 0.0)
        intensities = None if intensities is None else [0.0, *intensities]
    return EmotionTrack(tuple(emotions), tuple(starts), None if intensities is None else tuple(intensities), transition)


def _pair(entry) -> tuple:
    try:
        words, start = entry
    except (TypeError, ValueError):
        raise EmotionError(f"emotion track entry {entry!r} is not an (emotion, seconds) pair") from None
    return words, start


def _seconds(value, what: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise EmotionError(f"{what} is {value!r}; give seconds as a number") from None
    if not (math.isfinite(seconds) and seconds >= 0):
        raise EmotionError(f"{what} is {seconds} s; give a finite time of 0 or more seconds")
    return seconds


def _read_track_file(path: Path) -> tuple[list, list | None]:
    """(emotion, seconds) pairs and the optional intensities of a ``time,emotion[,intensity]`` CSV."""
    if not path.is_file():
        raise EmotionError(f"emotion track file {path} not found; give a CSV with a 'time,emotion' header")
    try:
        rows = [r for r in csv.reader(path.read_text(encoding="utf-8").splitlines()) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EmotionError(f"cannot read the emotion track {path} ({exc}); give a UTF-8 CSV file") from None
    header = [c.strip().lower() for c in rows.pop(0)] if rows else []
    if header[:2] != ["time", "emotion"] or len(header) > 3 or (len(header) == 3 and header[2] != "intensity"):
        raise EmotionError(f"{path}: the header must be 'time,emotion' or 'time,emotion,intensity', got {','.join(header)!r}")
    pairs, intensities = [], [] if len(header) == 3 else None
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise EmotionError(f"{path} line {line}: expected {len(header)} columns ({','.join(header)}), got {len(row)}")
        pairs.append((row[1], row[0]))
        if intensities is not None:
            intensities.append(unit_interval(row[2], f"{path} line {line}: the intensity"))
    return pairs, intensities

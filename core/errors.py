"""Errors a user can fix. Each message names the problem and the fix, on one line.

Every class also derives from the builtin a caller would expect (ValueError), so code that
catches ValueError keeps working; the CLI and the add-on catch EmoflameError and show the
message as it is.
"""


class EmoflameError(Exception):
    """Base class: bad input that the message explains how to fix."""


class AudioError(EmoflameError, ValueError):
    """Unreadable, empty, silent or over-long audio."""


class EmotionError(EmoflameError, ValueError):
    """An emotion that emoflame cannot read (the message lists the choices)."""


class TranscriptError(EmoflameError, ValueError):
    """A transcript that is empty, unreadable, or does not match the recording."""


class SettingsError(EmoflameError, ValueError):
    """A setting out of its range: an unknown engine, a frame rate that is not a frame rate."""


class IntensityError(EmoflameError, ValueError):
    """A malformed intensity control (constant out of [0, 1], unreadable curve file)."""


class ModelFileError(EmoflameError, ValueError):
    """A missing, malformed or unsafe model file (FLAME .pkl, checkpoint, avatar asset)."""


class RigError(EmoflameError, ValueError):
    """A target object that emoflame cannot drive (not a face mesh, no known controls)."""


class ClipError(EmoflameError, ValueError):
    """An AnimationClip (or a clip file) that is malformed: a number out of range, arrays that
    disagree, a damaged or foreign .npz."""


class PortraitError(EmoflameError, ValueError):
    """A photo that cannot be animated: no face, several faces, a tiny face or a profile view."""


class OutputError(EmoflameError, OSError):
    """An output that exists (and --force was not given) or a folder that cannot be written."""


class RequestError(EmoflameError, ValueError):
    """A worker request (core/worker.py) that is not what this emoflame writes: unreadable, not
    JSON, or with unknown, missing or mistyped fields — usually the add-on and the worker
    interpreter running different versions of emoflame."""

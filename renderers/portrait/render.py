"""``render_portrait``: an AnimationClip on a photo, as an MP4 with the recording's sound."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ...core.errors import AudioError, OutputError, SettingsError
from .face import check_photo

log = logging.getLogger(__name__)

MIN_RESOLUTION, MAX_RESOLUTION = 64, 4096
DEFAULT_PORTRAIT = Path(__file__).resolve().with_name("default_portrait.jpg")
"""The portrait to animate when none is given: Grace Hopper's official U.S. Navy portrait (public
domain, NOTICE-default_portrait.txt), a neutral face at rest."""


def render_portrait(clip, photo, out: str | os.PathLike, *, resolution: int | None = None, force: bool = False,
                    progress: bool = True) -> Path:
    """Animate a portrait photo with a clip and write the video (H.264 + AAC MP4).

    The face is found and fitted before anything is written, so a photo that cannot be
    animated fails at once; frames are made and encoded one at a time
    (:class:`~.animator.PortraitAnimator`, :func:`~emoflame.renderers.video_file.write_mp4`).

    Args:
        clip: an :class:`~emoflame.core.clip.AnimationClip`; its ``audio_path`` (if any) is
            muxed from ``audio_offset`` seconds on.
        photo: a PNG/JPEG path or an (H, W, 3) uint8 RGB array with one face seen from the front;
            None: :data:`DEFAULT_PORTRAIT`.
        out: the .mp4 to write.
        resolution: the video's longer side in pixels (the photo is scaled to it, aspect kept);
            None keeps the photo's size. Odd sides get one padding row or column (H.264).
        force: replace an existing ``out``.
        progress: show a progress bar.

    Returns:
        ``out`` as a Path.

    Raises:
        PortraitError: no face, several faces, a tiny face, a profile view, or not an image.
        OutputError: ``out`` exists without ``force``, or its folder does not exist.
        SettingsError: a resolution outside [64, 4096].
        AudioError: the clip's recording is gone or unreadable.
        RigError: the clip has channels that are not ARKit names.
    """
    from ..video_file import write_mp4
    from .animator import PortraitAnimator

    out = Path(out)
    if out.exists() and not force:
        raise OutputError(f"{out} exists; pass force=True (--force) to replace it, or choose another name")
    if clip.audio_path and not Path(clip.audio_path).is_file():
        raise AudioError(f"the clip's recording {clip.audio_path} is gone; put it back or set clip.audio_path = '' "
                         "for a silent video")
    image = load_photo(photo, resolution)
    animator = PortraitAnimator(image)
    try:
        return write_mp4(animator.frames(clip), clip.fps, out, audio_path=clip.audio_path or None,
                         audio_offset=clip.audio_offset, force=force, progress=progress, total=clip.num_frames)
    finally:
        animator.close()


def load_photo(photo, resolution: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB: the photo (a path, an array, or None for :data:`DEFAULT_PORTRAIT`) with
    its longer side ``resolution`` pixels (area-averaged down, cubic up; None keeps its size).

    Raises:
        PortraitError: not an image. SettingsError: a resolution outside [64, 4096].
    """
    photo = check_photo(DEFAULT_PORTRAIT if photo is None else photo)
    if resolution is None:
        return photo
    import cv2

    if not (isinstance(resolution, (int, np.integer)) and MIN_RESOLUTION <= resolution <= MAX_RESOLUTION):
        raise SettingsError(f"resolution is {resolution!r}; give the video's longer side in pixels, "
                            f"{MIN_RESOLUTION} to {MAX_RESOLUTION}")
    h, w = photo.shape[:2]
    scale = resolution / max(h, w)
    if scale == 1:
        return photo
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(photo, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)

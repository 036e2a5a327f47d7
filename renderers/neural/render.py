"""NeuralRenderer: a photo animated by an AnimationClip through LivePortrait's networks.

Per photo (once): find the face (crop.py), crop it LivePortrait's way, and run the appearance
extractor F and the motion extractor M on the 256² crop. Per frame: the clip's driving keypoints
(driving.py), the warping module W and the SPADE generator G (512² out), pasted back into the
photo. Guo et al., "LivePortrait" (2024), Sec. 3 and its Algorithm 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ...core.errors import SettingsError
from .crop import Crop, PasteBack, crop_for_mediapipe, detect_face_landmarks, warp_to_crop
from .driving import ClipDrive, ExpressionBasis, Source, clip_drive, driven_keypoints, ratios_from_mediapipe
from .keypoints import Motion
from .weights import LivePortraitModels, load_liveportrait

INPUT_SIZE = 256    # what F and M read
OUTPUT_SIZE = 512   # what G writes


@dataclass
class PreparedPhoto:
    """One photo ready to animate.

    Attributes:
        source: M's reading of the crop and the photo's eye and lip ratios.
        feature: (1, 32, 16, 64, 64) F's feature volume.
        crop: photo pixels -> the 512² crop.
        paste: blends a generated 512² crop back into the photo.
    """

    source: Source
    feature: torch.Tensor
    crop: Crop
    paste: PasteBack


class NeuralRenderer:
    """Renders an AnimationClip onto a portrait photo with LivePortrait's released weights.

    Args:
        weights: the weights folder (``$EMOFLAME_LIVEPORTRAIT`` when None) or loaded
            :class:`LivePortraitModels`.
        device: ``'auto'`` (CUDA when present), ``'cpu'``, ``'cuda'``… (ignored for loaded models).
        batch_size: frames per W + G batch; 8 on CUDA, 1 on CPU when None.
        landmarks: ``photo (H, W, 3) uint8 -> (478, 2)`` MediaPipe-layout landmarks in pixels, or
            raises :class:`core.errors.PortraitError`; :func:`crop.detect_face_landmarks` by default.
        avatar: the driving avatar (the default avatar when None).
        half: float16 autocast on CUDA (as LivePortrait runs); ignored on CPU.

    Raises:
        ModelFileError: the weights are missing or do not load (the message names the files and
            the folder layout). There is no fallback: without the real weights nothing renders.
        SettingsError: a bad ``device`` or ``batch_size``.
    """

    def __init__(self, weights: str | LivePortraitModels | None = None, device: str = "auto",
                 batch_size: int | None = None, landmarks: Callable[[np.ndarray], np.ndarray] = detect_face_landmarks,
                 avatar=None, half: bool = True):
        if batch_size is not None and not (isinstance(batch_size, int) and batch_size >= 1):
            raise SettingsError(f"batch_size is {batch_size!r}; give a positive whole number of frames")
        self.models = weights if isinstance(weights, LivePortraitModels) else load_liveportrait(weights, device)
        cuda = self.models.device.type == "cuda"
        self.batch_size = batch_size or (8 if cuda else 1)
        self.landmarks = landmarks
        self.half = half and cuda
        self._avatar = avatar
        self._basis: ExpressionBasis | None = None

    @property
    def avatar(self):
        if self._avatar is None:
            from ...core.flame.avatar import default_avatar

            self._avatar = default_avatar()
        return self._avatar

    @property
    def basis(self) -> ExpressionBasis:
        """The expression basis for these weights (measured once, then cached on disk; basis.py)."""
        if self._basis is None:
            from .basis import expression_basis

            self._basis = expression_basis(self.models, self.avatar)
        return self._basis

    def _autocast(self):
        if self.half:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def prepare(self, photo: np.ndarray) -> PreparedPhoto:
        """Find, crop and encode the face of ``photo`` ((H, W, 3) uint8 RGB).

        Raises:
            PortraitError: no face, several faces, a tiny face or a profile view.
        """
        import cv2

        landmarks = self.landmarks(photo)
        crop = crop_for_mediapipe(landmarks, OUTPUT_SIZE)
        small = cv2.resize(warp_to_crop(photo, crop), (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        m = self.models
        x = torch.from_numpy(small).to(m.device).permute(2, 0, 1)[None].float() / 255.0
        with self._autocast():
            feature = m.appearance(x).float()
            raw = {k: v.float() for k, v in m.motion(x).items()}
        eye, lip = ratios_from_mediapipe(landmarks)
        return PreparedPhoto(Source(Motion.from_raw(raw), eye, float(lip)), feature, crop, PasteBack(photo, crop))

    def frames(self, clip, photo: np.ndarray, paste_back: bool = True) -> Iterator[np.ndarray]:
        """The clip's frames on the photo, one (H, W, 3) uint8 RGB array per clip frame.

        The face is found and encoded before this returns (errors surface here, not mid-video);
        the frames are generated lazily, ``batch_size`` at a time.

        Args:
            clip: an :class:`~emoflame.core.clip.AnimationClip` (``weights``, ``channels``,
                ``fps``, optional ``head_pose``).
            photo: (H, W, 3) uint8 RGB portrait with one face.
            paste_back: True: frames are the photo's size with the animated face pasted in;
                False: the 512² face crops as G makes them.

        Raises:
            PortraitError: see :meth:`prepare`.
            ValueError: a clip with non-finite weights or a malformed head pose.
        """
        drive = clip_drive(clip, self.avatar)
        prepared = self.prepare(photo)
        basis = self.basis
        return self._generate(drive, prepared, basis, paste_back)

    @torch.no_grad()
    def _generate(self, drive: ClipDrive, prepared: PreparedPhoto, basis: ExpressionBasis,
                  paste_back: bool) -> Iterator[np.ndarray]:
        m = self.models
        x_s = prepared.source.keypoints()
        for start in range(0, drive.num_frames, self.batch_size):
            x_d = driven_keypoints(prepared.source, drive, basis, m.stitching, m.eye, m.lip,
                                   frames=slice(start, start + self.batch_size))
            n = len(x_d)
            with self._autocast():
                warped = m.warping(prepared.feature.expand(n, -1, -1, -1, -1), x_d, x_s.expand(n, -1, -1))
                images = m.generator(warped["out"]).float()
            images = (images.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            for image in images:
                yield prepared.paste(image) if paste_back else image


def render_neural(photo=None, *, resolution: int | None = None, weights=None, progress: bool = True):
    """Prepare the neural renderer for one photo now (weights loaded, the face found) and return
    ``render(clip, out) -> Path``, which writes the clip's MP4 (H.264 + AAC, through
    ``renderers.video_file.write_mp4``): the command line's ``--render-engine neural``.

    Args:
        photo: a path, an RGB array, or None for the portrait animator's shipped portrait.
        resolution: the video's longer side (the photo is scaled to it), or None for its size.
        weights: LivePortrait's weights folder, or None for ``$EMOFLAME_LIVEPORTRAIT``.
        progress: show a progress bar while encoding.

    Raises:
        ModelFileError: the weights are missing (the message names the files and the folder).
        PortraitError: the photo has no face, several faces, a tiny face or a profile view.
    """
    from ..portrait.render import load_photo
    from ..video_file import write_mp4

    image = load_photo(photo, resolution)
    renderer = NeuralRenderer(weights)
    renderer.landmarks(image)  # a photo that cannot be animated fails before the take is made

    def render(clip, out):
        return write_mp4(renderer.frames(clip, image), clip.fps, out, audio_path=clip.audio_path or None,
                         audio_offset=clip.audio_offset, force=True, progress=progress, total=clip.num_frames)

    return render

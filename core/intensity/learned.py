"""The trained intensity predictor P behind ``intensity="audio"``: frame-wise emotion intensity
from the speaking tone (Xu et al., Sec. 3.2), for every expression engine.

Loads ``flame_assets/intensity_predictor.pt`` (``INTENSITY_PREDICTOR_CARD.md``) with
``weights_only=True``; runs at the checkpoint's own frame rate and front end.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from ..audio.features import to_frame_grid
from ..audio.frontends import checkpoint_features
from ..checkpoints import load_checkpoint
from .predictor import IntensityPredictor, PredictorConfig

ASSETS = Path(__file__).resolve().parents[2] / "flame_assets"


class LearnedIntensity:
    """P and its checkpoint, on a device. Build with :func:`load_learned_intensity`.

    Args:
        predictor: the :class:`IntensityPredictor` in eval mode.
        ckpt: its checkpoint dict (``meta``: front end, frame rate, feature statistics).
        device: ``'cpu'`` or ``'cuda'``.
    """

    def __init__(self, predictor: IntensityPredictor, ckpt: dict, device: str = "cpu"):
        self.predictor, self.ckpt, self.device = predictor, ckpt, torch.device(device)

    def predict(self, speech, seed: int = 0, temperature: float = 0.667, hubert_dir: str = "") -> np.ndarray:
        """Frame-wise emotion intensity of a recording.

        Args:
            speech: ``core.audio.speech.Speech`` (samples, and the frame grid of the result).
            seed: seeds the prior sample (same seed, same curve).
            temperature: scale of the prior's noise; 0 gives the most likely curve.
            hubert_dir: the local HuBERT folder, if the checkpoint was trained on HuBERT.

        Returns:
            (T,) float32 in [0, 1] on ``speech``'s frame grid.

        Raises:
            ModelFileError: the checkpoint's front end needs weights that are missing.
        """
        x, model_fps = checkpoint_features(speech, self.ckpt, hubert_dir)
        gen = torch.Generator(self.device).manual_seed(int(seed))
        features = torch.from_numpy(x)[None].to(self.device)
        curve = self.predictor.sample(features, temperature=float(temperature), generator=gen)[0].cpu().numpy()
        return np.clip(to_frame_grid(curve, speech.num_frames, speech.fps, 1.0 / model_fps), 0.0, 1.0)


def load_learned_intensity(device: str = "cpu", folder: str | Path = ASSETS) -> LearnedIntensity:
    """P from ``folder/intensity_predictor.pt`` on ``device`` (``'cpu'``/``'cuda'``), loaded once per
    (device, folder).

    Raises:
        ModelFileError: the checkpoint is missing or malformed (the message names the file).
    """
    return _cached_intensity(device, str(folder))


@functools.lru_cache(maxsize=2)
def _cached_intensity(device: str, folder: str) -> LearnedIntensity:
    model, ckpt = load_checkpoint(Path(folder) / "intensity_predictor.pt", IntensityPredictor, PredictorConfig, device)
    return LearnedIntensity(model, ckpt, device)

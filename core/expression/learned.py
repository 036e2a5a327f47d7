"""The learned engine: the emotion adapter M and the audio-to-expression transformer T of Xu et al.

Loads the committed checkpoints ``flame_assets/emotion_adapter.pt`` and
``flame_assets/expression_transformer.pt`` (see their ``*_CARD.md``) with ``weights_only=True``.
The models run at the frame rate their checkpoint records; the intensity comes in on the clip's
frame grid and the weights go back out on it.

T's output is split into its speech part (T with the emotion input at zero, neutral) and the
emotion's part (the rest). The speech part gets the articulation range of the capture back (a
per-channel quantile map fitted on the training takes and stored with T: L1 regression pulls
T's peaks towards the median) and, where the speech analysis found phones, the alignment's
constraints: the lips close at bilabials (the phonetic engine's closure envelope and pose) and
rest in pauses. The emotion's part lets go of the lips at closures, as in the phonetic engine.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio.features import frame_times, to_frame_grid
from ..audio.frontends import checkpoint_features
from ..audio.speech import PAUSE_S
from ..channels import ARKIT_CHANNELS, CHANNEL_INDEX
from ..checkpoints import load_checkpoint
from ..emotion.adapter import AdapterConfig, EmotionAdapter, emotion_condition, slerp
from ..emotion.text import text_encoder
from ..errors import IntensityError, ModelFileError
from . import visemes as V
from .engine import Expression
from .eyes import EYE_CHANNELS
from .phonetic import _AT_CLOSURE, closure_envelope, limit_speed
from .transformer import ExpressionTransformer, TransformerConfig

ASSETS = Path(__file__).resolve().parents[2] / "flame_assets"
CHUNK = 600
"""Model frames per transformer pass (20 s at 30 fps); longer recordings go in overlapping chunks."""
OVERLAP = 30
REST_RAMP_S = 0.12
"""Seconds over which the lips settle into rest after a phrase, and leave it before the next."""

_POSE_FROM = np.array([V.MOUTH_CHANNELS.index(c) for c in V.CLOSURE_POSE])
_POSE_TO = np.array([CHANNEL_INDEX[c] for c in V.CLOSURE_POSE])
"""The channels a bilabial sets to its pose (:data:`.visemes.CLOSURE_POSE`): columns of the
phonetic engine's pose (over :data:`.visemes.MOUTH_CHANNELS`) and of the 52 channels."""


class LearnedEngine:
    """Speech + emotion + intensity → expression weights (M then T, Xu et al. Sec. 3.3–3.4).

    Build with :func:`load_learned_engine` (or :meth:`load`). Reads free-text emotions: the 8 MEAD
    emotions and their synonyms use the embeddings stored in M's checkpoint, other text goes
    through the text encoder M was trained with.

    Args:
        adapter, a_ckpt: M in eval mode and its checkpoint dict.
        transformer, t_ckpt: T in eval mode and its checkpoint dict.
        device: ``'cpu'`` or ``'cuda'``.
        hubert_dir: the local HuBERT folder, for checkpoints trained on HuBERT features.
        clip_checkpoint, clip_arch: the CLIP text encoder's local weights, for an M trained on CLIP.
    """

    name = "learned"
    needs_phones = True
    free_text = True

    def __init__(self, adapter, a_ckpt, transformer, t_ckpt, device="cpu", hubert_dir="", clip_checkpoint="",
                 clip_arch="ViT-B-32"):
        self.device = torch.device(device)
        self.adapter, self.a_ckpt = adapter, a_ckpt
        self.transformer, self.t_ckpt = transformer, t_ckpt
        self.hubert_dir, self.clip = hubert_dir, (clip_checkpoint, clip_arch)
        meta = a_ckpt["meta"]
        self._emb = {e: np.asarray(v, np.float32) for e, v in zip(meta["emotions"], meta["emotion_text_embeddings"])}
        self.calibration = read_calibration(t_ckpt["meta"].get("calibration"))

    @classmethod
    def load(cls, device: str = "cpu", folder: str | Path = ASSETS, **options) -> "LearnedEngine":
        """Load M and T from ``folder`` (default: the package's ``flame_assets``); ``options`` are the
        constructor's ``hubert_dir``, ``clip_checkpoint`` and ``clip_arch``.

        Raises:
            ModelFileError: a checkpoint is missing or malformed (the message names the file).
        """
        folder = Path(folder)
        a, ac = load_checkpoint(folder / "emotion_adapter.pt", EmotionAdapter, AdapterConfig, device)
        t, tc = load_checkpoint(folder / "expression_transformer.pt", ExpressionTransformer, TransformerConfig, device)
        return cls(a, ac, t, tc, device, **options)

    def text_embedding(self, emotion) -> np.ndarray:
        """(E,) float32 unit text embedding of an ``Emotion``: stored for the 8 and their synonyms,
        encoded for free text.

        Raises:
            ModelFileError: free text and the text encoder's weights are missing.
        """
        if emotion.name is not None:
            return self._emb[emotion.name]
        return text_encoder(self.a_ckpt["meta"]["text_encoder"], *self.clip).encode([emotion.text])[0]

    def generate(self, speech, track, intensity: np.ndarray, seed: int = 0) -> Expression:
        """Lip-synced emotional expression.

        T's speech part is calibrated to the capture's range (:func:`calibrate`) and, when
        ``speech.phones`` holds the alignment, constrained by it (:func:`constrain_to_phones`:
        closed at bilabials, at rest in pauses); without phones T's lips are used as they come.
        With an emotion track, each emotion's feature M(z, f_e) (one z for the take) gives a
        direction, and the direction of every frame is the spherical interpolation from the one
        that holds to the next (:meth:`EmotionTrack.takeovers`); the norm stays t(L̂) of the
        intensity times the track's presence (neutral is the origin), so type and intensity stay
        separable.

        Args:
            speech: ``core.audio.speech.Speech`` (T frames at ``speech.fps``), with its phones
                for the closures and rests.
            track: ``core.emotion.track.EmotionTrack`` (each emotion one of the 8, a synonym or
                free text).
            intensity: (T,) in [0, 1], the frame-wise intensity.
            seed: seeds M's normal sample z.

        Returns:
            :class:`Expression`: weights (T, 52) in [0, 1] with the eye channels at 0 (T learned
            none: the capture's eye channels are empty), and the re-normalised emotion latent
            (T, 896): norm t(L̂ · presence) per frame, zero where the take is neutral.

        Raises:
            IntensityError: ``intensity`` has the wrong length or leaves [0, 1].
            ModelFileError: free text without the text encoder's weights; HuBERT weights missing.
        """
        n = speech.num_frames
        intensity = np.asarray(intensity, np.float32).reshape(-1)
        if len(intensity) != n or not np.all((intensity >= 0) & (intensity <= 1)):
            raise IntensityError(f"intensity must be {n} values in [0, 1] (one per frame at {speech.fps:g} fps), "
                                 f"got {len(intensity)} in [{intensity.min():.3g}, {intensity.max():.3g}]")
        x, model_fps = checkpoint_features(speech, self.t_ckpt, self.hubert_dir)
        x = torch.from_numpy(x)[None].to(self.device)
        m = x.shape[1]
        embeddings = np.stack([self.text_embedding(emotion) for emotion in track.emotions])  # (K, E)
        with torch.no_grad():
            z = torch.randn(1, self.adapter.cfg.z_dim, generator=torch.Generator().manual_seed(int(seed))).to(self.device)
            features = self.adapter(z.expand(len(embeddings), -1), torch.from_numpy(embeddings).to(self.device))  # (K, 896)
            model_curve = to_frame_grid(intensity, m, model_fps, 1.0 / speech.fps)
            latent = self._latent(track, features, np.arange(m) / model_fps, model_curve)  # (1, M, 896)
            weights = run_transformer(self.transformer, x, latent)
            # Neutral is the origin of the emotion input: T at zero is the speech alone.
            talking = weights if not latent.any() else run_transformer(self.transformer, x, torch.zeros_like(latent))
            # The clip's latent on its own grid, so its norm is exactly t(L̂) of the clip's intensity.
            clip_latent = self._latent(track, features, np.arange(n) / speech.fps, intensity)[0].cpu().numpy()
        emotion = to_frame_grid(weights - talking, n, speech.fps, 1.0 / model_fps)
        talking = to_frame_grid(calibrate(talking, self.calibration), n, speech.fps, 1.0 / model_fps)
        closed = np.zeros(n, bool)
        if speech.phones is not None:
            talking, emotion, closed = constrain_to_phones(talking, emotion, speech.phones, speech.fps)
        # The calibrated range and the constraints can move the lips faster than a mouth moves.
        weights = limit_speed(np.clip(talking + emotion, 0.0, 1.0), speech.fps, hold=closed)
        weights[:, EYE_CHANNELS] = 0.0
        return Expression(weights, clip_latent)

    def _latent(self, track, features: torch.Tensor, times: np.ndarray, intensity: np.ndarray) -> torch.Tensor:
        """(1, T, 896) T's emotion input at ``times`` (T,) seconds for ``intensity`` (T,): the
        track's direction per frame, the norm t(L̂ · presence)."""
        presence = track.presence(times)
        feature = features[:1] if len(track.emotions) == 1 else self._track_features(track, features, times)
        curve = torch.from_numpy((np.asarray(intensity, np.float64) * presence).astype(np.float32))[None].to(self.device)
        neutral = torch.from_numpy(presence == 0)[None].to(self.device)
        return emotion_condition(self.transformer.cfg.intensity_mode, feature, curve, neutral)

    def _track_features(self, track, features: torch.Tensor, times: np.ndarray) -> torch.Tensor:
        """(1, M, 896) per-frame features of an emotion track: each emotion's direction taken over
        by spherical interpolation, the norm blended linearly; neutral entries turn nothing (their
        fade is the presence's)."""
        features = features.cpu().numpy().astype(np.float64)
        norms = np.linalg.norm(features, axis=1)
        units = features / np.maximum(norms, 1e-6)[:, None]
        emotional = [k for k, name in enumerate(track.names) if name != "neutral"] or [0]
        takeovers = track.takeovers(times)
        direction = np.repeat(units[emotional[0]][None], len(times), axis=0)
        norm = np.full(len(times), norms[emotional[0]])
        for k in emotional[1:]:
            direction = slerp(direction, units[k], takeovers[:, k])
            norm = (1 - takeovers[:, k]) * norm + takeovers[:, k] * norms[k]
        return torch.from_numpy((direction * norm[:, None]).astype(np.float32))[None].to(self.device)



def run_transformer(transformer: ExpressionTransformer, x: torch.Tensor, latent: torch.Tensor) -> np.ndarray:
    """(M, 52) T's weights in [0, 1] for features ``x`` (1, M, D) and emotion input ``latent``
    (1, M, E), over overlapping chunks of :data:`CHUNK` frames cross-faded over :data:`OVERLAP`,
    so memory stays flat on long recordings."""
    m = x.shape[1]
    out = np.zeros((m, len(ARKIT_CHANNELS)), np.float32)
    weight = np.zeros((m, 1), np.float32)
    start = 0
    while True:
        stop = min(m, start + CHUNK)
        mask = torch.ones(1, stop - start, dtype=torch.bool, device=x.device)
        y = transformer(x[:, start:stop], latent[:, start:stop], mask)[0].clamp(0, 1).cpu().numpy()
        ramp = np.ones((stop - start, 1), np.float32)
        if start > 0:
            k = min(OVERLAP, stop - start)
            ramp[:k, 0] = np.linspace(0.0, 1.0, k + 2)[1:-1]
        out[start:stop] += y * ramp
        weight[start:stop] += ramp
        if stop == m:
            break
        start = stop - OVERLAP
    return out / np.maximum(weight, 1e-6)


@dataclass(frozen=True)
class Calibration:
    """T's speech part as the capture taught it (``core.train.calibration``).

    Attributes:
        columns: (C,) int, the calibrated channels' columns in ``ARKIT_CHANNELS``.
        scale, offset: (C,) float32: channel weight w becomes clip(scale · w + offset, 0, 1).
        captured: (52,) bool, the channels the capture recorded, or None (keep every channel).
    """

    columns: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    captured: np.ndarray | None = None


def read_calibration(raw) -> Calibration:
    """T's range calibration from its checkpoint's ``meta["calibration"]`` (written by
    ``core.train.calibration``): ``{"channels": [names], "scale": [a], "offset": [b],
    "captured": [names]}``; one that changes nothing when there is none.

    Raises:
        ModelFileError: the entry is malformed (an unknown channel, lengths that differ, a scale
            under 1 or a number that is not finite).
    """
    empty = np.zeros(0, np.float32)
    if raw is None:
        return Calibration(np.zeros(0, int), empty, empty)
    fix = "expression_transformer.pt: meta calibration is malformed; reinstall emoflame or retrain it (see its _CARD.md)"
    try:
        columns = np.array([CHANNEL_INDEX[name] for name in raw["channels"]], int)
        scale, offset = (np.asarray(raw[k], np.float64).reshape(-1) for k in ("scale", "offset"))
        if not (len(columns) == len(scale) == len(offset)) or not (np.isfinite(scale).all() and np.isfinite(offset).all()):
            raise ValueError("lengths or values")
        if np.any(scale < 1.0):
            raise ValueError("a scale under 1 would shrink the peaks")
        captured = None
        if "captured" in raw:
            captured = np.zeros(len(ARKIT_CHANNELS), bool)
            captured[[CHANNEL_INDEX[name] for name in raw["captured"]]] = True
        return Calibration(columns, scale.astype(np.float32), offset.astype(np.float32), captured)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{fix} ({exc})") from None


def calibrate(weights: np.ndarray, calibration: Calibration) -> np.ndarray:
    """T's neutral weights (M, 52) as the capture would have them: the channels it did not record
    at 0 (what T gives there is noise, not speech), and each calibrated channel stretched to the
    capture's range (``scale`` ≥ 1: no peak shrinks). Returns a new (M, 52) float32 array in [0, 1]."""
    out = weights.astype(np.float32, copy=True)
    if calibration.captured is not None:
        out[:, ~calibration.captured] = 0.0
    cols = calibration.columns
    out[:, cols] = np.clip(weights[:, cols] * calibration.scale + calibration.offset, 0.0, 1.0)
    return out


def rest_envelope(phones, times: np.ndarray, min_pause: float = PAUSE_S) -> np.ndarray:
    """(T,) in [0, 1]: 1 in pauses (silences of at least ``min_pause`` seconds), easing in over
    :data:`REST_RAMP_S` after the phrase before and out before the next; a recording's leading
    and trailing silence are at rest up to its ends.

    Args:
        phones: contiguous phones (``core.audio.phones.Phone``), ``SIL`` for silence.
        times: (T,) seconds of the frames.
    """
    env = np.zeros(len(times))
    for i, p in enumerate(phones):
        if p.name != "SIL" or p.end - p.start < min_pause:
            continue
        after = (times - p.start) / REST_RAMP_S if i > 0 else np.inf
        before = (p.end - times) / REST_RAMP_S if i < len(phones) - 1 else np.inf
        x = np.clip(np.minimum(after, before), 0.0, 1.0)
        env = np.maximum(env, x * x * (3 - 2 * x))
    return env


def constrain_to_phones(talking: np.ndarray, emotion: np.ndarray, phones,
                        fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The alignment's constraints on the learned engine's lips.

    The speech part lets go of every channel in pauses (:func:`rest_envelope`: the avatar's rest
    pose, lips together) and takes the phonetic engine's bilabial pose on the channels a closure
    owns (:func:`.phonetic.closure_envelope`, :data:`.visemes.CLOSURE_POSE`), with ``mouthClose``
    cancelling whatever jaw opening is left at the lips; the emotion's part lets go of the
    channels that move the lips at closures (the phonetic engine's rule), so a closure closes
    under any emotion.

    Args:
        talking: (T, 52) the speech part on the clip's grid.
        emotion: (T, 52) the emotion's part (T's output minus the speech part).
        phones: contiguous phones of the recording.
        fps: frames per second of the grid.

    Returns:
        ``(talking, emotion, closed)``: new (T, 52) float32 arrays, and (T,) bool, the frames
        fully in a closure (their values must stay as they are).
    """
    times = frame_times(len(talking), fps)
    closure, pose = closure_envelope(list(phones), times, fps)
    c = closure[:, None].astype(np.float32)
    talking = talking * (1 - rest_envelope(phones, times)[:, None]).astype(np.float32)
    talking[:, _POSE_TO] = (1 - c) * talking[:, _POSE_TO] + c * pose[:, _POSE_FROM]
    close, jaw = CHANNEL_INDEX["mouthClose"], CHANNEL_INDEX["jawOpen"]
    talking[:, close] = np.maximum(talking[:, close], closure * talking[:, jaw])
    emotion = emotion.copy()
    emotion[:, _AT_CLOSURE] *= 1 - c
    return talking.astype(np.float32), emotion.astype(np.float32), closure >= 1.0 - 1e-6


def load_learned_engine(device: str = "cpu", hubert_dir: str = "", clip_checkpoint: str = "",
                        clip_arch: str = "ViT-B-32", folder: str | Path = ASSETS) -> LearnedEngine:
    """:meth:`LearnedEngine.load`, once per distinct set of arguments (a changed device or weight
    folder loads anew).

    Raises:
        ModelFileError: a checkpoint is missing or malformed.
    """
    return _cached_engine(device, hubert_dir, clip_checkpoint, clip_arch, str(folder))


@functools.lru_cache(maxsize=2)
def _cached_engine(device: str, hubert_dir: str, clip_checkpoint: str, clip_arch: str, folder: str) -> LearnedEngine:
    return LearnedEngine.load(device, folder, hubert_dir=hubert_dir, clip_checkpoint=clip_checkpoint,
                              clip_arch=clip_arch)

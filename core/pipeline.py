"""animate(): a recording, an emotion and an intensity control → an AnimationClip."""

from __future__ import annotations

import functools
import os
import time

import numpy as np
from tqdm import tqdm

from .audio.features import num_frames, prosody
from .audio.load import SAMPLE_RATE, load_audio
from .audio.phones import speech_phones
from .audio.transcript import read_transcript
from .channels import ARKIT_CHANNELS, CHANNEL_INDEX
from .clip import AnimationClip
from .emotion.vocabulary import canonical_emotion
from .errors import EmotionError, SettingsError
from .expression import phonetic
from .expression.eyes import eye_weights, pauses_in_loudness
from .intensity.control import is_audio_control, resolve_intensity

ENGINES = ("phonetic", "learned")
"""Expression engines :func:`animate` can run: the phonetic/FACS engine (visemes from
pocketsphinx phones) and the learned transformer T of Xu et al. (``flame_assets/*_CARD.md``)."""

DEFAULT_ENGINE = "phonetic"
"""See README.md, "Engines", for the evaluation behind this choice."""

DEVICE_ENV = "EMOFLAME_DEVICE"
"""``auto`` (CUDA when torch sees a GPU), ``cpu`` or ``cuda``: where the learned models run."""

EYE_CHANNELS = [i for name, i in CHANNEL_INDEX.items() if name.startswith(("eyeBlink", "eyeLook"))]


@functools.lru_cache(maxsize=2)
def learned_engine(device: str | None = None):
    """The trained P, M and T, loaded once per process.

    Args:
        device: ``'cpu'``, ``'cuda'`` or ``'auto'``; default ``$EMOFLAME_DEVICE`` or ``'auto'``.

    Raises:
        ModelFileError: a checkpoint in ``flame_assets/`` is missing or malformed.
        SettingsError: an unknown device, or ``'cuda'`` without a GPU.
    """
    import torch

    from .expression.learned import LearnedEngine

    device = (device or os.environ.get(DEVICE_ENV) or "auto").lower()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise SettingsError(f"unknown device {device!r} (from ${DEVICE_ENV}); choose auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise SettingsError(f"device 'cuda' asked for but torch sees no GPU; set {DEVICE_ENV}=cpu or auto")
    return LearnedEngine.load(device)


def animate(audio: str | os.PathLike, emotion: str = "neutral", intensity: str | float | np.ndarray = "audio",
            transcript: str | None = None, fps: float = 25.0, seed: int = 0, engine: str = DEFAULT_ENGINE,
            progress: bool = True) -> AnimationClip:
    """Turn a recording into emotional, lip-synced facial animation.

    Args:
        audio: a wav, flac, ogg or mp3 file, any sample rate, mono or stereo.
        emotion: one of the 8 MEAD emotions (neutral, happy, sad, angry, fearful, disgusted,
            surprised, contempt) or a common synonym ("joyful", "mad"); with the learned engine
            also free text ("quietly furious"), read by its text encoder.
        intensity: ``'audio'`` (from the speaking tone, frame by frame, by the learned
            intensity predictor P, Xu et al. Sec. 3.2, for either engine), a constant in [0, 1],
            a (T,) array in [0, 1], or the path of a CSV curve of ``time,intensity`` or
            ``frame,intensity`` rows (see :func:`core.intensity.control.read_curve`).
        transcript: the words spoken, inline or as the path of a text file; the phonetic
            engine then aligns its phones to them instead of recognising them (more accurate lip
            sync); the learned engine reads only the audio.
        fps: frames per second of the animation.
        seed: seeds everything random (blinks, gaze, P's prior sample, M's z): the same seed
            gives the same clip.
        engine: ``'phonetic'`` (default) or ``'learned'``; both need no download.
        progress: show a tqdm progress bar on stderr.

    Returns:
        :class:`AnimationClip` with ``weights`` (T, 52) over ``ARKIT_CHANNELS``, T =
        ceil(duration × fps), frame 0 at ``audio_offset`` = 0 s into ``audio_path``.

    Raises:
        AudioError: the audio is missing, unreadable, empty, silent or over an hour.
        EmotionError: unknown emotion (the message lists the choices).
        IntensityError: a malformed intensity control.
        TranscriptError: an empty or unreadable transcript, or one that does not match the audio.
        SettingsError: an unknown engine or device, or a frame rate outside 1–240 fps.
        ModelFileError: a learned checkpoint in ``flame_assets/`` is missing or malformed.
    """
    if engine not in ENGINES:
        raise SettingsError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if not (np.isfinite(fps) and 0 < fps <= 240):
        raise SettingsError(f"fps is {fps}; give a frame rate between 1 and 240 (25, 30, 60 …)")
    # Fail on a typo before any audio work; the learned engine also reads free text.
    mood = _free_text_or(canonical_emotion, emotion) if engine == "learned" else canonical_emotion(emotion)
    text = read_transcript(transcript) if transcript is not None and engine == "phonetic" else None
    uses_learned = engine == "learned" or is_audio_control(intensity)
    started = time.perf_counter()
    steps = tqdm(total=4, desc="emoflame", unit="step", disable=not progress, leave=False)
    with steps:
        steps.set_postfix_str("loading models" if uses_learned else "reading audio")
        models = learned_engine() if uses_learned else None
        samples, _ = load_audio(audio)
        n = num_frames(len(samples) / SAMPLE_RATE, fps)
        steps.update()
        steps.set_postfix_str("intensity")
        tracks = prosody(samples, fps)
        curve = resolve_intensity(intensity, samples, fps, n, tracks,
                                  from_audio=lambda: models.predict_intensity(samples, fps, seed=seed))
        steps.update()
        if engine == "phonetic":
            steps.set_postfix_str("aligning phones" if text else "recognising phones")
            phones = speech_phones(samples, text, progress=progress)
            steps.update()
            steps.set_postfix_str("animating")
            weights, latent = phonetic.generate(samples, fps, mood, curve, seed=seed, tracks=tracks, phones=phones)
        else:
            steps.set_postfix_str("animating")
            steps.update()
            weights, latent = models.generate(samples, fps, emotion, curve, seed=seed)
            # T learned no eyes (the capture's eye channels are empty): blinks and gaze as the phonetic engine's.
            eyes = eye_weights(n, fps, pauses_in_loudness(tracks.loudness, fps), seed)
            weights[:, EYE_CHANNELS] = eyes[:, EYE_CHANNELS]
        steps.update()
    return AnimationClip(
        fps=fps, intensity=curve, emotion_latent=latent, weights=weights, channels=ARKIT_CHANNELS,
        emotion=str(emotion), audio_path=str(os.path.abspath(audio)), audio_offset=0.0,
        meta={
            "engine": engine, "seed": int(seed), "emotion_class": mood,
            "intensity": _describe(intensity),
            "phones": ("aligned to transcript" if text else "recognised") if engine == "phonetic" else "none",
            "intensity_source": "learned predictor P" if is_audio_control(intensity) else "given",
            "seconds": round(time.perf_counter() - started, 3),
        },
    )


def _free_text_or(canonical, emotion: str) -> str:
    """The canonical emotion when there is one, else the free text itself (non-empty)."""
    try:
        return canonical(emotion)
    except EmotionError:
        if not str(emotion).strip():
            raise
        return " ".join(str(emotion).split())


def _describe(intensity) -> str | float:
    """The intensity control as it goes into the clip's provenance."""
    if isinstance(intensity, (str, os.PathLike)):
        return str(intensity)
    return "per-frame array" if np.ndim(intensity) else float(intensity)

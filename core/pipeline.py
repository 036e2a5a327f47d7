"""animate(): a recording, an emotion and an intensity control → an AnimationClip."""

from __future__ import annotations

import os
import time

import numpy as np
from tqdm import tqdm

from .audio.features import num_frames, prosody
from .audio.load import SAMPLE_RATE, load_audio
from .audio.phones import speech_phones
from .audio.transcript import read_transcript
from .channels import ARKIT_CHANNELS
from .clip import AnimationClip
from .emotion.vocabulary import canonical_emotion
from .errors import SettingsError
from .expression import phonetic
from .intensity.control import resolve_intensity

ENGINES = ("phonetic",)
"""Expression engines :func:`animate` can run; ``learned`` joins when its checkpoints land."""


def animate(audio: str | os.PathLike, emotion: str = "neutral", intensity: str | float | np.ndarray = "audio",
            transcript: str | None = None, fps: float = 25.0, seed: int = 0, engine: str = "phonetic",
            progress: bool = True) -> AnimationClip:
    """Turn a recording into emotional, lip-synced facial animation.

    Args:
        audio: a wav, flac, ogg or mp3 file, any sample rate, mono or stereo.
        emotion: one of the 8 MEAD emotions (neutral, happy, sad, angry, fearful, disgusted,
            surprised, contempt) or a common synonym ("joyful", "mad").
        intensity: ``'audio'`` (from the speaking tone, frame by frame), a constant in [0, 1],
            a (T,) array in [0, 1], or the path of a CSV curve of ``time,intensity`` or
            ``frame,intensity`` rows (see :func:`core.intensity.control.read_curve`).
        transcript: the words spoken, inline or as the path of a text file; the phones are then
            aligned to it instead of recognised (more accurate lip sync).
        fps: frames per second of the animation.
        seed: seeds everything random (blinks, gaze): the same seed gives the same clip.
        engine: ``'phonetic'``, the default engine that needs no download.
        progress: show a tqdm progress bar on stderr.

    Returns:
        :class:`AnimationClip` with ``weights`` (T, 52) over ``ARKIT_CHANNELS``, T =
        ceil(duration × fps), frame 0 at ``audio_offset`` = 0 s into ``audio_path``.

    Raises:
        AudioError: the audio is missing, unreadable, empty, silent or over an hour.
        EmotionError: unknown emotion (the message lists the choices).
        IntensityError: a malformed intensity control.
        TranscriptError: an empty or unreadable transcript, or one that does not match the audio.
        SettingsError: an unknown engine or a frame rate outside 1–240 fps.
    """
    if engine not in ENGINES:
        raise SettingsError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if not (np.isfinite(fps) and 0 < fps <= 240):
        raise SettingsError(f"fps is {fps}; give a frame rate between 1 and 240 (25, 30, 60 …)")
    mood = canonical_emotion(emotion)  # fail on a typo before any audio work
    text = read_transcript(transcript) if transcript is not None else None
    started = time.perf_counter()
    steps = tqdm(total=4, desc="emoflame", unit="step", disable=not progress, leave=False)
    with steps:
        steps.set_postfix_str("reading audio")
        samples, _ = load_audio(audio)
        n = num_frames(len(samples) / SAMPLE_RATE, fps)
        steps.update()
        steps.set_postfix_str("prosody")
        tracks = prosody(samples, fps)
        curve = resolve_intensity(intensity, samples, fps, n, tracks)
        steps.update()
        steps.set_postfix_str("aligning phones" if text else "recognising phones")
        phones = speech_phones(samples, text, progress=progress)
        steps.update()
        steps.set_postfix_str("animating")
        weights, latent = phonetic.generate(samples, fps, mood, curve, seed=seed, tracks=tracks, phones=phones)
        steps.update()
    return AnimationClip(
        fps=fps, intensity=curve, emotion_latent=latent, weights=weights, channels=ARKIT_CHANNELS,
        emotion=str(emotion), audio_path=str(os.path.abspath(audio)), audio_offset=0.0,
        meta={
            "engine": engine, "seed": int(seed), "emotion_class": mood,
            "intensity": _describe(intensity),
            "phones": "aligned to transcript" if text else "recognised", "seconds": round(time.perf_counter() - started, 3),
        },
    )


def _describe(intensity) -> str | float:
    """The intensity control as it goes into the clip's provenance."""
    if isinstance(intensity, (str, os.PathLike)):
        return str(intensity)
    return "per-frame array" if np.ndim(intensity) else float(intensity)

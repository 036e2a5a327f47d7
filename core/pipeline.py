"""animate(): a recording, an emotion and an intensity control → an AnimationClip.

Data flows one way: the front door reads every argument (emotion, transcript, engine, settings)
before any slow work; the audio is loaded and analysed once (:mod:`.audio.speech`); the intensity
control becomes a curve (:mod:`.intensity.control`, the learned predictor P for ``"audio"``); an
expression engine (:mod:`.expression.engine`) turns speech, emotion and intensity into the 52
channels; the layers every engine gets (the eyes, the head's motion) go on top; the clip comes out.
"""

from __future__ import annotations

import os
import time

import numpy as np
from tqdm import tqdm

from .audio.features import frame_times
from .audio.load import SAMPLE_RATE, load_audio
from .audio.speech import AUTO, NONE, analyse_speech, is_transcript_mode
from .audio.transcript import read_transcript
from .channels import ARKIT_CHANNELS
from .clip import AnimationClip
from .emotion.track import DEFAULT_TRANSITION_S, read_emotion_track
from .errors import EmotionError, IntensityError, SettingsError
from .expression import DEFAULT_ENGINE, ENGINES
from .expression.engines import engine_class, load_engine
from .expression.eyes import add_eyes
from .expression.head import head_motion as motion_of_head
from .intensity.control import is_audio_control, resolve_intensity
from .settings import Settings
from . import validate

MAX_FPS = 240.0


def animate(audio: str | os.PathLike, emotion="neutral", intensity: str | float | np.ndarray = "audio",
            transcript: str | None = "auto", fps: float = 25.0, seed: int = 0, engine: str = DEFAULT_ENGINE,
            head_motion: bool = True, transition: float = DEFAULT_TRANSITION_S, jaw: float = 1.0,
            lips: float = 1.0, progress: bool = True, settings: Settings | None = None) -> AnimationClip:
    """Turn a recording into emotional, lip-synced facial animation.

    Args:
        audio: a wav, flac, ogg or mp3 file, any sample rate, mono or stereo.
        emotion: one of the 8 MEAD emotions (neutral, happy, sad, angry, fearful, disgusted,
            surprised, contempt) or a common synonym ("joyful", "mad"); with the learned engine
            also free text ("quietly furious"), read by its text encoder. Or an emotion track
            that changes within the take: ``"neutral@0,angry@2.5,sad@6"`` (emotion@seconds, each
            holding until the next), the path of a ``time,emotion[,intensity]`` CSV file, or
            ``[("neutral", 0.0), ("angry", 2.5)]`` (:func:`core.emotion.track.read_emotion_track`).
        intensity: ``'audio'`` (from the speaking tone, frame by frame, by the learned
            intensity predictor P, Xu et al. Sec. 3.2, for either engine), a constant in [0, 1],
            a (T,) array in [0, 1], or the path of a CSV curve of ``time,intensity`` or
            ``frame,intensity`` rows (see :func:`core.intensity.control.read_curve`).
        transcript: ``"auto"`` (default; None alike): the phonetic engine aligns its phones to
            the words Whisper recognises (:mod:`core.audio.recognition`), falling back to phone
            recognition, with the reason in ``meta["phones"]``, when it finds none or they do not
            align; ``"none"``: phone recognition; or the words spoken, inline or as the path of a
            text file, to align to. The learned engine reads only the audio.
        fps: frames per second of the animation, 1 to 240.
        seed: seeds everything random (blinks, gaze, P's prior sample, M's z): the same seed
            gives the same clip.
        engine: ``'phonetic'`` (default) or ``'learned'`` (``core.expression.ENGINES``); both need
            no download.
        head_motion: give the head nods on accents, sway and the emotion's posture
            (:mod:`core.expression.head`); False keeps it still (``head_pose`` None).
        transition: seconds over which one emotion of a track eases into the next (0 to 10).
        jaw, lips: the phonetic engine's articulation dials in [0, 2] (Edwards et al., "JALI",
            SIGGRAPH 2016): how far the jaw opens, how far the lips shape, 1 as the voice's effort
            says.
        progress: show a tqdm progress bar on stderr.
        settings: device and optional weight folders; ``Settings.from_environment()`` by default.

    Returns:
        :class:`AnimationClip` with ``weights`` (T, 52) over ``ARKIT_CHANNELS``, T =
        ceil(duration × fps), frame 0 at ``audio_offset`` = 0 s into ``audio_path``,
        ``head_pose`` (T, 3) radians unless ``head_motion`` is False, and ``intensity`` the
        frame-wise intensity of the emotion as it shows (0 where the take is neutral).

    Raises:
        AudioError: the audio is missing, unreadable, empty, silent or over an hour.
        EmotionError: unknown emotion (the message lists the choices).
        IntensityError: a malformed intensity control.
        TranscriptError: an empty or unreadable transcript, or one that does not match the audio.
        SettingsError: an unknown engine or device, a frame rate outside 1–240 fps, or a seed that
            is not a whole number from 0 to 2³² − 1.
        ModelFileError: a learned checkpoint in ``flame_assets/`` is missing or malformed.
    """
    settings = settings if settings is not None else Settings.from_environment()
    if engine not in ENGINES:
        raise SettingsError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    fps = validate.frame_rate(fps, MAX_FPS)
    seed = validate.seed(seed)
    kind = engine_class(engine)
    # Fail on a typo before any audio work.
    track = read_emotion_track(emotion, free_text=kind.free_text, transition=transition)
    if track.intensities is not None and not is_audio_control(intensity):
        raise IntensityError("the emotion track file gives the intensity in its third column; leave the intensity "
                             "at 'audio', or drop the track's intensity column")
    if transcript is None or is_transcript_mode(transcript, AUTO) or is_transcript_mode(transcript, NONE):
        words = transcript
    else:
        words = read_transcript(transcript) if kind.needs_phones else None
    from_audio = is_audio_control(intensity)
    started = time.perf_counter()
    steps = tqdm(total=4, desc="emoflame", unit="step", disable=not progress, leave=False)
    with steps:
        steps.set_postfix_str("loading models" if from_audio or engine != "phonetic" else "reading audio")
        expression_engine = load_engine(engine, settings, jaw=jaw, lips=lips)
        predictor = _intensity_predictor(settings) if from_audio and track.intensities is None else None
        samples, _ = load_audio(audio)
        _check_track_fits(track, len(samples) / SAMPLE_RATE)
        steps.update()
        steps.set_postfix_str(_speech_step(kind.needs_phones, words))
        speech = analyse_speech(samples, fps, phones=kind.needs_phones, transcript=words,
                                whisper_model=settings.whisper_model, progress=progress)
        steps.update()
        steps.set_postfix_str("intensity")
        times = frame_times(speech.num_frames, fps)
        curve = track.intensity(times)
        if curve is None:
            curve = resolve_intensity(intensity, samples, fps, speech.num_frames, speech.prosody,
                                      from_audio=lambda: predictor.predict(speech, seed=seed, hubert_dir=settings.hubert_dir))
        steps.update()
        steps.set_postfix_str("animating")
        expression = expression_engine.generate(speech, track, curve, seed=seed)
        weights = add_eyes(expression.weights, speech, seed)
        head = motion_of_head(speech.prosody, fps, track, curve, seed) if head_motion else None
        steps.update()
    single = len(track.emotions) == 1
    return AnimationClip(
        fps=fps, intensity=curve * track.presence(times), emotion_latent=expression.emotion_latent, weights=weights,
        channels=ARKIT_CHANNELS, head_pose=head, emotion=str(emotion) if single else track.describe(),
        emotion_track=() if single else track.entries(), audio_path=str(os.path.abspath(audio)), audio_offset=0.0,
        meta={
            "engine": engine, "seed": int(seed),
            "emotion_class": " → ".join(e.name or e.text for e in track.emotions),
            "intensity": _describe(intensity), "phones": speech.phone_source,
            **({"transcript": speech.transcript} if speech.transcript else {}),
            "intensity_source": ("emotion track file" if track.intensities is not None
                                 else "learned predictor P" if from_audio else "given"),
            "seconds": round(time.perf_counter() - started, 3),
        },
    )


def _check_track_fits(track, duration: float) -> None:
    """Every emotion of the track starts within the recording.

    Raises:
        EmotionError: one starts after the end (the message names it and the recording's length).
    """
    late = [(e.text, s) for e, s in zip(track.emotions, track.starts) if s >= duration]
    if late:
        words, start = late[0]
        raise EmotionError(f"the emotion track's {words!r} starts at {start:g} s but the recording is {duration:.2f} s "
                           "long; give times within the recording")


def _speech_step(needs_phones: bool, words) -> str:
    """The progress bar's name for the speech analysis."""
    if not needs_phones:
        return "prosody"
    if words is None or is_transcript_mode(words, AUTO):
        return "transcribing and aligning"
    return "recognising phones" if is_transcript_mode(words, NONE) else "aligning phones"


def _intensity_predictor(settings: Settings):
    from .intensity.learned import load_learned_intensity

    return load_learned_intensity(settings.torch_device())


def _describe(intensity) -> str | float:
    """The intensity control as it goes into the clip's provenance."""
    if isinstance(intensity, (str, os.PathLike)):
        return str(intensity)
    return "per-frame array" if np.ndim(intensity) else float(intensity)

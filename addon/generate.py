"""One Generate, from the panel's options to a written take: the steps the Generate operator runs.

:class:`GenerateSession` gathers and checks the options, starts the core away from the UI thread
(``core.worker.start_job``), and writes the take only when the clip is ready, so nothing in the
file changes until the one step that the undo system records. Its methods (start, poll, finish,
cancel) are what the modal operator calls from its timer, and what scripts and tests call
without an event loop.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import bpy

from ..core.errors import EmotionError, IntensityError, RigError, TranscriptError
from ..core.expression import DEFAULT_ENGINE
from ..core.settings import Settings
from ..core.validate import unit_interval
from ..core.worker import Request, start_job
from . import rigs
from .preferences import get_preferences

ACTIVE: list["GenerateSession"] = []  # the running Generate, at most one


@dataclass(frozen=True)
class GenerateOptions:
    """What one Generate is asked, from the operator's options and the panel (:func:`gather_options`).

    Attributes:
        target: the object to animate by name, or "" for the active object.
        audio: an audio file, or "" when ``strip`` names a sound strip.
        strip: a sound strip of the scene, or "".
        emotion: one of the 8, a synonym, or free text: the emotion from the take's start until
            the first ``emotion:`` timeline marker (:func:`emotion_track`).
        intensity: "audio", "keyed" (the scene's keyed Intensity) or a number in [0, 1] as text.
        engine: an engine name, or "DEFAULT" for the preferences' choice.
        seed: the random seed.
        transcript: the words spoken, "auto" (recognise them) or "none" (phones only).
        head_motion: key the head's motion on the rig's neck or head bone.
        transition: seconds over which one emotion eases into the next at a marker.
        jaw, lips: the phonetic engine's articulation dials in [0, 2].
    """

    target: str
    audio: str
    strip: str
    emotion: str
    intensity: str
    engine: str
    seed: int
    transcript: str
    head_motion: bool = True
    transition: float = 0.3
    jaw: float = 1.0
    lips: float = 1.0


class GenerateSession:
    """One Generate, from options to a written take.

    Attributes:
        scene: the scene the take goes to.
        info: the recognised target (rigs.TargetInfo).
        request: what the core is asked (worker.Request).
        frame_start: the scene frame where the audio starts (the sound strip's start).
        strip_name: the sound strip to reuse, or None to add one on finish.
    """

    def __init__(self, scene, info, request, frame_start, strip_name, job):
        self.scene, self.info, self.request = scene, info, request
        self.frame_start, self.strip_name, self.job = frame_start, strip_name, job
        self.cancel_requested = False

    @classmethod
    def start(cls, context, options: GenerateOptions) -> "GenerateSession":
        """Check the options and the target, then start the core. Changes nothing in the file.

        Args:
            context: a bpy context (its scene and active object are used).
            options: from :func:`gather_options`.

        Raises:
            EmoflameError (RigError, AudioError, EmotionError, IntensityError, …): with the fix.
        """
        scene = context.scene
        target = bpy.data.objects.get(options.target) if options.target else context.active_object
        if options.target and target is None:
            raise RigError(f"there is no object named {options.target!r}: give the face mesh's name as target")
        info = rigs.describe_target(target)
        audio, frame_start, strip_name = resolve_audio(scene, options)
        fps = scene.render.fps / scene.render.fps_base
        intensity = resolve_intensity(scene, options.intensity, audio, fps, frame_start)
        prefs = get_preferences(context)
        engine = options.engine
        if engine == "DEFAULT":
            engine = prefs.default_engine if prefs else DEFAULT_ENGINE
        request = Request(audio=audio, emotion=emotion_track(scene, options.emotion, frame_start, fps),
                          transition=options.transition, jaw=options.jaw, lips=options.lips, intensity=intensity,
                          fps=fps,
                          seed=options.seed, engine=engine, transcript=options.transcript or "auto",
                          head_motion=options.head_motion,
                          settings=core_settings(prefs).to_dict())
        job = start_job(request, prefs.run_mode if prefs else "AUTO", bpy.path.abspath(prefs.python_path) if prefs else "")
        session = cls(scene, info, request, frame_start, strip_name, job)
        ACTIVE.append(session)
        return session

    def poll(self):
        """The job's state (worker.JobState): done, fraction or None, status message."""
        return self.job.poll()

    def cancel(self) -> None:
        """Stop the core and forget its result; the file is left as it was."""
        try:
            self.job.cancel()
        finally:
            self._release()

    def finish(self):
        """Wait for the clip and write it: the take's Actions, the sound strip if needed, the
        scene's end frame if the take runs past it. Returns (actions, clip).

        Raises:
            JobError: the core failed (``user_error`` tells whether its message says the fix).
            JobCancelled: :meth:`cancel` was called first.
        """
        try:
            clip = self.job.result()
        finally:
            self._release()
        try:
            self.info.mesh.name
        except ReferenceError:  # the user deleted the object while the core ran
            raise RigError("the target object was deleted while generating: select a face and Generate again") from None
        target = rigs.prepare_target(self.info)
        actions = rigs.write_take(target, clip, frame_start=self.frame_start)
        if self.strip_name is None:
            from .sound import add_sound_strip

            add_sound_strip(self.scene, self.request.audio, frame_start=self.frame_start)
        last = int(clip.scene_frames(self.frame_start)[-1])
        if self.scene.frame_end < last:
            self.scene.frame_end = last
        return actions, clip, target

    def _release(self):
        if self in ACTIVE:
            ACTIVE.remove(self)


def core_settings(prefs) -> Settings:
    """The core's settings from the add-on's preferences (device, weight folders as absolute
    paths); from the environment while the add-on is not enabled (bpy used as a module)."""
    if prefs is None:
        return Settings.from_environment()
    return Settings(device=prefs.device, hubert_dir=_absolute(prefs.hubert_dir),
                    clip_checkpoint=_absolute(prefs.clip_checkpoint), whisper_model=_absolute(prefs.whisper_dir))


def _absolute(path: str) -> str:
    return bpy.path.abspath(path) if path else ""


def gather_options(operator, scene) -> GenerateOptions:
    """The operator's options where it was given them, the panel's (``scene.emoflame``) elsewhere."""
    panel = scene.emoflame
    given = operator.properties.is_property_set
    emotion = operator.emotion if given("emotion") else (
        panel.emotion_text.strip() if panel.emotion == "FREE_TEXT" else panel.emotion)
    if not emotion:
        raise EmotionError("the free-text emotion is empty: describe it (for example 'quietly furious') or pick one of the 8")
    if given("intensity"):
        intensity = operator.intensity
    else:
        intensity = {"audio": "audio", "KEYED": "keyed"}.get(panel.intensity_mode, str(panel.intensity))
    if given("audio"):
        audio, strip = operator.audio, ""
    elif given("strip"):
        audio, strip = "", operator.strip
    else:
        audio, strip = (panel.audio_path, "") if panel.audio_source == "FILE" else ("", panel.sound_strip)
    return GenerateOptions(
        target=operator.target, audio=audio, strip=strip, emotion=emotion, intensity=intensity,
        engine=operator.engine if given("engine") else panel.engine,
        seed=operator.seed if given("seed") else panel.seed,
        transcript=operator.transcript if given("transcript") else _panel_transcript(panel),
        head_motion=operator.head_motion if given("head_motion") else panel.head_motion,
        transition=operator.transition if given("transition") else panel.transition,
        jaw=operator.jaw if given("jaw") else panel.jaw,
        lips=operator.lips if given("lips") else panel.lips,
    )


def _panel_transcript(panel) -> str:
    """The panel's Words: "auto", "none", or the typed transcript.

    Raises:
        TranscriptError: Typed with nothing typed.
    """
    if panel.transcript_mode != "TEXT":
        return panel.transcript_mode.lower()
    if not panel.transcript.strip():
        raise TranscriptError("Words is set to Typed but the transcript is empty: type what is said, or choose "
                              "Automatic")
    return panel.transcript.strip()


MARKER_PREFIX = "emotion:"
"""Timeline markers named ``emotion:angry`` (or ``emotion: quietly furious``) change the emotion."""


def emotion_track(scene, emotion: str, frame_start: int, fps: float):
    """The take's emotion: ``emotion`` alone, or, when the scene has ``emotion:`` timeline markers
    after ``frame_start``, ``[(emotion, 0.0), (marked emotion, seconds into the audio), …]`` (a
    marker on the take's first frame replaces ``emotion``).

    Raises:
        EmotionError: a marker names no emotion.
    """
    marks = sorted((m.frame, m.name[len(MARKER_PREFIX):].strip()) for m in scene.timeline_markers
                   if m.name.lower().startswith(MARKER_PREFIX) and m.frame >= frame_start)
    if not marks:
        return emotion
    empty = [frame for frame, words in marks if not words]
    if empty:
        raise EmotionError(f"the timeline marker on frame {empty[0]} names no emotion: rename it 'emotion:angry' "
                           "(any of the 8, a synonym, or free text with the learned engine)")
    track = [] if marks[0][0] == frame_start else [(emotion, 0.0)]
    return track + [(words, (frame - frame_start) / fps) for frame, words in marks]


def resolve_audio(scene, options: GenerateOptions):
    """(absolute audio path, frame where it starts, name of the strip to reuse or None)."""
    from ..core.errors import AudioError

    strips = scene.sequence_editor.strips_all if scene.sequence_editor else ()
    if options.strip:
        strip = next((s for s in strips if s.name == options.strip), None)
        if strip is None or strip.type != "SOUND":
            raise AudioError(f"there is no sound strip named {options.strip!r} in scene {scene.name!r}: "
                             "pick one in the panel or choose an audio file")
        return bpy.path.abspath(strip.sound.filepath), int(strip.frame_start), strip.name
    if not options.audio:
        raise AudioError("no audio chosen: pick an audio file or a sound strip in the emoflame panel")
    path = os.path.abspath(bpy.path.abspath(options.audio))
    if not os.path.isfile(path):
        raise AudioError(f"audio file {path} does not exist: pick a wav, flac, ogg or mp3 file")
    # The same recording already in the sequencer keeps its place; a new one starts on the scene's first frame.
    # Real paths on both sides: add_sound_strip stores the resolved path, a link may lead to the same file.
    for strip in strips:
        if strip.type == "SOUND" and os.path.realpath(bpy.path.abspath(strip.sound.filepath)) == os.path.realpath(path):
            return path, int(strip.frame_start), strip.name
    return path, scene.frame_start, None


def resolve_intensity(scene, intensity: str, audio: str, fps: float, frame_start: int):
    """'audio', a constant in [0, 1], or (Keyed) the scene's Intensity sampled on every frame.

    Raises:
        IntensityError: not 'audio', 'keyed' or a number in [0, 1]; Keyed without keyframes.
    """
    if intensity == "audio":
        return "audio"
    if intensity != "keyed":
        return unit_interval(intensity, "the intensity (or 'audio', 'keyed')")
    fcurve = _keyed_intensity_curve(scene)
    if fcurve is None:
        raise IntensityError("Intensity is set to Keyed but the scene's Intensity has no keyframes: key it "
                             "(hover it and press I) at a few frames, or choose Constant or From Audio")
    import aud

    sound = aud.Sound(audio)
    frames = math.ceil(sound.length / sound.specs[0] * fps)
    return [min(max(fcurve.evaluate(frame_start + i), 0.0), 1.0) for i in range(frames)]


def _keyed_intensity_curve(scene):
    from .compat import assigned_channelbag

    channelbag = assigned_channelbag(scene.animation_data)
    return channelbag.fcurves.find("emoflame.intensity") if channelbag else None

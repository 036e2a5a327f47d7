"""Operators: Generate (modal, cancellable, one undo step), Cancel, Clear Takes, Add Default Avatar.

Generate is a thin adapter (as io_scene_gltf2's operators are): it gathers the settings into a
``worker.Request``, starts the core away from the UI thread (``worker.start_job``), polls it from
a timer, and writes the take only when the clip is ready, so nothing in the file changes until
the one step that the undo system records. The steps are the methods of :class:`GenerateSession`
(start, poll, finish, cancel), which scripts and tests can call without an event loop.
"""

from __future__ import annotations

import math
import os

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from ..core.errors import EmoflameError, EmotionError, IntensityError, RigError
from . import rigs
from .preferences import get_preferences
from .worker import JobCancelled, JobError, Request, start_job

_ACTIVE: list["GenerateSession"] = []  # the running Generate, at most one


class GenerateSession:
    """One Generate, from settings to a written take.

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
    def start(cls, context, settings: dict) -> "GenerateSession":
        """Check the settings and the target, then start the core. Changes nothing in the file.

        Args:
            context: a bpy context (its scene and active object are used).
            settings: from :func:`gather_settings`.

        Raises:
            EmoflameError (RigError, AudioError, EmotionError, IntensityError, …): with the fix.
        """
        scene = context.scene
        target = bpy.data.objects.get(settings["target"]) if settings["target"] else context.active_object
        if settings["target"] and target is None:
            raise RigError(f"there is no object named {settings['target']!r}: give the face mesh's name as target")
        info = rigs.describe_target(target)
        audio, frame_start, strip_name = _resolve_audio(scene, settings)
        fps = scene.render.fps / scene.render.fps_base
        intensity = _resolve_intensity(scene, settings["intensity"], audio, fps, frame_start)
        prefs = get_preferences(context)
        engine = settings["engine"]
        if engine == "DEFAULT":
            engine = prefs.default_engine if prefs else "phonetic"
        request = Request(audio=audio, emotion=settings["emotion"], intensity=intensity, fps=fps,
                          seed=settings["seed"], engine=engine, transcript=settings["transcript"] or None,
                          env=core_environment(prefs))
        job = start_job(request, prefs.run_mode if prefs else "AUTO", bpy.path.abspath(prefs.python_path) if prefs else "")
        session = cls(scene, info, request, frame_start, strip_name, job)
        _ACTIVE.append(session)
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
        last = self.frame_start + round(clip.audio_offset * clip.fps) + clip.num_frames - 1
        if self.scene.frame_end < last:
            self.scene.frame_end = last
        return actions, clip, target

    def _release(self):
        if self in _ACTIVE:
            _ACTIVE.remove(self)


def core_environment(prefs) -> dict:
    """Environment variables that carry the preferences to the core (device, weight folders)."""
    if prefs is None:
        return {}
    # EMOFLAME_HUBERT and EMOFLAME_CLIP are what core/audio/hubert.py and core/emotion/text.py read.
    env = {"EMOFLAME_DEVICE": prefs.device}
    for name, value in (("EMOFLAME_HUBERT", prefs.hubert_dir), ("EMOFLAME_CLIP", prefs.clip_checkpoint)):
        if value:
            env[name] = bpy.path.abspath(value)
    return env


def gather_settings(operator, scene) -> dict:
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
    return {
        "target": operator.target, "audio": audio, "strip": strip, "emotion": emotion, "intensity": intensity,
        "engine": operator.engine if given("engine") else panel.engine,
        "seed": operator.seed if given("seed") else panel.seed,
        "transcript": operator.transcript if given("transcript") else panel.transcript.strip(),
    }


def _resolve_audio(scene, settings):
    """(absolute audio path, frame where it starts, name of the strip to reuse or None)."""
    from ..core.errors import AudioError

    strips = scene.sequence_editor.strips_all if scene.sequence_editor else ()
    if settings["strip"]:
        strip = next((s for s in strips if s.name == settings["strip"]), None)
        if strip is None or strip.type != "SOUND":
            raise AudioError(f"there is no sound strip named {settings['strip']!r} in scene {scene.name!r}: "
                             "pick one in the panel or choose an audio file")
        return bpy.path.abspath(strip.sound.filepath), int(strip.frame_start), strip.name
    if not settings["audio"]:
        raise AudioError("no audio chosen: pick an audio file or a sound strip in the emoflame panel")
    path = os.path.abspath(bpy.path.abspath(settings["audio"]))
    if not os.path.isfile(path):
        raise AudioError(f"audio file {path} does not exist: pick a wav, flac, ogg or mp3 file")
    # The same recording already in the sequencer keeps its place; a new one starts on the scene's first frame.
    # Real paths on both sides: add_sound_strip stores the resolved path, a link may lead to the same file.
    for strip in strips:
        if strip.type == "SOUND" and os.path.realpath(bpy.path.abspath(strip.sound.filepath)) == os.path.realpath(path):
            return path, int(strip.frame_start), strip.name
    return path, scene.frame_start, None


def _resolve_intensity(scene, intensity: str, audio: str, fps: float, frame_start: int):
    """'audio', a constant in [0, 1], or (Keyed) the scene's Intensity sampled on every frame."""
    if intensity == "audio":
        return "audio"
    if intensity != "keyed":
        try:
            value = float(intensity)
        except ValueError:
            raise IntensityError(f"intensity {intensity!r} is not 'audio', 'keyed' or a number in [0, 1]") from None
        if not 0.0 <= value <= 1.0:
            raise IntensityError(f"intensity {value} is outside [0, 1]: give a value from 0 (none) to 1 (full)")
        return value
    fcurve = _keyed_intensity_curve(scene)
    if fcurve is None:
        raise IntensityError("Intensity is set to Keyed but the scene's Intensity has no keyframes: key it "
                             "(hover it and press I) at a few frames, or choose Constant or From Audio")
    import aud

    sound = aud.Sound(audio)
    frames = math.ceil(sound.length / sound.specs[0] * fps)
    return [min(max(fcurve.evaluate(frame_start + i), 0.0), 1.0) for i in range(frames)]


def _keyed_intensity_curve(scene):
    from bpy_extras.anim_utils import animdata_get_channelbag_for_assigned_slot

    channelbag = animdata_get_channelbag_for_assigned_slot(scene.animation_data) if scene.animation_data else None
    return channelbag.fcurves.find("emoflame.intensity") if channelbag else None


def _report_error(operator, exc) -> None:
    operator.report({"ERROR"}, f"emoflame: {exc}")


class EMOFLAME_OT_generate(bpy.types.Operator):
    """Animate the face from the audio with the chosen emotion (Esc cancels)"""

    bl_idname = "emoflame.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER", "UNDO"}

    target: StringProperty(name="Target", description="Object to animate; the active object when empty")
    audio: StringProperty(name="Audio", description="Audio file (wav, flac, ogg, mp3)", subtype="FILE_PATH")
    strip: StringProperty(name="Sound Strip", description="Use this sound strip's audio and start frame")
    emotion: StringProperty(name="Emotion", description="neutral, happy, sad, angry, fearful, disgusted, "
                            "surprised, contempt, or free text")
    intensity: StringProperty(name="Intensity", description="'audio', 'keyed' (the scene's Intensity curve) "
                              "or a number in [0, 1]", default="audio")
    engine: StringProperty(name="Engine", description="phonetic, learned, or DEFAULT (the preferences)", default="DEFAULT")
    seed: IntProperty(name="Seed", min=0, default=0)
    transcript: StringProperty(name="Transcript", description="The words spoken (optional; aligns instead of recognising)")

    @classmethod
    def poll(cls, context):
        return not _ACTIVE

    def execute(self, context):
        """Blocking run, for scripts and ``blender -b``: start, wait, finish."""
        try:
            session = GenerateSession.start(context, gather_settings(self, context.scene))
            session.job.wait()
            return self._finish(context, session)
        except EmoflameError as exc:
            _report_error(self, exc)
            return {"CANCELLED"}

    def invoke(self, context, event):
        try:
            self._session = GenerateSession.start(context, gather_settings(self, context.scene))
        except EmoflameError as exc:
            _report_error(self, exc)
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.modal_handler_add(self)
        wm.emoflame_progress = 0.0
        self._show(context, f"emoflame: starting {self._session.job.where} (Esc to cancel)")
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        session = self._session
        if (event.type == "ESC" and event.value == "PRESS") or session.cancel_requested:
            session.cancel()
            self._end(context)
            self.report({"WARNING"}, "emoflame: cancelled, nothing was written")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = session.poll()
        percent = ""
        if state.fraction is not None:
            context.window_manager.emoflame_progress = state.fraction
            percent = f"{state.fraction:.0%} "
        self._show(context, f"emoflame: {percent}{state.message} (Esc to cancel)")
        if not state.done:
            return {"PASS_THROUGH"}
        self._end(context)
        try:
            return self._finish(context, session)
        except EmoflameError as exc:
            _report_error(self, exc)
            return {"CANCELLED"}

    def _finish(self, context, session):
        try:
            actions, clip, target = session.finish()
        except JobCancelled:
            self.report({"WARNING"}, "emoflame: cancelled, nothing was written")
            return {"CANCELLED"}
        except JobError as exc:
            self.report({"ERROR"}, f"emoflame: {exc}")
            return {"CANCELLED"}
        first = session.frame_start + round(clip.audio_offset * clip.fps)
        self.report({"INFO"}, f"emoflame: {actions[0].name}, frames {first}–{first + clip.num_frames - 1} "
                              f"on {target.summary()}")
        return {"FINISHED"}

    def _show(self, context, text):
        context.window_manager.emoflame_status = text
        if context.workspace:
            context.workspace.status_text_set(text)
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()

    def _end(self, context):
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.emoflame_status = ""
        wm.emoflame_progress = 0.0
        if context.workspace:
            context.workspace.status_text_set(None)


class EMOFLAME_OT_cancel(bpy.types.Operator):
    """Stop the running Generate; nothing is written"""

    bl_idname = "emoflame.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return bool(_ACTIVE)

    def execute(self, context):
        for session in _ACTIVE:
            session.cancel_requested = True
        return {"FINISHED"}


def take_actions(ids=None) -> list:
    """emoflame's takes (Actions marked ``emoflame_take``); with ``ids``, only those used by them."""
    from .action_writer import TAKE_PROPERTY

    takes = [a for a in bpy.data.actions if a.get(TAKE_PROPERTY)]
    if ids is None:
        return takes
    return [a for a in takes if any(user in ids for slot in a.slots for user in slot.users())]


def clear_takes(ids=None) -> int:
    """Remove emoflame's takes (of ``ids`` or everywhere), with the NLA strips that use them; an
    Action a take had replaced comes back from its muted ``[Action Stash]`` track. Other Actions
    are not touched. Returns the number of takes removed."""
    from .action_writer import STASH_TRACK

    takes = take_actions(ids)
    for block in ids if ids is not None else _animated_ids():
        data = block.animation_data
        if data is None:
            continue
        for track in list(data.nla_tracks):
            ours = [strip for strip in track.strips if strip.action in takes]
            for strip in ours:
                track.strips.remove(strip)
            if ours and not track.strips:
                data.nla_tracks.remove(track)
        if data.action not in takes:
            continue
        data.action = None
        stash = next((t for t in reversed(data.nla_tracks) if t.name == STASH_TRACK and t.strips), None)
        if stash is not None:
            strip = stash.strips[0]
            data.action, slot = strip.action, strip.action_slot
            if slot is not None:
                data.action_slot = slot
            data.nla_tracks.remove(stash)
    for action in takes:
        bpy.data.actions.remove(action)
    return len(takes)


def _animated_ids():
    for collection in (bpy.data.shape_keys, bpy.data.objects):
        yield from (block for block in collection if block.animation_data)


class EMOFLAME_OT_clear_takes(bpy.types.Operator):
    """Remove emoflame's takes (only Actions emoflame made); an Action a take replaced is put back"""

    bl_idname = "emoflame.clear_takes"
    bl_label = "Clear Takes"
    bl_options = {"REGISTER", "UNDO"}

    scope: EnumProperty(
        name="Scope",
        items=(("TARGET", "Target", "The takes on the active object (its shape keys and jaw bone)"),
               ("ALL", "All", "Every emoflame take in this file")),
        default="TARGET",
    )

    def execute(self, context):
        ids = None
        if self.scope == "TARGET":
            try:
                info = rigs.describe_target(context.active_object)
            except EmoflameError as exc:
                _report_error(self, exc)
                return {"CANCELLED"}
            ids = [info.mesh.data.shape_keys] + ([info.armature] if info.armature else [])
        count = clear_takes(ids)
        self.report({"INFO"}, f"emoflame: removed {count} take{'s' if count != 1 else ''}")
        return {"FINISHED"}


class EMOFLAME_OT_add_avatar(bpy.types.Operator):
    """Add the default FLAME head (mean shape, ARKit-named expression shape keys, teeth and tongue)"""

    bl_idname = "emoflame.add_avatar"
    bl_label = "Add Default FLAME Avatar"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from ..core.flame.avatar import default_avatar
        from .avatar_object import add_avatar_object

        try:
            obj = add_avatar_object(default_avatar(), collection=context.collection)
        except EmoflameError as exc:
            _report_error(self, exc)
            return {"CANCELLED"}
        obj.location = context.scene.cursor.location
        for other in context.selected_objects:
            other.select_set(False)
        obj.select_set(True)
        context.view_layer.objects.active = obj
        return {"FINISHED"}


class EMOFLAME_OT_add_flame_head(bpy.types.Operator):
    """Add your own FLAME model (the preferences' FLAME Model File) rigged as the MPI FLAME add-on
    rigs it: Exp and Pose shape keys, an armature with neck, jaw and eye bones"""

    bl_idname = "emoflame.add_flame_head"
    bl_label = "Add FLAME Head from Model File"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from .worker import torch_in_blender

        prefs = get_preferences(context)
        path = bpy.path.abspath(prefs.flame_model) if prefs and prefs.flame_model else ""
        if not path:
            self.report({"ERROR"}, "emoflame: no FLAME model file: set FLAME Model File in the add-on's preferences")
            return {"CANCELLED"}
        if not torch_in_blender():
            self.report({"ERROR"}, "emoflame: building a head from a FLAME model file needs torch in Blender's "
                        f"Python; or run 'emoflame animate AUDIO --flame-model {path} -o OUT.blend' in your "
                        "emoflame environment and append the head from OUT.blend")
            return {"CANCELLED"}
        from ..core.flame.model import load_flame_model
        from .avatar_object import add_flame_object

        try:
            head = add_flame_object(load_flame_model(path), collection=context.collection)
        except (EmoflameError, FileNotFoundError) as exc:
            _report_error(self, exc)
            return {"CANCELLED"}
        head.parent.location = context.scene.cursor.location
        for other in context.selected_objects:
            other.select_set(False)
        head.select_set(True)
        context.view_layer.objects.active = head
        return {"FINISHED"}


classes = (EMOFLAME_OT_generate, EMOFLAME_OT_cancel, EMOFLAME_OT_clear_takes, EMOFLAME_OT_add_avatar,
           EMOFLAME_OT_add_flame_head)

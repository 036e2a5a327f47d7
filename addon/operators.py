"""Operators: Generate (modal, cancellable, one undo step), Cancel, Clear Takes, Add Default Avatar,
Add FLAME Head.

Operators are thin adapters (as io_scene_gltf2's are): they gather their options, call the
steps of ``generate.GenerateSession`` or the take and avatar functions, and turn a domain error
into ``self.report({'ERROR'}, …)``.
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..core.emotion.vocabulary import MEAD_EMOTIONS
from ..core.errors import EmoflameError
from ..core.expression import ENGINES
from ..core.worker import JobCancelled, JobError
from . import rigs
from .generate import ACTIVE, MARKER_PREFIX, GenerateSession, gather_options
from .preferences import get_preferences
from .takes import clear_takes

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
    emotion: StringProperty(name="Emotion", description=f"{', '.join(MEAD_EMOTIONS)}, or free text")
    intensity: StringProperty(name="Intensity", description="'audio', 'keyed' (the scene's Intensity curve) "
                              "or a number in [0, 1]", default="audio")
    engine: StringProperty(name="Engine", description=f"{', '.join(ENGINES)}, or DEFAULT (the preferences)",
                           default="DEFAULT")
    seed: IntProperty(name="Seed", min=0, default=0)
    head_motion: BoolProperty(name="Head Motion", description="Key nods, sway and posture on the neck or head bone",
                              default=True)
    jaw: FloatProperty(name="Jaw", description="How far the jaw opens (phonetic engine)", min=0.0, max=2.0, default=1.0)
    lips: FloatProperty(name="Lips", description="How far the lips shape (phonetic engine)", min=0.0, max=2.0,
                        default=1.0)
    transition: FloatProperty(name="Transition", description="Seconds over which the emotion eases into the next "
                              "at an 'emotion:' timeline marker", min=0.0, max=10.0, default=0.3)
    transcript: StringProperty(name="Transcript", description="The words spoken, 'auto' (recognise them, the "
                               "default) or 'none' (phones only)")

    @classmethod
    def poll(cls, context):
        return not ACTIVE

    def execute(self, context):
        """Blocking run, for scripts and ``blender -b``: start, wait, finish."""
        try:
            session = GenerateSession.start(context, gather_options(self, context.scene))
            session.job.wait()
            return self._finish(context, session)
        except EmoflameError as exc:
            _report_error(self, exc)
            return {"CANCELLED"}

    def invoke(self, context, event):
        try:
            self._session = GenerateSession.start(context, gather_options(self, context.scene))
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
        frames = clip.scene_frames(session.frame_start)
        self.report({"INFO"}, f"emoflame: {actions[0].name}, frames {frames[0]}–{frames[-1]} on {target.summary()}")
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


class EMOFLAME_OT_add_emotion_marker(bpy.types.Operator):
    """Mark the current frame: the emotion changes here to the panel's emotion (a timeline marker
    'emotion:<name>' that Generate reads)"""

    bl_idname = "emoflame.add_emotion_marker"
    bl_label = "Emotion Changes Here"
    bl_options = {"REGISTER", "UNDO"}

    emotion: StringProperty(name="Emotion", description="The emotion from this frame on; the panel's when empty")

    def execute(self, context):
        scene = context.scene
        panel = scene.emoflame
        emotion = self.emotion.strip() or (panel.emotion_text.strip() if panel.emotion == "FREE_TEXT" else panel.emotion)
        if not emotion:
            self.report({"ERROR"}, "emoflame: the free-text emotion is empty: describe it or pick one of the 8")
            return {"CANCELLED"}
        for marker in [m for m in scene.timeline_markers if m.frame == scene.frame_current
                       and m.name.lower().startswith(MARKER_PREFIX)]:
            scene.timeline_markers.remove(marker)
        scene.timeline_markers.new(f"{MARKER_PREFIX}{emotion}", frame=scene.frame_current)
        return {"FINISHED"}


class EMOFLAME_OT_cancel(bpy.types.Operator):
    """Stop the running Generate; nothing is written"""

    bl_idname = "emoflame.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return bool(ACTIVE)

    def execute(self, context):
        for session in ACTIVE:
            session.cancel_requested = True
        return {"FINISHED"}


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
        obj.parent.location = context.scene.cursor.location  # the head rig carries the avatar
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
        from ..core.worker import torch_in_blender

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


classes = (EMOFLAME_OT_generate, EMOFLAME_OT_add_emotion_marker, EMOFLAME_OT_cancel, EMOFLAME_OT_clear_takes,
           EMOFLAME_OT_add_avatar,
           EMOFLAME_OT_add_flame_head)

"""The emoflame sidebar panel in the 3D viewport (N panel, "emoflame" tab)."""

import bpy

from ..core.errors import RigError
from . import rigs
from .generate import ACTIVE
from .preferences import get_preferences


class EMOFLAME_PT_main(bpy.types.Panel):
    """Target, audio, emotion, intensity, engine and seed, then Generate."""

    bl_label = "emoflame"
    bl_idname = "EMOFLAME_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "emoflame"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.emoflame

        box = layout.box()
        box.label(text="Target", icon="USER")
        try:
            info = rigs.describe_target(context.active_object)
        except RigError as exc:
            box.label(text=str(exc), icon="ERROR")
        else:
            box.label(text=f"{info.mesh.name}: {info.kind}", icon="SHAPEKEY_DATA")
            box.label(text=f"{len(info.matched)} of {len(info.matched) + len(info.unmatched)} channels matched")
            for note in info.notes:
                box.label(text=note, icon="INFO")
        box.operator("emoflame.add_avatar", icon="ADD")
        prefs = get_preferences(context)
        if prefs and prefs.flame_model:
            box.operator("emoflame.add_flame_head", icon="ADD")

        layout.use_property_split = True
        layout.use_property_decorate = False
        col = layout.column()
        col.prop(settings, "audio_source", expand=True)
        if settings.audio_source == "FILE":
            col.prop(settings, "audio_path", text="File")
        elif context.scene.sequence_editor:
            col.prop_search(settings, "sound_strip", context.scene.sequence_editor, "strips_all", text="Strip")
        else:
            col.label(text="The scene has no sound strips", icon="INFO")
        col.prop(settings, "transcript_mode")
        if settings.transcript_mode == "TEXT":
            col.prop(settings, "transcript")

        col = layout.column()
        col.prop(settings, "emotion")
        if settings.emotion == "FREE_TEXT":
            col.prop(settings, "emotion_text")
        row = col.row(align=True)
        row.operator("emoflame.add_emotion_marker", icon="MARKER_HLT")
        row.prop(settings, "transition", text="")
        col.prop(settings, "intensity_mode")
        if settings.intensity_mode != "audio":
            row = col.row(align=True)
            row.use_property_decorate = settings.intensity_mode == "KEYED"  # the keyframe dot
            row.prop(settings, "intensity")
        col.prop(settings, "engine")
        if settings.engine != "learned":
            row = col.row(align=True)
            row.prop(settings, "jaw")
            row.prop(settings, "lips")
        col.prop(settings, "seed")
        col.prop(settings, "head_motion")

        wm = context.window_manager
        if ACTIVE:
            layout.progress(factor=wm.emoflame_progress, text=wm.emoflame_status or "Generating…")
            layout.operator("emoflame.cancel", icon="CANCEL")
        else:
            layout.operator("emoflame.generate", icon="PLAY")
        row = layout.row(align=True)
        row.operator("emoflame.export_take", icon="EXPORT")
        row.operator("emoflame.render_portrait", icon="IMAGE_DATA")
        layout.operator("emoflame.clear_takes", icon="TRASH").scope = "TARGET"


class EMOFLAME_PT_channels(bpy.types.Panel):
    """Which ARKit channels the active object cannot show."""

    bl_label = "Unmatched Channels"
    bl_parent_id = "EMOFLAME_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "emoflame"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context):
        try:
            return bool(rigs.describe_target(context.active_object).unmatched)
        except RigError:
            return False

    def draw(self, context):
        flow = self.layout.grid_flow(columns=2, even_columns=True)
        for channel in rigs.describe_target(context.active_object).unmatched:
            flow.label(text=channel)


classes = (EMOFLAME_PT_main, EMOFLAME_PT_channels)

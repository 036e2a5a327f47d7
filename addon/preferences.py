"""Add-on preferences: where the core runs (Blender's Python or a worker interpreter), on which
device, where optional weights live, and the default expression engine.

Nothing here imports torch or numpy: enabling the extension stays instant.
"""

import bpy
from bpy.props import EnumProperty, StringProperty

from ..core.expression import DEFAULT_ENGINE, ENGINES

# The add-on's module name: "bl_ext.<repo>.emoflame" as an extension, "emoflame" from pip.
ADDON_ID = __package__.rpartition(".")[0]

ENGINE_ITEMS = [(name, name.capitalize(), description) for name, description in ENGINES.items()]


class EmoflamePreferences(bpy.types.AddonPreferences):
    """Preferences shown under Edit > Preferences > Add-ons > emoflame."""

    bl_idname = ADDON_ID

    run_mode: EnumProperty(
        name="Run In",
        items=(
            ("AUTO", "Automatic", "Inside Blender when torch imports there, otherwise in the worker interpreter"),
            ("BLENDER", "Blender", "Inside Blender's own Python (torch must be importable there)"),
            ("WORKER", "Worker Process", "In a separate process of the Python interpreter below"),
        ),
        default="AUTO",
    )
    python_path: StringProperty(
        name="Python Interpreter",
        description="The python of an environment where emoflame is installed (pip install emoflame), "
        "CUDA or not; used when torch does not import inside Blender",
        subtype="FILE_PATH",
    )
    device: EnumProperty(
        name="Device",
        items=(
            ("auto", "Automatic", "CUDA when available, else the CPU"),
            ("cpu", "CPU", "Always the CPU"),
            ("cuda", "CUDA", "An NVIDIA GPU (fails clearly when none is available)"),
        ),
        default="auto",
    )
    hubert_dir: StringProperty(
        name="HuBERT Weights", description="Folder of a HuBERT model saved with save_pretrained (optional)",
        subtype="DIR_PATH",
    )
    clip_checkpoint: StringProperty(
        name="CLIP Weights", description="An open_clip ViT-B-32 checkpoint file (open_clip_pytorch_model.bin) "
        "for the CLIP text encoder (optional: free text works without it)",
        subtype="FILE_PATH",
    )
    whisper_dir: StringProperty(
        name="Whisper Model", description="A local faster-whisper model folder for automatic transcripts "
        "(optional: Whisper tiny.en ships with emoflame)", subtype="DIR_PATH",
    )
    flame_model: StringProperty(
        name="FLAME Model File",
        description="Your FLAME model (generic_model.pkl, flame2023.pkl, flame2023_Open.pkl); optional, "
        "the default avatar needs none",
        subtype="FILE_PATH",
    )
    default_engine: EnumProperty(name="Default Engine", items=ENGINE_ITEMS, default=DEFAULT_ENGINE)

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        col = layout.column(heading="Core")
        col.prop(self, "run_mode")
        row = col.row()
        row.active = self.run_mode != "BLENDER"
        row.prop(self, "python_path")
        col.prop(self, "device")
        col.prop(self, "default_engine")
        col = layout.column(heading="Optional Weights")
        col.prop(self, "hubert_dir")
        col.prop(self, "clip_checkpoint")
        col.prop(self, "whisper_dir")
        col.prop(self, "flame_model")


def get_preferences(context=None):
    """The add-on's preferences, or None while the add-on is not enabled (bpy used as a module)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon else None

"""Scene settings behind the emoflame panel (``scene.emoflame``) and the running job's progress
(``window_manager.emoflame_progress``).

``scene.emoflame.intensity`` is animatable: with Intensity set to Keyed, the animator keys it by
hand and Generate samples it frame by frame (Xu et al. predict the same per-frame intensity from
the audio; this lets a person direct it instead).
"""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from ..core.emotion.vocabulary import MEAD_EMOTIONS
from ..core.expression import ENGINES


class EmoflameSettings(bpy.types.PropertyGroup):
    """What the next Generate uses. Every field is also an option of ``emoflame.generate``."""

    audio_source: EnumProperty(
        name="Audio",
        items=(
            ("FILE", "File", "An audio file (wav, flac, ogg, mp3); added to the sequencer as a sound strip"),
            ("STRIP", "Sound Strip", "A sound strip already in this scene; keys start where the strip starts"),
        ),
        default="FILE",
    )
    audio_path: StringProperty(name="Audio File", subtype="FILE_PATH")
    sound_strip: StringProperty(name="Sound Strip", description="Name of a sound strip in the sequencer")
    emotion: EnumProperty(
        name="Emotion",
        items=[(e, e.capitalize(), f"Speak {e}") for e in MEAD_EMOTIONS]
        + [("FREE_TEXT", "Free Text…", "A word or phrase: synonyms of the 8 ('joyful', 'mad') work with every "
                                       "engine, free descriptions ('quietly furious') need the learned engine")],
        default="neutral",
    )
    emotion_text: StringProperty(name="Describe", description="For example: quietly furious")
    intensity_mode: EnumProperty(
        name="Intensity",
        items=(
            ("audio", "From Audio", "Predicted frame by frame from the speaking tone"),
            ("CONSTANT", "Constant", "The Intensity value below on every frame"),
            ("KEYED", "Keyed", "The Intensity property as you keyframed it, sampled on every frame"),
        ),
        default="audio",
    )
    intensity: FloatProperty(
        name="Intensity", description="How strongly the emotion shows, 0 (none) to 1 (full); key it for Keyed mode",
        min=0.0, max=1.0, default=0.6, subtype="FACTOR",
    )
    engine: EnumProperty(
        name="Engine",
        items=[("DEFAULT", "Default", "The engine chosen in the preferences")]
        + [(name, name.capitalize(), description) for name, description in ENGINES.items()],
        default="DEFAULT",
    )
    transcript_mode: EnumProperty(
        name="Words",
        items=(
            ("AUTO", "Automatic", "Recognise the words (Whisper, no download) and align the lips to them"),
            ("TEXT", "Typed", "Align the lips to the words typed below (the most accurate)"),
            ("NONE", "None", "Recognise phones only (no words)"),
        ),
        default="AUTO",
    )
    transcript: StringProperty(
        name="Transcript", description="The words spoken: the lips are aligned to them",
    )
    seed: IntProperty(name="Seed", description="Changes blinks, eye movement, head motion and the emotion sample",
                      min=0, default=0)
    transition: FloatProperty(
        name="Transition (s)", description="Seconds over which the emotion eases into the next at an 'emotion:' "
        "timeline marker", min=0.0, max=10.0, default=0.3,
    )
    jaw: FloatProperty(name="Jaw", description="How far the jaw opens (phonetic engine): 1 as the voice's effort "
                       "says, 0.5 mumbled, 1.5 wide", min=0.0, max=2.0, default=1.0, subtype="FACTOR")
    lips: FloatProperty(name="Lips", description="How far the lips round, spread and tuck (phonetic engine); they "
                        "still close on m, b, p", min=0.0, max=2.0, default=1.0, subtype="FACTOR")
    head_motion: BoolProperty(name="Head Motion", description="Nods on accents, sway and the emotion's posture, "
                              "keyed on the rig's neck or head bone", default=True)


classes = (EmoflameSettings,)


def register_properties():
    bpy.types.Scene.emoflame = PointerProperty(type=EmoflameSettings)
    bpy.types.WindowManager.emoflame_progress = FloatProperty(
        name="Progress", min=0.0, max=1.0, subtype="FACTOR", options={"SKIP_SAVE"})
    bpy.types.WindowManager.emoflame_status = StringProperty(name="Status", options={"SKIP_SAVE"})


def unregister_properties():
    del bpy.types.WindowManager.emoflame_status
    del bpy.types.WindowManager.emoflame_progress
    del bpy.types.Scene.emoflame

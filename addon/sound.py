"""The recording as a sound strip in the scene's sequencer, so playback and renders have the audio."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..core.errors import AudioError


def add_sound_strip(scene: bpy.types.Scene, audio_path, *, frame_start: int = 1,
                    channel: int = 1) -> bpy.types.Strip:
    """Add the whole recording as a sound strip starting on ``frame_start``.

    The strip refers to the file (the .blend does not embed it); saving makes the path relative
    to the .blend, Blender's default, so a project folder can move as a whole. Scene audio
    sync is set to 'AUDIO_SYNC' so playback drops frames rather than drifting off the sound.

    Args:
        scene: the scene to add it to (its sequence editor is created if it has none).
        audio_path: a wav, flac, ogg or mp3 file.
        frame_start: the scene frame at which the sound starts (1: emoflame's clips start there).
        channel: the sequencer channel.

    Returns:
        The new sound strip, named after the file.

    Raises:
        AudioError: if the file does not exist or Blender cannot read it.
    """
    path = Path(audio_path).resolve()
    if not path.is_file():
        raise AudioError(f"audio file {path} does not exist; give the path of a wav, flac, ogg or mp3 file")
    editor = scene.sequence_editor or scene.sequence_editor_create()
    try:
        strip = editor.strips.new_sound(path.stem, str(path), channel=channel, frame_start=frame_start)
    except RuntimeError as exc:
        raise AudioError(f"Blender cannot read the audio in {path} ({exc}); convert it to wav") from exc
    scene.sync_mode = "AUDIO_SYNC"
    return strip

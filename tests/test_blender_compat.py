"""addon/compat.py, the seam between Blender 4.5 LTS and 5.0: each function gives the same result
on the Blender running the tests (the README's 5.0, or 4.5 in ``.ci/blender45``)."""

import tomllib
from pathlib import Path

import bpy
import numpy as np
import pytest

from emoflame.addon import compat
from emoflame.renderers.blender_video import configure_render

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def test_manifest_admits_4_5_lts_and_this_blender():
    manifest = tomllib.loads((REPO / "blender_manifest.toml").read_text())
    assert manifest["blender_version_min"] == "4.5.0"
    assert tuple(bpy.app.version) >= tuple(int(v) for v in manifest["blender_version_min"].split("."))


def test_fcurves_given_a_group_name_share_one_group_and_others_have_none(scene):
    action = bpy.data.actions.new("take")
    slot = action.slots.new(id_type="OBJECT", name="rig")
    channelbag = action.layers.new("layer").strips.new(type="KEYFRAME").channelbag(slot, ensure=True)
    x = compat.new_fcurve(channelbag, 'pose.bones["jaw"].rotation_euler', index=0, group_name="jaw")
    y = compat.new_fcurve(channelbag, 'pose.bones["jaw"].rotation_euler', index=1, group_name="jaw")
    plain = compat.new_fcurve(channelbag, 'key_blocks["jawOpen"].value')
    assert [g.name for g in channelbag.groups] == ["jaw"]
    assert (x.group.name, y.group.name, plain.group) == ("jaw", "jaw", None)
    assert [(f.data_path, f.array_index) for f in channelbag.fcurves] == [
        ('pose.bones["jaw"].rotation_euler', 0), ('pose.bones["jaw"].rotation_euler', 1), ('key_blocks["jawOpen"].value', 0)]


def test_new_materials_and_worlds_get_their_default_nodes(scene):
    material = bpy.data.materials.new("m")
    tree = compat.node_tree(material)
    assert {"Principled BSDF", "Material Output"} <= set(tree.nodes.keys())
    assert compat.node_tree(material) == tree and len(tree.nodes) == 2  # asked twice, made once
    world = bpy.data.worlds.new("w")
    assert {"Background", "World Output"} <= set(compat.node_tree(world).nodes.keys())


def test_eevee_is_named_as_this_blender_names_it(scene):
    configure_render(scene, engine="eevee", resolution=128)
    engines = [e.identifier for e in scene.render.bl_rna.properties["engine"].enum_items]
    assert scene.render.engine == compat.EEVEE_ENGINE
    assert compat.EEVEE_ENGINE in engines
    assert compat.EEVEE_ENGINE == ("BLENDER_EEVEE" if bpy.app.version >= (5, 0, 0) else "BLENDER_EEVEE_NEXT")
    background = scene.world.node_tree.nodes["Background"].inputs["Color"].default_value
    np.testing.assert_allclose(tuple(background), (0.05, 0.055, 0.06, 1.0), atol=1e-6)


def test_movie_output_is_ffmpeg_and_takes_the_mp4_settings(scene):
    settings = scene.render
    compat.set_movie_output(settings.image_settings)
    settings.ffmpeg.format, settings.ffmpeg.codec, settings.ffmpeg.audio_codec = "MPEG4", "H264", "AAC"
    assert settings.image_settings.file_format == "FFMPEG"
    assert (settings.ffmpeg.format, settings.ffmpeg.codec, settings.ffmpeg.audio_codec) == ("MPEG4", "H264", "AAC")


def test_a_movie_output_becomes_png_stills_and_back(scene):
    settings = scene.render.image_settings
    compat.set_movie_output(settings)
    compat.set_image_output(settings, "PNG")
    assert settings.file_format == "PNG"
    compat.set_movie_output(settings)
    assert settings.file_format == "FFMPEG"
    compat.set_image_output(settings, "JPEG")
    assert settings.file_format == "JPEG"


def test_assigned_channelbag_is_the_assigned_slots_or_none(scene):
    assert compat.assigned_channelbag(None) is None
    scene.animation_data_create()
    assert compat.assigned_channelbag(scene.animation_data) is None  # no Action assigned
    action = bpy.data.actions.new("intensity")
    slot = action.slots.new(id_type="SCENE", name=scene.name)
    channelbag = action.layers.new("layer").strips.new(type="KEYFRAME").channelbag(slot, ensure=True)
    channelbag.fcurves.new("emoflame.intensity")
    scene.animation_data.action = action
    scene.animation_data.action_slot = slot
    assert compat.assigned_channelbag(scene.animation_data) == channelbag
    assert [f.data_path for f in compat.assigned_channelbag(scene.animation_data).fcurves] == ["emoflame.intensity"]

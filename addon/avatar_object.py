"""Build the default FLAME avatar as a Blender mesh object with its shape keys and materials.

The mesh holds the 5023 FLAME vertices first (so FLAME vertex indices stay valid on the object)
and the mouth interior (teeth, gums, tongue) after them. Vertex data stays in FLAME's frame
(metres, y up, +z forward); the object is rotated +90° about X so the head stands up in
Blender's z-up world, facing -Y (the front view), as the MPI FLAME add-on does.
"""

from __future__ import annotations

import math

import bpy
import numpy as np

from ..core.flame import JOINT_NAMES
from ..core.flame.geometry import neck_weights
from ..core.flame.avatar import INTERIOR_PARTS
from .compat import node_tree

#: Custom property set on objects made here, so the add-on can recognise its own avatar.
AVATAR_PROPERTY = "emoflame_avatar"
COLOR_ATTRIBUTE = "emoflame_color"
UV_MAP = "emoflame_uv"

# Principled BSDF settings per region: wet eyes and tongue are glossy, skin is soft. The
# subsurface scale is in metres: skin scatters light over millimetres (Blender's default 5 cm
# turns a life-size head into wax).
_MATERIALS = {
    "skin": {"Roughness": 0.55, "Subsurface Weight": 0.2, "Subsurface Scale": 0.003},
    "eyes": {"Roughness": 0.08, "Coat Weight": 0.6},
    "teeth": {"Roughness": 0.3},
    "tongue": {"Roughness": 0.25, "Subsurface Weight": 0.2, "Subsurface Scale": 0.002},
}
#: The texture each material reads (``Avatar.textures``): the tongue material also draws the
#: gums and the mouth's inner surfaces, from the mouth palette.
_TEXTURES = {"skin": "skin", "eyes": "eyes", "teeth": "teeth", "tongue": "mouth"}
#: Ambient occlusion darkens folds and the mouth's inside in EEVEE and Cycles: the colour is
#: multiplied by AO_FLOOR + (1 - AO_FLOOR) * occlusion, looked up within AO_DISTANCE metres.
AO_DISTANCE, AO_FLOOR = 0.01, 0.35


def add_avatar_object(avatar, name: str = "emoflame_head", collection=None) -> bpy.types.Object:
    """Create a mesh object for ``avatar`` (core.flame.avatar.Avatar) and link it to a collection.

    Args:
        avatar: an Avatar: ``vertices`` (5023, 3) metres, ``faces`` (F, 3), ``blendshape_names``
            (S,), ``blendshape_deltas`` (S, 5023, 3) metres, ``masks`` (with 'eyeball_L',
            'eyeball_R'), ``vertex_colors`` (5023, 3) in [0, 1], and ``interior`` (teeth, gums,
            tongue: ``vertices`` (N, 3), ``faces`` (G, 3), ``blendshape_deltas`` (S, N, 3),
            ``vertex_colors`` (N, 3)).
        name: the object's and mesh's name (Blender adds .001 if it is taken).
        collection: where to link it; the scene's master collection of the context by default.

    Returns:
        The object: 5023 + N vertices, a ``Basis`` shape key and one shape key per blendshape
        (weight 1 = the avatar's delta), materials ``skin``, ``eyes``, ``teeth``, ``tongue``
        coloured from the avatar's textures through the ``emoflame_uv`` UV map (Workbench's
        Texture colour; EEVEE and Cycles, darkened by ambient occlusion), the same colours
        per vertex in the ``emoflame_color`` attribute, smooth shading; parented to a head rig
        ``<name>_rig`` (which carries the z-up rotation) whose ``neck`` bone on FLAME's neck joint
        turns the head (:func:`core.flame.geometry.neck_weights`; eyes and mouth interior follow
        the head).
    """
    interior = avatar.interior
    vertices = np.concatenate([avatar.vertices, interior.vertices]).astype(np.float32)  # (V, 3)
    faces = np.concatenate([avatar.faces, interior.faces + avatar.num_vertices]).astype(np.int32)  # (F, 3)
    colors = np.concatenate([avatar.vertex_colors, interior.vertex_colors]).astype(np.float32)  # (V, 3)
    corner_uv = np.concatenate([avatar.face_uv, interior.uv[interior.faces]]).astype(np.float32)  # (F, 3, 2)

    mesh = _new_mesh(name, vertices, faces)
    mesh.uv_layers.new(name=UV_MAP).data.foreach_set("uv", corner_uv.ravel())

    attribute = mesh.color_attributes.new(COLOR_ATTRIBUTE, "FLOAT_COLOR", "POINT")
    rgba = np.concatenate([colors, np.ones((len(colors), 1), np.float32)], axis=1)
    # The avatar's colours are display (sRGB) values; a float attribute holds scene-linear ones.
    attribute.data.foreach_set("color_srgb", rgba.ravel())
    mesh.color_attributes.active_color = attribute
    mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index

    _assign_materials(mesh, avatar, faces, colors)
    mesh.shade_smooth()

    obj = bpy.data.objects.new(name, mesh)
    obj[AVATAR_PROPERTY] = "default"
    collection = collection or bpy.context.scene.collection
    collection.objects.link(obj)
    joints = np.asarray(avatar.joint_regressor, np.float64) @ avatar.vertices  # (5, 3)
    neck = np.concatenate([neck_weights(avatar.vertices, joints[1]), np.ones(len(interior.vertices))])  # (V,)
    _add_rig(obj, joints[:2], np.array([-1, 0]), np.stack([1 - neck, neck], axis=1), collection)
    _add_shape_keys(obj, avatar, vertices)
    return obj


def _add_rig(obj, joints: np.ndarray, parents: np.ndarray, weights: np.ndarray, collection) -> bpy.types.Object:
    """An armature ``<obj>_rig`` with bones ``JOINT_NAMES[:J]`` on ``joints`` (J, 3) (FLAME's
    tree, ``parents`` (J,)), carrying the z-up rotation; ``obj`` parented to it and skinned by
    ``weights`` (V, J) through one vertex group per bone and an Armature modifier."""
    armature = bpy.data.objects.new(f"{obj.name}_rig", bpy.data.armatures.new(f"{obj.name}_rig"))
    armature.rotation_euler = (math.pi / 2, 0.0, 0.0)
    collection.objects.link(armature)
    bone_names = JOINT_NAMES[: len(joints)]
    _add_bones(armature, joints, parents, bone_names)
    obj.parent = armature
    for j, bone in enumerate(bone_names):
        group = obj.vertex_groups.new(name=bone)
        for weight in np.unique(weights[:, j][weights[:, j] > 0]):  # group.add takes the vertices of one weight
            group.add(np.flatnonzero(weights[:, j] == weight).tolist(), float(weight), "REPLACE")
    obj.modifiers.new("Armature", "ARMATURE").object = armature
    return armature


def _new_mesh(name: str, vertices: np.ndarray, faces: np.ndarray) -> bpy.types.Mesh:
    """A triangle mesh from (V, 3) vertices and (F, 3) faces, set in bulk."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.asarray(vertices, np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", np.asarray(faces, np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    if mesh.validate():
        raise ValueError(f"mesh {name!r} had invalid geometry (Blender had to repair it)")
    return mesh


def add_flame_object(model, name: str = "flame_head", collection=None) -> bpy.types.Object:
    """Build a user's FLAME model as the MPI FLAME Blender add-on lays it out.

    A mesh of the model's mean shape (``betas`` = 0) with shape keys ``Exp1..ExpE`` (the
    expression basis, weight = coefficient) and ``Pose1..Pose36`` (the pose correctives), skinned
    by an armature whose bones ``root``, ``neck``, ``jaw``, ``left_eye``, ``right_eye`` sit on the
    regressed joints, with one vertex group per bone from the model's LBS weights (Li et al.,
    "Learning a model of facial shape and expression from 4D scans", Sec. 3). ``addon.rigs``
    drives such a rig: Exp keys, the jaw bone and its correctives.

    Args:
        model: a core.flame.model.FLAME (``load_flame_model``): ``v_template`` (5023, 3),
            ``shapedirs`` (5023, 3, betas + E), ``posedirs`` (36, 5023 * 3), ``J_regressor``
            (5, 5023), ``parents`` (5,), ``lbs_weights`` (5023, 5), ``faces`` (F, 3).
        name: the mesh object's name; the armature is ``<name>_rig``.

    Returns:
        The mesh object, parented to the armature (which carries the z-up rotation).
    """
    vertices = model.v_template.detach().cpu().numpy().astype(np.float32)  # (V, 3) metres
    faces = model.faces.detach().cpu().numpy().astype(np.int32)
    expression = model.shapedirs[:, :, model.num_betas:].detach().cpu().numpy()  # (V, 3, E)
    posedirs = model.posedirs.detach().cpu().numpy().reshape(-1, len(vertices), 3)  # (36, V, 3)
    joints = model.J_regressor.detach().cpu().numpy() @ vertices  # (5, 3)
    parents = model.parents.detach().cpu().numpy()
    weights = model.lbs_weights.detach().cpu().numpy()  # (V, 5)

    collection = collection or bpy.context.scene.collection
    obj = bpy.data.objects.new(name, _new_mesh(name, vertices, faces))
    obj.data.shade_smooth()
    collection.objects.link(obj)
    _add_rig(obj, joints, parents, weights, collection)

    names = [f"Exp{i + 1}" for i in range(expression.shape[2])] + [f"Pose{i + 1}" for i in range(len(posedirs))]
    _add_shape_keys_at_rest(obj, vertices, names, np.concatenate([expression.transpose(2, 0, 1), posedirs]))
    return obj


def _add_bones(armature, joints: np.ndarray, parents: np.ndarray, names) -> None:
    """Edit bones on the joints (heads), pointing up (+y in FLAME) 2 cm, parented as FLAME's tree."""
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = armature
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bones = []
        for j, joint in enumerate(joints):
            bone = armature.data.edit_bones.new(names[j])
            bone.head = tuple(joint)
            bone.tail = tuple(joint + (0.0, 0.02, 0.0))
            if parents[j] >= 0:
                bone.parent = bones[parents[j]]
            bones.append(bone)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous


def _add_shape_keys(obj, avatar, vertices: np.ndarray) -> None:
    """One shape key per blendshape, the face and interior deltas side by side, set in bulk."""
    deltas = np.concatenate([avatar.blendshape_deltas, avatar.interior.blendshape_deltas], axis=1)  # (S, V, 3)
    _add_shape_keys_at_rest(obj, vertices, avatar.blendshape_names, deltas)
    obj.data.shape_keys.name = f"{obj.name}_keys"


def _add_shape_keys_at_rest(obj, vertices: np.ndarray, names, deltas: np.ndarray) -> None:
    """A Basis and one shape key per delta (S, V, 3), coordinates set in bulk, every value 0:
    bpy 5.0 adds a new key at value 1, which would show every shape at full weight."""
    obj.shape_key_add(name="Basis", from_mix=False)
    for name, delta in zip(names, deltas):
        key_block = obj.shape_key_add(name=name, from_mix=False)
        key_block.data.foreach_set("co", (vertices + delta).ravel())
        key_block.value = 0.0


def face_regions(avatar, faces: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Material region per face: 0 skin, 1 eyes, 2 teeth, 3 tongue (with the gums and the
    mouth's inner surfaces).

    Args:
        faces: (F, 3) triangles over the joined vertices (FLAME's, then the interior's).
        colors: (V, 3) vertex colours in [0, 1] (unused: regions follow the avatar's masks and
            the interior's parts; kept for callers that pass them).

    Returns:
        (F,) int32 indices into ``("skin", "eyes", "teeth", "tongue")``.
    """
    n = avatar.num_vertices
    eyeball = np.zeros(len(colors), bool)
    eyeball[:n] = avatar.masks["eyeball_L"] | avatar.masks["eyeball_R"]
    inner = np.zeros(len(colors), bool)
    inner[:n] = avatar.masks["mouth_inner"]
    region = np.zeros(len(faces), np.int32)
    region[eyeball[faces].all(axis=1)] = 1
    region[inner[faces].all(axis=1)] = 3
    inside = (faces >= n).all(axis=1)
    teeth = np.asarray(avatar.interior.parts) == INTERIOR_PARTS.index("teeth")
    region[inside] = np.where(teeth[faces[inside, 0] - n], 2, 3)
    return region


def _assign_materials(mesh, avatar, faces: np.ndarray, colors: np.ndarray) -> None:
    region = face_regions(avatar, faces, colors)
    face_rgb = colors[faces].mean(axis=1)
    for index, (label, settings) in enumerate(_MATERIALS.items()):
        chosen = region == index
        mean_rgb = face_rgb[chosen].mean(axis=0) if chosen.any() else np.full(3, 0.8)
        image = _image(f"emoflame_{_TEXTURES[label]}", avatar.textures[_TEXTURES[label]])
        mesh.materials.append(_textured_material(f"emoflame_{label}", mean_rgb, image, settings))
    mesh.polygons.foreach_set("material_index", region)


def _image(name: str, texture: np.ndarray) -> bpy.types.Image:
    """A packed 8-bit sRGB image from (H, W, 3) uint8, row 0 at the bottom (saved with the .blend)."""
    h, w = texture.shape[:2]
    image = bpy.data.images.new(name, w, h, alpha=False)
    rgba = np.concatenate([texture, np.full((h, w, 1), 255, np.uint8)], axis=2)
    image.pixels.foreach_set((rgba.astype(np.float32) / 255.0).ravel())
    image.pack()
    return image


def _srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB display values in [0, 1] to scene-linear (IEC 61966-2-1)."""
    rgb = np.asarray(rgb, np.float64)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _textured_material(name: str, mean_rgb: np.ndarray, image, settings: dict) -> bpy.types.Material:
    """A Principled material whose base colour is ``image`` through the avatar's UV map,
    darkened by ambient occlusion (EEVEE, Cycles). The image node is the active one, which
    Workbench's Texture colour shows; ``diffuse_color`` (the viewport's Material colour) is the
    region's mean colour.
    """
    material = bpy.data.materials.new(name)
    material.diffuse_color = (*map(float, _srgb_to_linear(mean_rgb)), 1.0)
    tree = node_tree(material)
    nodes, links = tree.nodes, tree.links
    bsdf = nodes["Principled BSDF"]
    uv = nodes.new("ShaderNodeUVMap")
    uv.uv_map = UV_MAP
    texture = nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.interpolation = "Linear"
    texture.extension = "EXTEND"  # beyond the skin texture (the back of the head) is its skin-coloured edge
    links.new(uv.outputs["UV"], texture.inputs["Vector"])
    occlusion = nodes.new("ShaderNodeAmbientOcclusion")
    occlusion.inputs["Distance"].default_value = AO_DISTANCE
    floor = nodes.new("ShaderNodeMapRange")
    floor.inputs["To Min"].default_value = AO_FLOOR
    links.new(occlusion.outputs["AO"], floor.inputs["Value"])
    shade = nodes.new("ShaderNodeMix")
    shade.data_type = "RGBA"
    shade.blend_type = "MULTIPLY"
    shade.inputs["Factor"].default_value = 1.0
    links.new(texture.outputs["Color"], shade.inputs["A"])
    links.new(floor.outputs["Result"], shade.inputs["B"])
    links.new(shade.outputs["Result"], bsdf.inputs["Base Color"])
    nodes.active = texture
    for socket, value in settings.items():
        bsdf.inputs[socket].default_value = value
    return material

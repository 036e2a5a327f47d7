"""Render the default avatar's contact sheet: every blendshape at weight 1 beside its ICT original.

    python docs/make_avatar_contact_sheet.py --data ../shared/data

Writes ``docs/avatar_contact_sheet.png`` (each cell: ICT FaceKit original left, the FLAME
avatar right, same orthographic front view, Blender Workbench; the avatar as
``add_avatar_object`` builds it, with its textures), ``docs/avatar_open_jaw.png`` (the avatar
with an open jaw, teeth and tongue visible, front and three-quarter view),
``docs/avatar_mouth.png`` (front close-ups of the mouth at rest, at the phonetic engine's
bilabial closure and at an open vowel: Workbench above, Cycles below, as
``renderers.blender_video`` renders them) and ``docs/avatar_mediapipe.json`` (MediaPipe Face
Landmarker's strongest blendshape scores on renders of a few poses) and
``docs/avatar_shape_readback.json`` (MediaPipe's reading of every shape pair on ICT's own head
beside the avatar's, :func:`shape_readback`). Needs bpy, mediapipe (test
dependencies) and the shared data for the ICT originals and the landmarker model.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import bpy
import numpy as np
from PIL import Image, ImageDraw

from emoflame.addon.avatar_object import add_avatar_object
from emoflame.addon.compat import set_image_output
from emoflame.core.expression.visemes import CLOSED
from emoflame.core.flame.avatar import default_avatar
from emoflame.core.flame.geometry import fit_similarity
from emoflame.flame_assets import build_default_avatar as build
from emoflame.renderers.blender_video import configure_render, frame_face

DOCS = Path(__file__).resolve().parent
CELL = 256  # pixels per head
ICT_RGB = (0.70, 0.70, 0.72)
ICT_RENDERED = range(0, 24591)  # skin, sockets, mouth interior, eyeballs (no lashes or occlusion shells)


def _mesh_object(name: str, vertices: np.ndarray, faces: np.ndarray, rgb: np.ndarray) -> bpy.types.Object:
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(vertices.tolist(), [], faces.tolist())
    colors = mesh.color_attributes.new("Col", "FLOAT_COLOR", "POINT")
    colors.data.foreach_set("color", np.hstack([rgb, np.ones((len(rgb), 1))]).astype(np.float32).ravel())
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), bool))
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _set_vertices(obj: bpy.types.Object, vertices: np.ndarray) -> None:
    obj.data.vertices.foreach_set("co", vertices.astype(np.float32).ravel())
    obj.data.update()


def _avatar_object(avatar, weights: dict, offset=(0.0, 0.0, 0.0)) -> bpy.types.Object:
    """The avatar as the add-on builds it (textures, materials), posed by its shape keys."""
    obj = add_avatar_object(avatar)
    obj.location = offset
    _pose(obj, weights)
    return obj


def _pose(obj: bpy.types.Object, weights: dict) -> None:
    for block in obj.data.shape_keys.key_blocks[1:]:
        block.value = float(weights.get(block.name, 0.0))


def _scene(width: int, height: int) -> bpy.types.Scene:
    """emoflame's Workbench look (``configure_render``: studio light, the avatar's textures,
    cavity shading; objects without a texture show their material colour) writing PNG stills
    with a transparent background."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    configure_render(scene, resolution=2 * ((max(width, height) + 1) // 2))
    scene.render.resolution_x, scene.render.resolution_y = width, height
    set_image_output(scene.render.image_settings, "PNG")
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.film_transparent = True
    return scene


def _avatar_scene(avatar, engine: str = "workbench", resolution: int = 512):
    """A fresh scene holding the avatar as emoflame renders a take (``configure_render``),
    writing PNG stills: (scene, the avatar's object)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    obj = _avatar_object(avatar, {})
    configure_render(scene, engine=engine, resolution=resolution)
    set_image_output(scene.render.image_settings, "PNG")
    return scene, obj


def _camera(scene, location, target, ortho_scale: float) -> None:
    cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    cam.data.type = "ORTHO"
    cam.data.ortho_scale = ortho_scale
    cam.location = location
    direction = np.asarray(target) - np.asarray(location)
    from mathutils import Vector

    cam.rotation_euler = Vector(direction).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(cam)
    scene.camera = cam


def _render(scene, path: Path) -> Image.Image:
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    rgba = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", rgba.size, "white")
    return Image.alpha_composite(white, rgba).convert("RGB")


def _flat_material(name: str, rgb) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    material.diffuse_color = (*rgb, 1.0)
    return material


def _save(image: Image.Image, out: Path) -> None:
    """A 256-colour PNG: a third of the size, no visible banding on Workbench shading."""
    image.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(out, optimize=True)


def _to_blender(v: np.ndarray) -> np.ndarray:
    """FLAME frame (y up, +z forward) -> Blender (z up, -y forward)."""
    return np.stack([v[..., 0], -v[..., 2], v[..., 1]], -1)


def contact_sheet(data: Path, out: Path, columns: int = 6) -> None:
    """Render every blendshape of the avatar beside ICT's original into one PNG."""
    avatar = default_avatar()
    flame = build.load_flame(data)
    ict = build.load_ict(data)
    flame_lmk = build.embed(flame["vertices"], flame["faces"], flame["landmark_faces"], flame["landmark_bary"])
    sim = fit_similarity(ict["vertices"][ict["landmarks"]][17:], flame_lmk[17:])
    keep = np.zeros(len(ict["vertices"]), bool)
    keep[ICT_RENDERED] = True
    ict_faces = ict["faces"][keep[ict["faces"]].all(1)]
    iv = sim.points(ict["vertices"])
    ict_d = sim.vectors(ict["deltas"])
    shift = np.array([0.085, 0.0, 0.0])  # heads side by side, ICT on the left

    scene = _scene(2 * CELL, CELL)
    _camera(scene, (0.0, -1.0, -0.012), (0.0, 0.0, -0.012), 0.34)
    ict_obj = _mesh_object("ict", _to_blender(iv - shift), ict_faces, np.tile(ICT_RGB, (len(iv), 1)))
    ict_obj.data.materials.append(_flat_material("ict", ICT_RGB))
    av_obj = _avatar_object(avatar, {}, tuple(_to_blender(shift)))
    names = list(avatar.blendshape_names)
    cells = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(["neutral"] + names):
            w = {} if name == "neutral" else {name: 1.0}
            s = ict["names"].index(name) if w else None
            _set_vertices(ict_obj, _to_blender((iv if s is None else iv + ict_d[s]) - shift))
            _pose(av_obj, w)
            img = _render(scene, Path(tmp) / f"{i:03d}.png")
            ImageDraw.Draw(img).text((6, 4), f"{name}  (ICT | avatar)", fill=(0, 0, 0), font_size=15)
            cells.append(img)
    rows = -(-len(cells) // columns)
    sheet = Image.new("RGB", (columns * 2 * CELL, rows * CELL), "white")
    for k, img in enumerate(cells):
        sheet.paste(img, ((k % columns) * 2 * CELL, (k // columns) * CELL))
    _save(sheet, out)


def open_jaw(out: Path) -> None:
    """The avatar with jawOpen 0.7 (teeth, gums and tongue visible), front and three-quarter view."""
    avatar = default_avatar()
    scene = _scene(2 * CELL, 2 * CELL)
    _avatar_object(avatar, {"jawOpen": 0.7})
    views = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, loc in enumerate([(0.0, -1.0, 0.0), (0.7, -0.7, 0.1)]):
            _camera(scene, loc, (0.0, 0.0, -0.025), 0.15)
            views.append(_render(scene, Path(tmp) / f"{k}.png"))
    sheet = Image.new("RGB", (2 * 2 * CELL, 2 * CELL), "white")
    for k, img in enumerate(views):
        sheet.paste(img, (k * 2 * CELL, 0))
    _save(sheet, out)


MEDIAPIPE_POSES = {
    "neutral": {},
    "jawOpen 0.8": {"jawOpen": 0.8},
    "mouthSmile": {"mouthSmile_L": 1.0, "mouthSmile_R": 1.0},
    "eyeBlink": {"eyeBlink_L": 1.0, "eyeBlink_R": 1.0},
    "eyeLookOut_L + eyeLookIn_R": {"eyeLookOut_L": 1.0, "eyeLookIn_R": 1.0},
    "eyeLookUp": {"eyeLookUp_L": 1.0, "eyeLookUp_R": 1.0},
    "browInnerUp": {"browInnerUp_L": 1.0, "browInnerUp_R": 1.0},
    "browDown": {"browDown_L": 1.0, "browDown_R": 1.0},
    "browOuterUp": {"browOuterUp_L": 1.0, "browOuterUp_R": 1.0},
    "mouthFrown": {"mouthFrown_L": 1.0, "mouthFrown_R": 1.0},
    "mouthFunnel": {"mouthFunnel": 1.0},
}


#: channels written for every pose, whether or not they are among its strongest
MEDIAPIPE_KEPT = ("browInnerUp", "browDownLeft", "browDownRight", "browOuterUpLeft", "browOuterUpRight",
                  "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "jawOpen")


def mediapipe_readings(model: Path, out: Path) -> None:
    """Render a few poses as emoflame renders a take (``configure_render``'s Workbench look and
    ``frame_face``'s camera, 512 px) and write MediaPipe Face Landmarker's five strongest
    blendshape scores for each, plus MEDIAPIPE_KEPT, to ``out`` (JSON): does the avatar read as
    what it does?"""
    import json

    import mediapipe as mp

    avatar = default_avatar()
    options = mp.tasks.vision.FaceLandmarkerOptions(
        base_options=mp.tasks.BaseOptions(model_asset_path=str(model)),
        output_face_blendshapes=True,
        running_mode=mp.tasks.vision.RunningMode.IMAGE,
    )
    scene, obj = _avatar_scene(avatar)
    frame_face(scene, obj, avatar.landmarks(avatar.vertices))
    readings = {}
    with mp.tasks.vision.FaceLandmarker.create_from_options(options) as landmarker, tempfile.TemporaryDirectory() as tmp:
        for label, weights in MEDIAPIPE_POSES.items():
            _pose(obj, weights)
            image = np.asarray(_render(scene, Path(tmp) / "pose.png"))
            found = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=image)).face_blendshapes
            scores = {c.category_name: round(float(c.score), 3) for c in found[0]} if found else {}
            strongest = dict(sorted(scores.items(), key=lambda kv: -kv[1])[:5])
            readings[label] = {"strongest": strongest, "kept": {k: scores.get(k) for k in MEDIAPIPE_KEPT}}
    out.write_text(json.dumps(readings, indent=1) + "\n")


def _mediapipe_channels(base: str, paired: bool) -> list[str]:
    """MediaPipe's names for the channels a shape (pair) stands for: ``browDown`` -> browDownLeft,
    browDownRight; ICT's extra ``cheekRaiser`` is read as the cheekSquint it resembles; MediaPipe
    has one browInnerUp and one cheekPuff."""
    base = "cheekSquint" if base == "cheekRaiser" else base
    return [base + "Left", base + "Right"] if paired and base not in ("browInnerUp", "cheekPuff") else [base]


def brow_to_lid(reading) -> float:
    """How low the brows sit, as MediaPipe's landmarks see them: the mean of (lower brow edge to
    upper lid) and (inner brow end to inner eye corner), in eye spans (outer corners 33-263)."""
    p = reading.points[:, :2]
    span = np.linalg.norm(p[33] - p[263])
    lower = (p[159, 1] - p[[55, 65, 52, 53, 46], 1].mean() + p[386, 1] - p[[285, 295, 282, 283, 276], 1].mean()) / 2
    inner = (p[133, 1] - p[55, 1] + p[362, 1] - p[285, 1]) / 2
    return float((lower + inner) / 2 / span)


def shape_readback(data: Path, out: Path) -> None:
    """MediaPipe's reading of each shape pair at weight 1 on ICT FaceKit's own head and on the
    avatar, both rendered alike (Workbench, ``configure_render``'s look, ``frame_face``'s camera on
    the avatar, 512 px; ICT in the avatar's skin, mouth and eye colours per vertex, the avatar as
    emoflame renders it); each as the change over its own neutral, on the channels the shape
    stands for, plus the brows' height over the lids (:func:`brow_to_lid`). Writes ``out`` (JSON):
    where the avatar reads much weaker than ICT, ``build_default_avatar.SHAPE_GAIN`` scales it."""
    import json

    from emoflame.renderers.portrait.face import FaceReader

    avatar = default_avatar()
    flame = build.load_flame(data)
    ict = build.load_ict(data)
    flame_lmk = build.embed(flame["vertices"], flame["faces"], flame["landmark_faces"], flame["landmark_bary"])
    sim = fit_similarity(ict["vertices"][ict["landmarks"]][17:], flame_lmk[17:])
    iv, ict_d = sim.points(ict["vertices"]), sim.vectors(ict["deltas"])
    keep = np.zeros(len(iv), bool)
    keep[ICT_RENDERED] = True
    rgb = np.tile(build.SKIN_RGB, (len(iv), 1))
    rgb[build.ICT_INTERIOR["gums_tongue"]] = build.GUMS_RGB
    rgb[build.ICT_INTERIOR["teeth"]] = build.TEETH_RGB
    eyes = np.arange(build.ICT_INTERIOR["teeth"].stop, ICT_RENDERED.stop)
    for side in (eyes[iv[eyes, 0] > 0], eyes[iv[eyes, 0] < 0]):
        d = iv[side] - iv[side].mean(0)
        angle = np.arctan2(np.linalg.norm(d[:, :2], axis=1), d[:, 2])[:, None]
        rgb[side] = np.where(angle < build.PUPIL_ANGLE, build.PUPIL_RGB,
                             np.where(angle < build.IRIS_ANGLE, build.IRIS_RGB, build.SCLERA_RGB))
    scene, av_obj = _avatar_scene(avatar)
    scene.render.image_settings.color_mode = "RGB"
    ict_obj = _mesh_object("ict", iv, ict["faces"][keep[ict["faces"]].all(1)], rgb)
    colours = ict_obj.data.color_attributes["Col"]  # display colours, as the avatar's
    colours.data.foreach_set("color_srgb", np.hstack([rgb, np.ones((len(rgb), 1))]).astype(np.float32).ravel())
    ict_obj.data.color_attributes.active_color = colours
    bpy.context.view_layer.update()
    ict_obj.matrix_world = av_obj.matrix_world.copy()
    frame_face(scene, av_obj, avatar.landmarks(avatar.vertices))
    names = list(avatar.blendshape_names)
    bases = list(dict.fromkeys(n[:-2] if n.endswith(("_L", "_R")) else n for n in names))
    results = {}
    with FaceReader(num_faces=1) as reader, tempfile.TemporaryDirectory() as tmp:
        def read(head: str, base: str | None):
            shapes = [n for n in names if base and (n == base or n[:-2] == base)]
            ict_obj.hide_render, av_obj.hide_render = head != "ict", head == "ict"
            scene.display.shading.color_type = "VERTEX" if head == "ict" else "TEXTURE"
            if head == "ict":
                moved = iv + sum((ict_d[ict["names"].index(n)] for n in shapes), np.zeros_like(iv))
                _set_vertices(ict_obj, moved)
            else:
                _pose(av_obj, {n: 1.0 for n in shapes})
            found = reader.read(np.asarray(_render(scene, Path(tmp) / "shape.png")))
            return found[0] if found else None

        rest = {head: read(head, None) for head in ("ict", "avatar")}
        for base in bases:
            row = {}
            for head in ("ict", "avatar"):
                found = read(head, base)
                if found is None or rest[head] is None:
                    row[head] = None
                    continue
                channels = _mediapipe_channels(base, base + "_L" in names)
                row[head] = {c: round(found.blendshapes[c] - rest[head].blendshapes[c], 3) for c in channels}
                row[head]["brow_to_lid"] = round(brow_to_lid(found) - brow_to_lid(rest[head]), 4)
            row["gain"] = build.SHAPE_GAIN.get(base, 1.0)
            results[base] = row
    out.write_text(json.dumps(results, indent=1) + "\n")


MOUTH_POSES = {"rest": {}, "bilabial closure": CLOSED, "open vowel": {"jawOpen": 0.5, "mouthLowerDown": 0.2}}


def mouth_closeups(out: Path, cycles_samples: int = 16) -> None:
    """Front close-ups of the mouth (MOUTH_POSES), Workbench above and Cycles below, rendered by
    emoflame's own look (``configure_render``) and camera (``frame_face`` on the mouth)."""
    avatar = default_avatar()
    names = set(avatar.blendshape_names)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ("workbench", "cycles"):
            scene, obj = _avatar_scene(avatar, engine, 2 * CELL)
            if engine == "cycles":
                scene.cycles.samples = cycles_samples
            lmk = avatar.landmarks(avatar.vertices)
            # frame_face's lights stand at the camera's distance: as bright on the face as in
            # emoflame's whole-face framing, they are dimmed by the square of the distances
            face_distance = (frame_face(scene, obj, lmk).location - obj.location).length
            mouth_distance = (frame_face(scene, obj, lmk[[48, 54, 33, 57]], margin=1.5).location - obj.location).length
            for light in (o for o in scene.objects if o.type == "LIGHT"):
                light.data.energy *= (mouth_distance / face_distance) ** 2
            cells = []
            for k, (label, weights) in enumerate(MOUTH_POSES.items()):
                _pose(obj, {n: w for name, w in weights.items()
                            for n in ((name,) if name in names else (name + "_L", name + "_R"))})
                img = _render(scene, Path(tmp) / f"{engine}{k}.png")
                ImageDraw.Draw(img).text((6, 4), f"{label} ({engine})", fill=(255, 255, 255), font_size=15)
                cells.append(img)
            rows.append(cells)
    sheet = Image.new("RGB", (len(MOUTH_POSES) * 2 * CELL, len(rows) * 2 * CELL), "white")
    for r, cells in enumerate(rows):
        for c, img in enumerate(cells):
            sheet.paste(img, (c * 2 * CELL, r * 2 * CELL))
    sheet.save(out, optimize=True)  # full colour: 256 colours band Cycles' dark mouth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (for ICT's originals)")
    parser.add_argument("--out", type=Path, default=DOCS / "avatar_contact_sheet.png")
    parser.add_argument("--open-jaw", type=Path, default=DOCS / "avatar_open_jaw.png")
    parser.add_argument("--mouth", type=Path, default=DOCS / "avatar_mouth.png")
    parser.add_argument("--mediapipe", type=Path, default=DOCS / "avatar_mediapipe.json")
    parser.add_argument("--shape-readback", type=Path, default=DOCS / "avatar_shape_readback.json")
    parser.add_argument("--only-readback", action="store_true", help="write only the shape read-back")
    args = parser.parse_args()
    if not args.only_readback:
        contact_sheet(args.data, args.out)
        open_jaw(args.open_jaw)
        mouth_closeups(args.mouth)
        mediapipe_readings(args.data / "models" / "face_landmarker.task", args.mediapipe)
    shape_readback(args.data, args.shape_readback)


if __name__ == "__main__":
    main()

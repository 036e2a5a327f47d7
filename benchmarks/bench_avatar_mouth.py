"""The default avatar's mouth, measured in front close-up renders (issue 8's mouth criteria).

    python benchmarks/bench_avatar_mouth.py [--out DIR] [--resolution 512] [--cycles]

For each pose (rest, the phonetic engine's bilabial closure, open vowels) it renders the avatar
as emoflame does (``addon.avatar_object.add_avatar_object``, ``renderers.blender_video``'s
look and camera, framed on the mouth) and two measuring passes from the same camera:

- a material-ID pass (Workbench, flat light, every material one flat colour, no
  anti-aliasing); the lower teeth, those that ``jawOpen`` moves, get their own colour. Tooth
  pixels are counted.
- an albedo pass (Workbench, flat light, the avatar's own colours, no anti-aliasing): a pixel
  is lip-coloured where it shows the mouth's lining (the tongue material) or where the skin
  material's colour lies nearer the lip colour than the skin colour (projected on the
  skin-to-lip axis). Its distance outside the lip contour (the
  avatar's outer lip contour, embedded on the mesh, posed, projected through the camera) is
  converted to millimetres with the camera's pixel size at the contour's depth.

Prints one row per pose, writes the PNGs under ``--out`` (the look, the ID and albedo passes).

With ``--speech`` it also animates the repository's recordings (the phonetic engine, each of
SPEECH_EMOTIONS at intensity 1, no head motion) and counts tooth pixels in the same close-up at
the middle frame of every bilabial (P, B, M) the engine aligned, and at the rest frames of the
leading silence (up to 0.3 s before the first word).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import bpy
from mathutils import Vector
from matplotlib.path import Path as PolyPath
from PIL import Image
from scipy.spatial import cKDTree

import emoflame
from emoflame.addon.avatar_object import add_avatar_object, face_regions
from emoflame.addon.compat import set_image_output
from emoflame.core.expression.visemes import CLOSED
from emoflame.core.flame.avatar import load_avatar
from emoflame.flame_assets import build_default_avatar as build
from emoflame.renderers.blender_video import configure_render, frame_face

#: name -> {shape key: weight}; a name without a side means both ``_L`` and ``_R``.
POSES = {
    "rest": {},
    "closure": CLOSED,
    "open_mid": {"jawOpen": 0.4, "mouthLowerDown": 0.2},
    "open_aa": {"jawOpen": 0.5, "mouthLowerDown": 0.2},
    "open_wide": {"jawOpen": 0.6, "mouthLowerDown": 0.2},
}
#: material-ID pass colours (linear RGB = display RGB under the Standard view transform)
ID_COLOURS = {"skin": (0, 0, 1), "eyes": (0, 1, 0), "teeth": (1, 0, 0), "tongue": (1, 0, 1), "teeth_lower": (1, 1, 0)}
LIP_OUTSIDE_MM = 2.0
MID_MM = 8.0
#: recordings (../shared/data/speech) and their transcripts ("auto": Whisper's words)
SPEECH = {"arctic_a0007": "and you always want to see it in the superlative degree",
          "asterisk-tt-monkeys": "auto", "asterisk-basic-pbx-ivr-main": "auto", "asterisk-demo-congrats": "auto"}
SPEECH_EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised")
BILABIALS = ("P", "B", "M")


def expand(avatar, weights: dict) -> dict:
    """{name: weight} with side-less names (``mouthPress``) spread to ``_L`` and ``_R``."""
    names = set(avatar.blendshape_names)
    out = {}
    for name, w in weights.items():
        for n in (name,) if name in names else (name + "_L", name + "_R"):
            out[n] = float(w)
    return out


@dataclass
class Shot:
    """A scene with the avatar object and emoflame's render settings."""

    scene: object
    obj: object
    avatar: object
    engine: str
    resolution: int


def new_shot(avatar, resolution: int, engine: str = "workbench") -> Shot:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    shot = Shot(bpy.context.scene, add_avatar_object(avatar), avatar, engine, resolution)
    look(shot)
    return shot


def look(shot: Shot, engine: str | None = None) -> None:
    """emoflame's own render settings (``configure_render``), writing PNG stills."""
    shot.engine = engine or shot.engine
    configure_render(shot.scene, engine=shot.engine, resolution=shot.resolution)
    if shot.engine == "cycles":
        shot.scene.cycles.samples = 16
    set_image_output(shot.scene.render.image_settings, "PNG")


def pose(shot: Shot, weights: dict) -> None:
    """Set every shape key: ``weights`` {name: w}, the others 0."""
    w = expand(shot.avatar, weights)
    for block in shot.obj.data.shape_keys.key_blocks[1:]:
        block.value = w.get(block.name, 0.0)
    bpy.context.view_layer.update()


def aim(shot: Shot, view: str) -> object:
    """emoflame's camera (``frame_face``) straight in front of the mouth (framing the corners,
    the nose base and the lower lip; its centre at the lips' height) or of the whole face."""
    lmk = shot.avatar.landmarks(shot.avatar.vertices)
    points = lmk[[48, 54, 33, 57]] if view == "mouth" else lmk
    return frame_face(shot.scene, shot.obj, points, margin=1.5 if view == "mouth" else 1.6)


def render(shot: Shot, path: Path) -> np.ndarray:
    """Render a still to ``path``: (H, W, 4) uint8 RGBA."""
    shot.scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return np.asarray(Image.open(path).convert("RGBA"))


def _flat(shot: Shot, color_type: str) -> dict:
    """Workbench with flat light, no anti-aliasing, exact colours; returns what it changed."""
    scene = shot.scene
    saved = {"engine": scene.render.engine, "color_type": scene.display.shading.color_type,
             "light": scene.display.shading.light, "aa": scene.display.render_aa,
             "view": scene.view_settings.view_transform, "look": scene.view_settings.look,
             "cavity": scene.display.shading.show_cavity, "spec": scene.display.shading.show_specular_highlight,
             "transparent": scene.render.film_transparent, "mode": scene.render.image_settings.color_mode}
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "FLAT"
    scene.display.shading.color_type = color_type
    scene.display.shading.show_cavity = False
    scene.display.shading.show_specular_highlight = False
    scene.display.render_aa = "OFF"
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.render.film_transparent = True
    scene.render.image_settings.color_mode = "RGBA"
    return saved


def _restore(shot: Shot, saved: dict) -> None:
    scene = shot.scene
    scene.render.engine = saved["engine"]
    scene.display.shading.color_type = saved["color_type"]
    scene.display.shading.light = saved["light"]
    scene.display.render_aa = saved["aa"]
    scene.view_settings.view_transform = saved["view"]
    scene.view_settings.look = saved["look"]
    scene.display.shading.show_cavity = saved["cavity"]
    scene.display.shading.show_specular_highlight = saved["spec"]
    scene.render.film_transparent = saved["transparent"]
    scene.render.image_settings.color_mode = saved["mode"]


def lower_teeth_faces(avatar) -> np.ndarray:
    """(F,) bool over the object's faces: the teeth that ``jawOpen`` carries (> 5 mm)."""
    inner = avatar.interior
    faces = np.concatenate([avatar.faces, inner.faces + avatar.num_vertices])
    colours = np.concatenate([avatar.vertex_colors, inner.vertex_colors])
    teeth = face_regions(avatar, faces, colours) == 2
    moves = np.linalg.norm(inner.blendshape_deltas[avatar.blendshape_names.index("jawOpen")], axis=1) > 0.005
    lower = np.zeros(len(faces), bool)
    lower[len(avatar.faces):] = moves[inner.faces].all(1)
    return teeth & lower


def id_pass(shot: Shot, path: Path) -> np.ndarray:
    """(H, W) int labels: indices into ``list(ID_COLOURS)``, -1 for the background."""
    mesh = shot.obj.data
    index = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("material_index", index)
    colours = [tuple(m.diffuse_color) for m in mesh.materials]
    extra = bpy.data.materials.new("emoflame_id_teeth_lower")
    mesh.materials.append(extra)
    for material, rgb in zip(list(mesh.materials), ID_COLOURS.values()):
        material.diffuse_color = (*rgb, 1.0)
    ids = np.where(lower_teeth_faces(shot.avatar), len(mesh.materials) - 1, index)
    mesh.polygons.foreach_set("material_index", ids.astype(np.int32))
    saved = _flat(shot, "MATERIAL")
    try:
        rgba = render(shot, path).astype(np.float64)
    finally:
        _restore(shot, saved)
        mesh.polygons.foreach_set("material_index", index)
        mesh.materials.pop()
        bpy.data.materials.remove(extra)
        for material, rgb in zip(mesh.materials, colours):
            material.diffuse_color = rgb
    palette = np.array(list(ID_COLOURS.values()), np.float64) * 255
    labels = np.argmin(((rgba[..., None, :3] - palette) ** 2).sum(-1), axis=-1)
    return np.where(rgba[..., 3] > 127, labels, -1)


def albedo_pass(shot: Shot, path: Path) -> np.ndarray:
    """(H, W, 3) float sRGB in [0, 1]: the avatar's own colours under flat light."""
    color_type = shot.scene.display.shading.color_type if shot.engine == "workbench" else "VERTEX"
    saved = _flat(shot, color_type)
    try:
        return render(shot, path)[..., :3] / 255.0
    finally:
        _restore(shot, saved)


def project(shot: Shot, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Object-space points (K, 3) -> pixel coordinates (K, 2) (x right, y down) and camera depths (K,) metres."""
    camera = shot.scene.camera
    world = shot.obj.matrix_world
    to_camera = camera.matrix_world.inverted()
    lens, sensor = camera.data.lens, camera.data.sensor_width
    res = shot.resolution
    px, depth = [], []
    for p in points:
        c = to_camera @ (world @ Vector(p))
        d = -c.z
        x = c.x / d * lens / sensor  # in sensor widths, the square frame's side
        y = c.y / d * lens / sensor
        px.append(((0.5 + x) * res, (0.5 - y) * res))
        depth.append(d)
    return np.array(px), np.array(depth)


def lip_bleed(shot: Shot, labels: np.ndarray, albedo: np.ndarray, weights: dict) -> dict:
    """Lip-coloured skin pixels outside the projected outer lip contour, in millimetres."""
    avatar = shot.avatar
    w = avatar.weight_vector(expand(avatar, weights))
    posed = avatar.vertices_for(w)
    px, depth = project(shot, avatar.lip_contour(posed))
    mm_per_px = 1e3 * float(depth.mean()) * shot.scene.camera.data.sensor_width / shot.scene.camera.data.lens / shot.resolution
    nose, _ = project(shot, avatar.landmarks(posed)[[33]])
    skin_rgb, lip_rgb = np.array(build.SKIN_RGB), np.array(build.LIP_RGB)
    axis = lip_rgb - skin_rgb
    t = (albedo - skin_rgb) @ axis / (axis @ axis)
    rows = np.arange(labels.shape[0])[:, None]
    below_nose = rows > nose[0, 1] + 2.0 / mm_per_px
    names = list(ID_COLOURS)
    lip_coloured = (((labels == names.index("skin")) & (t > 0.5)) | (labels == names.index("tongue"))) & below_nose
    yx = np.argwhere(lip_coloured)
    pts = yx[:, ::-1] + 0.5
    dense = np.concatenate([np.linspace(a, b, 8, endpoint=False) for a, b in zip(px, np.roll(px, -1, 0))])
    outside = ~PolyPath(px).contains_points(pts)
    dist = cKDTree(dense).query(pts[outside])[0] * mm_per_px if outside.any() else np.zeros(0)
    return {"lip_px": int(len(pts)), "outside_px": int(outside.sum()),
            "beyond_2mm_px": int((dist > LIP_OUTSIDE_MM).sum()),
            "max_outside_mm": float(dist.max()) if len(dist) else 0.0, "mm_per_px": mm_per_px}


def measure(shot: Shot, name: str, weights: dict, out: Path) -> dict:
    """Render the pose's look, ID and albedo passes in the mouth close-up, and the ID pass in
    the whole-face view (emoflame's own framing); the pose's figures."""
    pose(shot, weights)
    names = list(ID_COLOURS)
    row = {}
    aim(shot, "face")
    labels = id_pass(shot, out / f"{name}_face_id.png")
    row["face_teeth_upper_px"] = int((labels == names.index("teeth")).sum())
    row["face_teeth_lower_px"] = int((labels == names.index("teeth_lower")).sum())
    aim(shot, "mouth")
    render(shot, out / f"{name}_{shot.engine}.png")
    labels = id_pass(shot, out / f"{name}_id.png")
    albedo = albedo_pass(shot, out / f"{name}_albedo.png")
    row["teeth_upper_px"] = int((labels == names.index("teeth")).sum())
    row["teeth_lower_px"] = int((labels == names.index("teeth_lower")).sum())
    row.update(lip_bleed(shot, labels, albedo, weights))
    # lower teeth in the middle of the mouth: columns within MID_MM of the lips' centre line
    posed = shot.avatar.vertices_for(shot.avatar.weight_vector(expand(shot.avatar, weights)))
    centre, _ = project(shot, shot.avatar.landmarks(posed)[[51, 57]])
    columns = np.abs(np.arange(labels.shape[1]) + 0.5 - centre[:, 0].mean()) < MID_MM / row["mm_per_px"]
    row["teeth_lower_mid_px"] = int((labels[:, columns] == names.index("teeth_lower")).sum())
    return row


def speech_closures(shot: Shot, data: Path, out: Path) -> list[dict]:
    """Tooth pixels at the aligned bilabials and the leading rest frames of real speech takes."""
    from emoflame.core.audio.load import load_audio
    from emoflame.core.audio.speech import analyse_speech
    from emoflame.core.flame.rigmap import rigmap_for_avatar

    rigmap = rigmap_for_avatar(shot.avatar)
    rows = []
    aim(shot, "mouth")
    for name, transcript in SPEECH.items():
        path = data / "speech" / f"{name}.wav"
        samples, _ = load_audio(path)
        speech = analyse_speech(samples, 25.0, phones=True, transcript=transcript)
        phones = speech.phones
        words = speech.transcript or "none"  # the clips align to the same words as these phones
        for emotion in SPEECH_EMOTIONS:
            clip = emoflame.animate(path, emotion=emotion, intensity=1.0, transcript=words, head_motion=False,
                                    progress=False)
            targets = rigmap.apply(clip.weights, clip.channels)  # (T, M) shape-key values
            first_word = next(p.start for p in phones if p.name != "SIL")
            # rest: every fifth frame of the leading silence, up to 0.3 s before the first word
            # (from there the first phone's shape is anticipated)
            # a bilabial's frame is the one nearest its middle (int() took the frame before a short
            # one's start, where the lips are still closing)
            frames = {"bilabial": [round((p.start + p.end) / 2 * clip.fps) for p in phones if p.name in BILABIALS],
                      "rest": list(range(0, int((first_word - 0.3) * clip.fps), 5))}
            for kind, picked in frames.items():
                teeth = []
                for f in picked:
                    pose(shot, dict(zip(rigmap.targets, targets[min(f, len(targets) - 1)].tolist())))
                    labels = id_pass(shot, out / "speech_id.png")
                    teeth.append(int(np.isin(labels, [list(ID_COLOURS).index("teeth"),
                                                      list(ID_COLOURS).index("teeth_lower")]).sum()))
                rows.append({"recording": name, "emotion": emotion, "kind": kind, "frames": len(picked),
                             "phones": speech.phone_source, "with_teeth": int(np.count_nonzero(teeth)),
                             "max_teeth_px": max(teeth, default=0)})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "emoflame_mouth")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--cycles", action="store_true", help="also render each pose's look with Cycles (16 samples)")
    parser.add_argument("--avatar", type=Path, help="an avatar .npz (default: the shipped default avatar)")
    parser.add_argument("--speech", type=Path, metavar="DATA",
                        help="also count tooth pixels at the bilabials of real speech takes (the shared data folder)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    avatar = load_avatar(args.avatar) if args.avatar else emoflame.default_avatar()
    shot = new_shot(avatar, args.resolution)
    print(f"{'pose':10s} {'mouth view: teeth up':>20s} {'low':>5s} {'(mid)':>5s} {'face view: teeth up':>19s} "
          f"{'low':>5s} {'lip px':>7s} {'outside':>7s} {'>2 mm':>6s} {'max out mm':>10s} {'mm/px':>6s}")
    for name, weights in POSES.items():
        r = measure(shot, name, weights, args.out)
        print(f"{name:10s} {r['teeth_upper_px']:20d} {r['teeth_lower_px']:5d} {r['teeth_lower_mid_px']:5d} "
              f"{r['face_teeth_upper_px']:19d} {r['face_teeth_lower_px']:5d} {r['lip_px']:7d} {r['outside_px']:7d} "
              f"{r['beyond_2mm_px']:6d} {r['max_outside_mm']:10.2f} {r['mm_per_px']:6.3f}")
        if args.cycles:
            look(shot, "cycles")
            render(shot, args.out / f"{name}_cycles.png")
            look(shot, "workbench")
    pose(shot, {})
    aim(shot, "face")
    render(shot, args.out / "face_workbench.png")
    if args.cycles:
        look(shot, "cycles")
        render(shot, args.out / "face_cycles.png")
    if args.speech:
        print(f"\n{'recording':30s} {'emotion':10s} {'frames':>14s} {'with teeth':>10s} {'max teeth px':>12s}  phones")
        for r in speech_closures(shot, args.speech, args.out):
            print(f"{r['recording']:30s} {r['emotion']:10s} {r['frames']:5d} {r['kind']:>8s} {r['with_teeth']:10d} "
                  f"{r['max_teeth_px']:12d}  {r['phones'].split(' (')[0]}")
    print(f"PNGs in {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])

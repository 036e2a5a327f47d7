"""The default avatar (flame_assets/default_avatar.npz) and the transfer helpers that built it."""

import zipfile

import numpy as np
import pytest
import trimesh
from matplotlib.path import Path as PolyPath

import emoflame
from emoflame.core.channels import ARKIT_CHANNELS, canonical_channel
from emoflame.core.errors import ModelFileError
from emoflame.core.flame.avatar import FORMAT_VERSION, INTERIOR_PARTS, load_avatar
from emoflame.flame_assets import build_default_avatar as build
from emoflame.flame_assets import ict_transfer as transfer
from emoflame.flame_assets import paint


@pytest.fixture(scope="module")
def avatar():
    return emoflame.default_avatar()


@pytest.fixture(scope="module")
def skin_faces(avatar):
    skin = avatar.masks["skin"]
    return avatar.faces[skin[avatar.faces].all(1)]


def test_contract_shapes_and_names(avatar):
    s = len(avatar.blendshape_names)
    assert avatar.num_vertices == 5023 and s >= 52
    assert avatar.vertices.shape == (5023, 3) and avatar.vertices.dtype == np.float32
    assert avatar.faces.shape == (9976, 3) and avatar.faces.dtype == np.int32
    assert avatar.blendshape_deltas.shape == (s, 5023, 3) and avatar.blendshape_deltas.dtype == np.float32
    assert avatar.landmark_faces.shape == (68,) and avatar.landmark_bary.shape == (68, 3)
    assert avatar.joint_regressor.shape == (5, 5023)
    assert avatar.vertex_colors.shape == (5023, 3)
    assert avatar.vertex_colors.min() >= 0 and avatar.vertex_colors.max() <= 1
    inner = avatar.interior
    assert inner.blendshape_deltas.shape == (s, len(inner.vertices), 3)
    assert inner.faces.max() < len(inner.vertices) and inner.vertex_colors.shape == inner.vertices.shape
    for key in ("skin", "eyeball_L", "eyeball_R", "face", "lips", "lip_upper", "lip_lower", "mouth_inner"):
        assert avatar.masks[key].shape == (5023,) and avatar.masks[key].dtype == bool
    assert avatar.face_uv.shape == (9976, 3, 2) and np.isfinite(avatar.face_uv).all()
    assert set(avatar.textures) == {"skin", "eyes", "teeth", "mouth"}
    assert all(t.dtype == np.uint8 and t.ndim == 3 and t.shape[2] == 3 for t in avatar.textures.values())
    assert inner.parts.shape == (len(inner.vertices),) and set(np.unique(inner.parts)) == {0, 1, 2, 3}
    assert inner.uv.shape == (len(inner.vertices), 2) and (inner.uv >= 0).all() and (inner.uv <= 1).all()
    assert avatar.lip_contour(avatar.vertices).shape == (len(avatar.lip_contour_faces), 3)
    # every ARKit channel but tongueOut (ICT has none) is there, browInnerUp and cheekPuff per side
    covered = {canonical_channel(n) for n in avatar.blendshape_names} | set(avatar.blendshape_names)
    covered |= {n[:-2] for n in avatar.blendshape_names if n[:-2] in ARKIT_CHANNELS}
    assert set(ARKIT_CHANNELS) - covered == {"tongueOut"}


def test_no_nan_and_sizes_are_metres(avatar):
    for array in (avatar.vertices, avatar.blendshape_deltas, avatar.interior.vertices, avatar.interior.blendshape_deltas):
        assert np.isfinite(array).all()
    height = np.ptp(avatar.vertices[:, 1])
    assert 0.2 < height < 0.4  # a head with neck, in metres
    jaw = avatar.blendshape_names.index("jawOpen")
    assert 0.01 < np.abs(avatar.blendshape_deltas[jaw]).max() < 0.05


def test_rest_is_flame_template_except_inner_lips(avatar, shared_data):
    template = np.asarray(trimesh.load(shared_data / "flame" / "template.ply", process=False).vertices)
    moved = np.linalg.norm(avatar.vertices - template, axis=1) > 1e-6
    assert np.array_equal(avatar.faces, trimesh.load(shared_data / "flame" / "template.ply", process=False).faces)
    # only the lips moved (inner surfaces tucked, the lips sealed), all near the mouth
    lmk = avatar.landmarks(avatar.vertices)
    mouth_centre = lmk[48:68].mean(0)
    assert 0 < moved.sum() < 400
    assert np.linalg.norm(avatar.vertices[moved] - mouth_centre, axis=1).max() < 0.045
    # seen from the front, what moved outside the painted lip contour lies well behind the lips
    # (the inner lower lip, down towards the gums): the face around the mouth is FLAME's
    contour = avatar.lip_contour(avatar.vertices)
    outside = ~PolyPath(contour[:, :2]).contains_points(avatar.vertices[:, :2])
    assert (moved & ~outside).sum() > 100
    assert (avatar.vertices[moved & outside, 2] < lmk[57, 2] - 0.008).all()


def test_parts_move_only_where_they_should(avatar):
    names = avatar.blendshape_names
    d = np.linalg.norm(avatar.blendshape_deltas, axis=2)  # (S, V)
    skin, face = avatar.masks["skin"], avatar.masks["face"]
    assert d[:, skin & ~face].max() == 0.0  # nothing on the back of the head, ears or neck
    # the back of the head (behind the ears) is outside the face
    assert not face[avatar.vertices[:, 2] < -0.02].any()
    eyes = avatar.masks["eyeball_L"] | avatar.masks["eyeball_R"]
    for s, name in enumerate(names):
        if not name.startswith("eyeLook"):
            assert d[s, eyes].max() < 1e-4, name


@pytest.mark.parametrize("side,other", [("L", "R"), ("R", "L")])
def test_eye_look_turns_one_eyeball_rigidly(avatar, side, other):
    s = avatar.blendshape_names.index(f"eyeLookUp_{side}")
    idx = np.flatnonzero(avatar.masks[f"eyeball_{side}"])
    rest, posed = avatar.vertices[idx], avatar.vertices[idx] + avatar.blendshape_deltas[s, idx]
    pairs = np.random.default_rng(0).integers(0, len(idx), (500, 2))
    before = np.linalg.norm(rest[pairs[:, 0]] - rest[pairs[:, 1]], axis=1)
    after = np.linalg.norm(posed[pairs[:, 0]] - posed[pairs[:, 1]], axis=1)
    assert np.abs(after - before).max() < 1e-5  # a rotation, not a squash
    front = rest[:, 2] > np.percentile(rest[:, 2], 95)
    assert (posed[front, 1] - rest[front, 1]).mean() > 0.001  # the pupil goes up
    assert np.abs(avatar.blendshape_deltas[s, avatar.masks[f"eyeball_{other}"]]).max() == 0.0


@pytest.mark.parametrize("side", ["L", "R"])
def test_blink_closes_the_lids(avatar, skin_faces, side):
    lmk = avatar.landmarks(avatar.vertices)
    lo, hi = build.eye_box(lmk, side)
    lid = transfer.label_opening(avatar.vertices.astype(np.float64), skin_faces, lo, hi)
    near = np.all((avatar.vertices >= lo - [0.004, 0.004, 0]) & (avatar.vertices <= hi + [0.004, 0.004, 0]), 1)
    up, down = near & (lid == transfer.UPPER), near & (lid == transfer.LOWER)
    open_gap, _ = transfer.closure(avatar.vertices.astype(np.float64), skin_faces, up, down)
    closed = avatar.vertices_for({f"eyeBlink_{side}": 1.0}).astype(np.float64)
    closed_gap, _ = transfer.closure(closed, skin_faces, up, down)
    assert open_gap > 0.002 and closed_gap < 0.001
    # the blink closes the subject's own eye: +x for _L
    s = avatar.blendshape_names.index(f"eyeBlink_{side}")
    moving = np.linalg.norm(avatar.blendshape_deltas[s], axis=1) > 0.002
    assert np.sign(avatar.vertices[moving, 0].mean()) == (1 if side == "L" else -1)


def test_lips_touch_at_rest_open_with_jaw_and_close_with_mouth_close(avatar):
    lmk = avatar.landmarks(avatar.vertices)
    lo, hi = build.mouth_box(lmk)
    v = avatar.vertices.astype(np.float64)
    middle = (v[:, 0] > lo[0]) & (v[:, 0] < hi[0])
    up, down = avatar.masks["lip_upper"] & middle, avatar.masks["lip_lower"] & middle
    rest_gap, rest_cross = transfer.closure(v, avatar.faces, up, down)
    assert rest_gap < 1e-4 and rest_cross > 0  # sealed: the lips press together a little (FLAME's are 1 mm apart)
    open_gap, _ = transfer.closure(avatar.vertices_for({"jawOpen": 1.0}).astype(np.float64), avatar.faces, up, down)
    assert open_gap > 0.015
    shut = avatar.vertices_for({"jawOpen": 1.0, "mouthClose": 1.0}).astype(np.float64)
    assert transfer.closure(shut, avatar.faces, up, down)[0] < 0.001


def test_tongue_lies_below_the_lower_teeth_and_follows_the_jaw(avatar):
    inner = avatar.interior
    tongue, teeth = inner.parts == INTERIOR_PARTS.index("tongue"), inner.parts == INTERIOR_PARTS.index("teeth")
    jaw = avatar.weight_vector({"jawOpen": 1.0})
    lower = teeth & (np.linalg.norm(inner.blendshape_deltas[avatar.blendshape_names.index("jawOpen")], axis=1) > 0.005)
    front = inner.vertices[:, 2] > np.percentile(inner.vertices[tongue, 2], 50)
    # the front half of the tongue lies at least 2 mm below the lower teeth's edges (ICT's: level with them)
    assert inner.vertices[tongue & front, 1].max() < inner.vertices[lower, 1].max() - 0.002
    moved = inner.vertices_for(jaw) - inner.vertices
    assert moved[tongue & front, 1].mean() < moved[lower, 1].mean() + 0.002  # it drops with the jaw, and more


def test_jaw_open_carries_the_lower_teeth(avatar):
    inner = avatar.interior
    w = avatar.weight_vector({"jawOpen": 1.0})
    moved = inner.vertices_for(w) - inner.vertices
    low = inner.vertices[:, 1] < np.median(inner.vertices[:, 1])
    assert moved[low, 1].mean() < -0.01 and np.abs(moved[~low, 1]).mean() < np.abs(moved[low, 1]).mean()


def test_left_right_pairs_mirror_each_other(avatar):
    parts = avatar.masks["eyeball_L"] * 1 + avatar.masks["eyeball_R"] * 2
    mirror = transfer.mirror_correspondence(avatar.vertices.astype(np.float64), avatar.faces, parts, {1: 2, 2: 1})
    names = avatar.blendshape_names
    everywhere = np.ones(avatar.num_vertices, bool)
    errors = {}
    for name in names:
        if name.endswith("_L"):
            a, b = avatar.blendshape_deltas[names.index(name)], avatar.blendshape_deltas[names.index(name[:-2] + "_R")]
            errors[name[:-2]] = transfer.mirror_error(a, b, mirror, everywhere)
    assert max(errors.values()) < 0.3 and np.median(list(errors.values())) < 0.12
    # and the measure can fail: a shape against an unrelated one is far from a mirror image
    smile, brow = names.index("mouthSmile_L"), names.index("browDown_R")
    assert transfer.mirror_error(avatar.blendshape_deltas[smile], avatar.blendshape_deltas[brow], mirror, everywhere) > 0.9


def test_vertices_for_accepts_vectors_batches_and_names(avatar):
    s = len(avatar.blendshape_names)
    w = np.zeros(s, np.float32)
    w[avatar.blendshape_names.index("mouthSmile_L")] = 0.5
    one = avatar.vertices_for(w)
    assert np.allclose(one, avatar.vertices_for({"mouthSmile_L": 0.5}))
    batch = avatar.vertices_for(np.stack([np.zeros(s), w]))
    assert batch.shape == (2, 5023, 3)
    assert np.allclose(batch[0], avatar.vertices) and np.allclose(batch[1], one)
    assert avatar.landmarks(batch).shape == (2, 68, 3)
    with pytest.raises(ValueError, match="unknown blendshape name.*jawOpen"):
        avatar.vertices_for({"mouthSmileLeftt": 1.0})
    with pytest.raises(ValueError, match="expected \\(S,\\) or \\(T, S\\)"):
        avatar.vertices_for(np.zeros(3))


def test_landmarks_sit_on_the_face(avatar):
    lmk = avatar.landmarks(avatar.vertices)
    assert lmk.shape == (68, 3)
    assert np.argmax(lmk[:, 2]) in range(27, 36)  # the nose is the most forward
    assert lmk[36:42, 0].mean() < 0 < lmk[42:48, 0].mean()  # 36-41: the subject's right eye (-x)
    assert lmk[8, 1] < lmk[57, 1] < lmk[51, 1] < lmk[33, 1] < lmk[27, 1]  # chin, lips, nose, up


def test_eyes_have_a_dark_iris_and_pupil(avatar):
    for side in ("L", "R"):
        idx = np.flatnonzero(avatar.masks[f"eyeball_{side}"])
        front = idx[np.argmax(avatar.vertices[idx, 2])]
        brightness = avatar.vertex_colors[idx].mean(1)
        assert avatar.vertex_colors[front].mean() < 0.1  # pupil straight ahead
        assert 0.5 < np.percentile(brightness, 75) < 0.8  # sclera: light, not glaring


def test_missing_or_unsafe_asset_gives_one_clear_error(tmp_path):
    with pytest.raises(ModelFileError, match="not found.*build_default_avatar --data"):
        load_avatar(tmp_path / "nope.npz")
    bad = tmp_path / "pickled.npz"
    np.savez(bad, format_version=np.array(FORMAT_VERSION), vertices=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ModelFileError, match="rebuild it with"):
        load_avatar(bad)
    old = tmp_path / "old.npz"
    np.savez(old, format_version=np.array(FORMAT_VERSION + 1))
    with pytest.raises(ModelFileError, match="not a version"):
        load_avatar(old)
    partial = tmp_path / "partial.npz"
    np.savez(partial, format_version=np.array(FORMAT_VERSION), vertices=np.zeros((3, 3)))
    with pytest.raises(ModelFileError, match="lacks the array"):
        load_avatar(partial)


def test_save_npz_is_byte_deterministic_and_pickle_free(tmp_path):
    arrays = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array(["jawOpen", "mouthClose"])}
    build.save_npz(tmp_path / "one.npz", arrays)
    build.save_npz(tmp_path / "two.npz", arrays)
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    with np.load(tmp_path / "one.npz", allow_pickle=False) as z:
        assert z["a"].tolist() == ["jawOpen", "mouthClose"] and np.array_equal(z["b"], arrays["b"])
    with zipfile.ZipFile(tmp_path / "one.npz") as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_read_obj_keeps_ict_vertex_order(shared_data):
    vertices, faces = transfer.read_obj(shared_data / "ict_facekit" / "generic_neutral_mesh.obj")
    assert vertices.shape == (26719, 3) and faces.max() == 26718
    assert len(faces) == 2 * 25836 + 548  # quads split in two, triangles kept
    with pytest.raises(ModelFileError, match="not found"):
        transfer.read_obj(shared_data / "ict_facekit" / "no_such.obj")


def test_correspondence_carries_values_exactly_at_vertices():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], float)
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    values = np.array([[0.0], [1.0], [2.0], [3.0]])
    corr = transfer.closest_correspondence(vertices + [0, 0, 0.1], vertices, faces)
    assert np.allclose(corr.carry(values), values) and np.allclose(corr.distance, 0.1)
    mid = transfer.closest_correspondence(np.array([[0.5, 0.5, 0.0]]), vertices, faces)
    assert mid.carry(values)[0, 0] == pytest.approx(1.5)


def _brow_texels(avatar):
    """Skin-texture texels darker than half the skin's brightness: the painted brows, as (u, y) metres."""
    tex = avatar.textures["skin"].astype(float).mean(2)
    rows, cols = np.nonzero(tex < 0.5 * np.median(tex))
    (u0, u1), (v0, v1) = paint.SKIN_UV_RANGE
    u = u0 + (cols + 0.5) / tex.shape[1] * (u1 - u0)
    y = v0 + (rows + 0.5) / tex.shape[0] * (v1 - v0)
    return u, y


@pytest.mark.parametrize("side", [-1, 1])
def test_brows_are_painted_neutral(avatar, side):
    u, y = _brow_texels(avatar)
    mine = np.sign(u) == side
    u, y = np.abs(u[mine]), y[mine]
    assert mine.sum() > 2000  # a brow, 5-6 mm tall and 40 mm long at 0.16 mm a texel
    inner, outer = u < np.percentile(u, 15), u > np.percentile(u, 85)
    # the nasal end does not sit above the tail (FLAME's brow landmarks, painted as they are, slant
    # 7 mm up towards the nose and read as worried), and the arch is not at the nasal end
    assert y[inner].mean() - y[outer].mean() < 0.0015
    top = u[np.argmax(y)]
    assert np.percentile(u, 30) < top < np.percentile(u, 90)


def _brow_points(avatar, count: int = 300):
    """Points of the painted brows on the mesh: (P,) triangle ids and (P, 3) barycentric
    coordinates of brow texels, found in the triangles' texture coordinates."""
    u, y = _brow_texels(avatar)
    pick = np.random.default_rng(0).choice(len(u), count, replace=False)
    (u0, u1), (v0, v1) = paint.SKIN_UV_RANGE
    points = np.column_stack([(u[pick] - u0) / (u1 - u0), (y[pick] - v0) / (v1 - v0)])  # (P, 2)
    tri = avatar.face_uv  # (F, 3, 2)
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    rel = points[:, None] - tri[None, :, 0]  # (P, F, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        b1 = (rel[..., 0] * e2[:, 1] - rel[..., 1] * e2[:, 0]) / det
        b2 = (e1[:, 0] * rel[..., 1] - e1[:, 1] * rel[..., 0]) / det
        inside = (b1 >= 0) & (b2 >= 0) & (b1 + b2 <= 1) & avatar.masks["skin"][avatar.faces].all(1)
    face = np.argmax(inside, axis=1)
    assert inside.any(1).all()
    rows = np.arange(len(points))
    return face, np.column_stack([1 - b1[rows, face] - b2[rows, face], b1[rows, face], b2[rows, face]])


def test_brows_move_with_the_brow_shapes(avatar):
    face, bary = _brow_points(avatar)
    rest = np.einsum("pcd,pc->pd", avatar.vertices[avatar.faces[face]], bary)
    x = np.abs(rest[:, 0])
    inner, outer = x < np.percentile(x, 30), x > np.percentile(x, 70)
    rise = {}
    for name in ("browInnerUp", "browOuterUp", "browDown"):
        posed = avatar.vertices_for({f"{name}_L": 1.0, f"{name}_R": 1.0})
        rise[name] = (np.einsum("pcd,pc->pd", posed[avatar.faces[face]], bary) - rest)[:, 1]
    # the painted brow follows the skin: its nasal end rises with browInnerUp (more than its
    # tail), its tail with browOuterUp, and browDown lowers its nasal end
    inner_up = rise["browInnerUp"][inner].mean()
    assert inner_up > 0.002 and inner_up > 2 * rise["browInnerUp"][outer].mean()
    assert rise["browOuterUp"][outer].mean() > 0.002
    assert rise["browDown"][inner].mean() < -0.002


def test_catmull_rom_passes_through_its_points():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    curve = paint.closed_catmull_rom(square, samples=8)
    assert curve.shape == (32, 2) and np.allclose(curve[::8], square)
    line = paint.open_catmull_rom(square[:3], samples=4)
    assert np.allclose(line[[0, 4, 8]], square[:3])


def test_skin_uv_keeps_triangles_across_the_seam_small():
    # a triangle behind the head straddling the cylinder's seam (x changes sign at the back)
    vertices = np.array([[0.001, 0.0, -0.1], [-0.001, 0.0, -0.1], [0.0, 0.002, -0.1]])
    uv = paint.skin_corner_uv(vertices, np.array([[0, 1, 2]]))
    span = np.ptp(uv[0, :, 0]) * (paint.SKIN_UV_RANGE[0][1] - paint.SKIN_UV_RANGE[0][0])
    assert span < 0.005 and (uv[0, :, 0] > 1).all()  # 2.3 mm of arc (not the whole way round), beyond the texture


def test_texture_sampling_is_bilinear_and_clamped():
    tex = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)  # one row, black then white
    out = paint.sample(tex, np.array([[0.5, 0.5], [0.25, 0.5], [-3.0, 0.5], [3.0, 0.5]]))
    assert np.allclose(out[:, 0], [0.5, 0.0, 0.0, 1.0])

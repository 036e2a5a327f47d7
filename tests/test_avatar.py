"""The default avatar (flame_assets/default_avatar.npz) and the transfer helpers that built it."""

import zipfile

import numpy as np
import pytest
import trimesh

import emoflame
from emoflame.core.channels import ARKIT_CHANNELS, canonical_channel
from emoflame.core.errors import ModelFileError
from emoflame.core.flame.avatar import FORMAT_VERSION, load_avatar
from emoflame.flame_assets import build_default_avatar as build
from emoflame.flame_assets import ict_transfer as transfer


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
    for key in ("skin", "eyeball_L", "eyeball_R", "face", "lips", "lip_upper", "lip_lower"):
        assert avatar.masks[key].shape == (5023,) and avatar.masks[key].dtype == bool
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
    # only the mouth's inner lip surfaces were tucked, all near the mouth
    lmk = avatar.landmarks(avatar.vertices)
    mouth_centre = lmk[48:68].mean(0)
    assert 0 < moved.sum() < 400
    assert np.linalg.norm(avatar.vertices[moved] - mouth_centre, axis=1).max() < 0.045


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


def test_lips_rest_apart_open_with_jaw_and_close_with_mouth_close(avatar):
    lmk = avatar.landmarks(avatar.vertices)
    lo, hi = build.mouth_box(lmk)
    v = avatar.vertices.astype(np.float64)
    middle = (v[:, 0] > lo[0]) & (v[:, 0] < hi[0])
    up, down = avatar.masks["lip_upper"] & middle, avatar.masks["lip_lower"] & middle
    rest_gap, rest_cross = transfer.closure(v, avatar.faces, up, down)
    assert rest_cross == 0 and rest_gap > 0.0  # the lips do not pass through each other at rest
    open_gap, _ = transfer.closure(avatar.vertices_for({"jawOpen": 1.0}).astype(np.float64), avatar.faces, up, down)
    assert open_gap > 0.015
    shut = avatar.vertices_for({"jawOpen": 1.0, "mouthClose": 1.0}).astype(np.float64)
    assert transfer.closure(shut, avatar.faces, up, down)[0] < 0.001


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

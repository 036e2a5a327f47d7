"""Rig maps: by ARKit name, by least squares onto a linear basis, onto a FLAME model (cached)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from emoflame.core.channels import ARKIT_CHANNELS, CHANNEL_INDEX
from emoflame.core.errors import RigError
from emoflame.core.flame import rigmap as rigmap_module
from emoflame.core.flame.model import load_flame_model
from emoflame.core.flame.rigmap import (
    RigMap, rigmap_by_least_squares, rigmap_for_avatar, rigmap_for_flame, rigmap_for_shape_keys,
)
from flame_fixtures import synthetic_flame_arrays, write_numpy_pickle


def _ict_names(shared_data):
    """The ICT FaceKit blendshape names, as the default avatar carries them."""
    return tuple(sorted(p.stem for p in (shared_data / "ict_facekit").glob("*.obj")
                        if p.stem != "generic_neutral_mesh"))


def test_ict_names_map_with_split_brow_and_cheek_and_no_tongue(shared_data):
    names = _ict_names(shared_data)
    rig = rigmap_for_shape_keys(names)
    assert rig.unmatched == ("tongueOut",)
    assert "cheekRaiser_L" not in rig.targets and "PupilDilate_L" not in rig.targets
    out = rig.apply(np.eye(len(ARKIT_CHANNELS), dtype=np.float32))  # one channel at a time
    driven = {c: {t for t, w in zip(rig.targets, out[k]) if w} for k, c in enumerate(ARKIT_CHANNELS)}
    assert driven["browInnerUp"] == {"browInnerUp_L", "browInnerUp_R"}
    assert driven["cheekPuff"] == {"cheekPuff_L", "cheekPuff_R"}
    assert driven["mouthSmile_L"] == {"mouthSmile_L"} and driven["jawOpen"] == {"jawOpen"}
    assert driven["tongueOut"] == set()
    not_arkit = {"cheekRaiser_L", "cheekRaiser_R", "PupilDilate_L", "PupilDilate_R"}
    assert set(rig.targets) == set(names) - not_arkit and set(rig.residual.values()) == {0.0}


def test_arkit_left_right_spelling_and_whole_keys(shared_data):
    rig = rigmap_for_shape_keys(("Basis", "mouthSmileLeft", "MouthSmileRight", "browInnerUp",
                                 "browInnerUp_L", "cheekPuff.L", "cheekPuff.R", "tongueOut", "custom"))
    assert rig.targets == ("mouthSmileLeft", "MouthSmileRight", "browInnerUp", "cheekPuff.L",
                           "cheekPuff.R", "tongueOut")  # the whole browInnerUp key wins over a half
    weights = np.zeros(len(ARKIT_CHANNELS), np.float32)
    weights[[CHANNEL_INDEX["mouthSmile_R"], CHANNEL_INDEX["cheekPuff"]]] = [0.7, 0.4]
    np.testing.assert_array_equal(rig.apply(weights), np.float32([0, 0.7, 0, 0.4, 0.4, 0]))


def test_apply_by_channel_names_and_bad_columns(shared_data):
    rig = rigmap_for_shape_keys(_ict_names(shared_data))
    out = rig.apply(np.array([[0.25, 1.0]]), channels=["jawOpen", "browInnerUp"])
    assert out.shape == (1, len(rig.targets))
    values = dict(zip(rig.targets, out[0]))
    assert values["jawOpen"] == 0.25 and values["browInnerUp_R"] == 1.0 and values["mouthClose"] == 0.0
    with pytest.raises(RigError, match="not in this rig map"):
        rig.apply(np.ones((1, 1)), channels=["smile"])
    with pytest.raises(RigError, match="columns"):
        rig.apply(np.ones((3, 5)))


@pytest.fixture(scope="module")
def flame_file(shared_data, tmp_path_factory):
    arrays = synthetic_flame_arrays(shared_data)
    return write_numpy_pickle(arrays, tmp_path_factory.mktemp("flame") / "flame2023.pkl")


@pytest.fixture(scope="module")
def model(flame_file, shared_data):
    return load_flame_model(flame_file, shared_data / "flame" / "flame_static_embedding_68.pkl")


JAW_ANGLE = 0.25  # radians of jawOpen at weight 1 in the stand-in avatar
EYE_ROTATION = [-0.4, 0.05, 0.0]  # eyeLookUp_L's left-eye axis-angle in the stand-in avatar


@pytest.fixture(scope="module")
def avatar(model):
    """A stand-in Avatar whose shape keys FLAME can reproduce exactly: known expression
    coefficients for three keys, a true jaw rotation (plus some expression) for jawOpen."""
    coefficients = np.zeros((4, 100))
    coefficients[0, [2, 7]] = [1.0, -0.5]     # mouthSmile_L
    coefficients[1, [2, 8]] = [0.3, 0.8]      # browInnerUp_L
    coefficients[2, [9, 60]] = [-1.2, 0.4]    # browInnerUp_R
    coefficients[3, [11]] = [0.5]             # jawOpen's expression share
    jaw = torch.zeros(4, 3)
    jaw[3, 0] = JAW_ANGLE
    with torch.no_grad():
        posed = model(expression=torch.tensor(coefficients, dtype=torch.float32), jaw_pose=jaw).vertices
        deltas = (posed - model.v_template).numpy()
        look = (model(leye_pose=torch.tensor([EYE_ROTATION])).vertices - model.v_template).numpy()
    v = model.v_template.numpy()
    face = (v[:, 2] > 0.0) & (v[:, 1] > -0.11) & (np.arange(len(v)) < 3931)
    eyeball_L, eyeball_R = np.zeros((2, len(v)), bool)
    eyeball_L[3931:4477], eyeball_R[4477:] = True, True
    return SimpleNamespace(
        vertices=v, joint_regressor=model.J_regressor.numpy(),
        blendshape_names=("mouthSmile_L", "browInnerUp_L", "browInnerUp_R", "jawOpen", "eyeLookUp_L",
                          "cheekRaiser_L"),
        blendshape_deltas=np.concatenate([deltas, look, np.full((1, len(v), 3), 1e-3)]).astype(np.float32),
        masks={"face": face, "eyeball_L": eyeball_L, "eyeball_R": eyeball_R}, coefficients=coefficients,
    )


def test_least_squares_recovers_known_coefficients(model, avatar):
    basis = model.expression_dirs.permute(2, 0, 1).numpy()  # (100, V, 3)
    rig = rigmap_by_least_squares(avatar, basis, [f"Exp{i + 1}" for i in range(100)])
    smile, brow = CHANNEL_INDEX["mouthSmile_L"], CHANNEL_INDEX["browInnerUp"]
    np.testing.assert_allclose(rig.matrix[smile], avatar.coefficients[0], atol=1e-4)
    # browInnerUp is the sum of the avatar's two halves.
    np.testing.assert_allclose(rig.matrix[brow], avatar.coefficients[1] + avatar.coefficients[2], atol=1e-4)
    assert rig.residual["mouthSmile_L"] < 1e-5 and rig.residual["browInnerUp"] < 1e-5
    # A jaw rotation is not in the expression basis: a real, reported residual.
    assert rig.residual["jawOpen"] > 0.05
    assert "tongueOut" in rig.unmatched and "jawOpen" not in rig.unmatched
    with pytest.raises(RigError, match="expected"):
        rigmap_by_least_squares(avatar, basis[:, :100], ["Exp1"])


def test_a_limited_target_is_left_to_its_channels(model, avatar):
    """An extra target that is exactly the smile: free, the smile takes it; limited, it may not."""
    smile = avatar.blendshape_deltas[0][None]
    basis = np.concatenate([model.expression_dirs.permute(2, 0, 1).numpy(), smile])
    names = [f"Exp{i + 1}" for i in range(100)] + ["jaw"]
    free = rigmap_by_least_squares(avatar, basis, names)
    limited = rigmap_by_least_squares(avatar, basis, names, limited={"jaw": ("jawOpen",)})
    smile_row = CHANNEL_INDEX["mouthSmile_L"]
    assert free.matrix[smile_row, 100] > 0.5
    assert limited.matrix[smile_row, 100] == 0.0 and limited.residual["mouthSmile_L"] < 1e-5
    assert (limited.matrix[:, 100] != 0).sum() <= 1  # only jawOpen may use it


def test_flame_rigmap_puts_the_jaw_in_jaw_pose_and_is_cached(model, avatar, tmp_path, monkeypatch):
    rig = rigmap_for_flame(model, avatar, cache_dir=tmp_path)
    assert rig.targets[:2] == ("expression_000", "expression_001")
    assert rig.targets[100:] == ("jaw_pose_0", "jaw_pose_1", "jaw_pose_2", "leye_pose_0", "leye_pose_1",
                                 "leye_pose_2", "reye_pose_0", "reye_pose_1", "reye_pose_2")
    look_up = rig.matrix[CHANNEL_INDEX["eyeLookUp_L"]]
    np.testing.assert_allclose(look_up[103:], EYE_ROTATION + [0, 0, 0], atol=1e-4)
    assert rig.residual["eyeLookUp_L"] < 1e-4 and not look_up[:103].any()  # the gaze is the eye's alone
    jaw_open = rig.matrix[CHANNEL_INDEX["jawOpen"]]
    assert jaw_open[100] == pytest.approx(JAW_ANGLE, abs=1e-3)
    np.testing.assert_allclose(jaw_open[:100], avatar.coefficients[3], atol=2e-3)
    assert rig.residual["jawOpen"] < 1e-3 and rig.residual["mouthSmile_L"] < 1e-4
    assert not rig.matrix[CHANNEL_INDEX["mouthSmile_L"], 100:].any()  # only jaw channels turn the jaw
    assert model.v_template.dtype == torch.float32  # the fit did not change the caller's model

    cached = list(tmp_path.glob("flame_*.npz"))
    assert len(cached) == 1
    monkeypatch.setattr(rigmap_module, "_refine_through_lbs", _must_not_run)
    again = rigmap_for_flame(model, avatar, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.matrix, rig.matrix)
    assert again.residual == rig.residual and again.unmatched == rig.unmatched


def _must_not_run(*args, **kwargs):
    raise AssertionError("the cached rig map was recomputed")


def test_rigmap_round_trips_through_npz(shared_data, tmp_path):
    rig = rigmap_for_shape_keys(_ict_names(shared_data))
    rig.save(tmp_path / "map.npz")
    loaded = RigMap.load(tmp_path / "map.npz")
    assert loaded.targets == rig.targets and loaded.unmatched == rig.unmatched
    np.testing.assert_array_equal(loaded.matrix, rig.matrix)


def test_default_avatar_map_drives_both_brow_halves_on_the_mesh():
    import emoflame

    avatar = emoflame.default_avatar()
    rig = rigmap_for_avatar(avatar)
    assert rig.unmatched == ("tongueOut",) and len(rig.targets) == 53
    weights = np.zeros(len(ARKIT_CHANNELS), np.float32)
    weights[[CHANNEL_INDEX["browInnerUp"], CHANNEL_INDEX["jawOpen"]]] = [1.0, 0.5]
    posed = avatar.vertices_for(dict(zip(rig.targets, rig.apply(weights))))
    index = {name: s for s, name in enumerate(avatar.blendshape_names)}
    deltas = avatar.blendshape_deltas
    expected = (avatar.vertices + deltas[index["browInnerUp_L"]] + deltas[index["browInnerUp_R"]]
                + 0.5 * deltas[index["jawOpen"]])
    np.testing.assert_allclose(posed, expected, atol=1e-7)
    assert np.abs(posed - avatar.vertices).max() > 0.005  # the jaw really opens

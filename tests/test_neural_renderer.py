"""The neural keypoint renderer without its weights: structure, loading, driving maths, crop.

No test here renders with untrained weights as if it were output: untrained networks are used
only to check tensor names, shapes and the loader's round trip.
"""

import copy
import dataclasses
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from emoflame.core.channels import ARKIT_CHANNELS
from emoflame.core.clip import AnimationClip
from emoflame.core.errors import ModelFileError, PortraitError
from emoflame.renderers.neural import basis as B
from emoflame.renderers.neural import crop as C
from emoflame.renderers.neural import driving as D
from emoflame.renderers.neural import keypoints as K
from emoflame.renderers.neural import networks as N
from emoflame.renderers.neural import weights as W

MANIFEST = Path(__file__).parent / "fixtures" / "liveportrait_manifest.json"
FIELD_OF_FILE = {"base_models/appearance_feature_extractor.pth": "appearance", "base_models/motion_extractor.pth": "motion",
                 "base_models/warping_module.pth": "warping", "base_models/spade_generator.pth": "generator"}


@pytest.fixture(scope="module")
def manifest():
    return json.loads(MANIFEST.read_text())


@pytest.fixture(scope="module")
def networks():
    torch.manual_seed(0)
    return W.build_networks()


def _shapes(module):
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def test_every_tensor_name_and_shape_matches_the_released_files(manifest, networks):
    files = manifest["files"]
    assert set(files) == set(W.FILES.values())
    for file, field in FIELD_OF_FILE.items():
        assert _shapes(networks[field]) == files[file]["tensors"], file
        assert sum(p.numel() for p in networks[field].parameters()) == files[file]["num_parameters"], file
    parts = files[W.FILES["retargeting"]]["parts"]
    assert set(parts) == set(W.RETARGETING_PARTS)
    for entry, field in W.RETARGETING_PARTS.items():
        assert _shapes(networks[field]) == parts[entry]["tensors"], entry
        assert sum(p.numel() for p in networks[field].parameters()) == parts[entry]["num_parameters"]


def test_config_defaults_are_the_released_configuration(manifest):
    cfg = manifest["config"]
    f, m, w, g = (cfg[k] for k in ("appearance_feature_extractor_params", "motion_extractor_params",
                                  "warping_module_params", "spade_generator_params"))
    assert dataclasses.astuple(N.AppearanceConfig()) == (
        f["image_channel"], f["block_expansion"], f["num_down_blocks"], f["max_features"], f["reshape_channel"],
        f["reshape_depth"], f["num_resblocks"])
    assert N.MotionConfig().num_kp == m["num_kp"] and m["backbone"] == "convnextv2_tiny"
    dm = w["dense_motion_params"]
    assert (N.WarpingConfig().num_kp, N.WarpingConfig().expansion, N.WarpingConfig().max_features,
            N.WarpingConfig().down_blocks, N.WarpingConfig().volume_channels, N.WarpingConfig().occlusion) == (
        w["num_kp"], w["block_expansion"], w["max_features"], w["num_down_blocks"], w["reshape_channel"],
        w["estimate_occlusion_map"])
    assert dataclasses.astuple(N.DenseMotionConfig()) == (
        dm["block_expansion"], dm["max_features"], dm["num_blocks"], dm["reshape_depth"], dm["compress"])
    gc = N.GeneratorConfig()
    assert (gc.upscale, gc.expansion, gc.max_features, gc.down_blocks) == (
        g["upscale"], g["block_expansion"], g["max_features"], g["num_down_blocks"])
    sr = cfg["stitching_retargeting_module_params"]
    for mlp, key in ((N.STITCHING, "stitching"), (N.LIP, "lip"), (N.EYE, "eye")):
        assert (mlp.input_size, list(mlp.hidden_sizes), mlp.output_size) == (
            sr[key]["input_size"], sr[key]["hidden_sizes"], sr[key]["output_size"])


# ------------------------------------------------------------------------------------ loading

def _save_release(nets, folder: Path) -> Path:
    """Write networks in the layout and format of LivePortrait's release (retargeting keys DDP-prefixed)."""
    for field, relative in W.FILES.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        if field != "retargeting":
            torch.save(nets[field].state_dict(), folder / relative)
    torch.save({entry: {"module." + k: v for k, v in nets[field].state_dict().items()}
                for entry, field in W.RETARGETING_PARTS.items()}, folder / W.FILES["retargeting"])
    return folder


@pytest.fixture(scope="module")
def release(tmp_path_factory, networks):
    return _save_release(networks, tmp_path_factory.mktemp("liveportrait"))


def _variant(release: Path, tmp_path: Path, relative: str, write) -> Path:
    """A weights folder like ``release`` (symbolic links) with one file replaced by ``write(path)``."""
    for rel in W.FILES.values():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel != relative:
            (tmp_path / rel).symlink_to(release / rel)
    write(tmp_path / relative)
    return tmp_path


def test_a_saved_state_dict_round_trips_through_the_loader(release, networks):
    models = W.load_liveportrait(release, device="cpu")
    assert models.device == torch.device("cpu") and models.folder == release
    for field in ("appearance", "motion", "warping", "generator", "stitching", "lip", "eye"):
        loaded, saved = getattr(models, field), networks[field]
        assert not loaded.training
        assert all(not p.requires_grad for p in loaded.parameters())
        for (name, a), (_, b) in zip(loaded.state_dict().items(), saved.state_dict().items()):
            assert torch.equal(a, b), f"{field}.{name}"


def test_missing_weights_name_every_file_the_layout_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    with pytest.raises(ModelFileError) as err:
        W.load_liveportrait()
    message = str(err.value)
    assert W.ENV_VAR in message
    assert all(f in message for f in W.FILES.values())
    with pytest.raises(ModelFileError, match="does not exist"):
        W.load_liveportrait(tmp_path / "nowhere")
    monkeypatch.setenv(W.ENV_VAR, str(tmp_path))
    with pytest.raises(ModelFileError, match="lacks base_models/appearance_feature_extractor.pth"):
        W.load_liveportrait()


def test_the_renderer_refuses_to_run_without_the_real_files(monkeypatch):
    from emoflame.renderers.neural import NeuralRenderer

    monkeypatch.delenv(W.ENV_VAR, raising=False)
    with pytest.raises(ModelFileError, match="never renders without them"):
        NeuralRenderer()


def test_one_missing_file_is_named(release, tmp_path):
    folder = _variant(release, tmp_path, W.FILES["generator"], lambda p: None)
    with pytest.raises(ModelFileError, match=r"lacks base_models/spade_generator\.pth"):
        W.load_liveportrait(folder, "cpu")


def test_a_wrong_shape_is_named_with_the_file(release, networks, tmp_path):
    state = dict(networks["appearance"].state_dict())
    state["second.weight"] = torch.zeros(512, 128, 1, 1)

    folder = _variant(release, tmp_path, W.FILES["appearance"], lambda p: torch.save(state, p))
    with pytest.raises(ModelFileError, match=r"appearance_feature_extractor\.pth does not fit .*second\.weight \(512, 128, 1, 1\)"):
        W.load_liveportrait(folder, "cpu")


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("save", [torch.save, lambda obj, p: p.write_bytes(pickle.dumps(obj))],
                         ids=["torch-zip", "bare-pickle"])
def test_a_pickle_with_code_is_refused_and_never_runs(release, tmp_path, save):
    marker = tmp_path / "payload_ran"
    _Payload.marker = marker
    folder = _variant(release, tmp_path / "w", W.FILES["appearance"],
                      lambda p: save({"first.conv.weight": _Payload()}, p))
    with pytest.raises(ModelFileError, match=r"appearance_feature_extractor\.pth cannot be read.*weights_only=True"):
        W.load_liveportrait(folder, "cpu")
    assert not marker.exists()


@pytest.mark.parametrize("write, match", [
    (lambda p: p.write_bytes(b"not a checkpoint at all"), "cannot be read"),
    (lambda p: torch.save([torch.zeros(3)], p), "is not a state dict"),
])
def test_damaged_or_foreign_files_raise_model_file_error(release, tmp_path, write, match):
    folder = _variant(release, tmp_path, W.FILES["appearance"], write)
    with pytest.raises(ModelFileError, match=match):
        W.load_liveportrait(folder, "cpu")


def test_validation_checks_names_values_and_the_retargeting_entries(networks, release, tmp_path):
    mlp = networks["lip"]
    good = mlp.state_dict()
    assert set(W.validate_state_dict({"module." + k: v for k, v in good.items()}, mlp, "f")) == set(good)
    with pytest.raises(ModelFileError, match="missing: mlp.6.bias"):
        W.validate_state_dict({k: v for k, v in good.items() if k != "mlp.6.bias"}, mlp, "f")
    with pytest.raises(ModelFileError, match="unexpected: extra"):
        W.validate_state_dict({**good, "extra": torch.zeros(1)}, mlp, "f")
    with pytest.raises(ModelFileError, match="NaN"):
        W.validate_state_dict({**good, "mlp.0.bias": torch.full_like(good["mlp.0.bias"], float("nan"))}, mlp, "f")
    parts = {entry: networks[field].state_dict() for entry, field in W.RETARGETING_PARTS.items() if entry != "retarget_eye"}
    folder = _variant(release, tmp_path, W.FILES["retargeting"], lambda p: torch.save(parts, p))
    with pytest.raises(ModelFileError, match="lacks retarget_eye"):
        W.load_liveportrait(folder, "cpu")


# --------------------------------------------------------------------------- stage shapes

@torch.no_grad()
def test_stage_shapes_at_a_small_size(networks):
    nets = {k: v.eval() for k, v in networks.items()}
    image = torch.rand(2, 3, 64, 64)
    feature = nets["appearance"](image)
    assert feature.shape == (2, 32, 16, 16, 16)
    raw = nets["motion"](image)
    assert {k: tuple(v.shape) for k, v in raw.items()} == {
        "kp": (2, 63), "pitch": (2, 66), "yaw": (2, 66), "roll": (2, 66), "t": (2, 3), "exp": (2, 63), "scale": (2, 1)}
    motion = K.Motion.from_raw(raw)
    x_s = K.transform_keypoints(motion.kp, K.rotation_matrix(*motion.angles.unbind(-1)), motion.exp, motion.scale, motion.t)
    assert x_s.shape == (2, 21, 3)
    volume = torch.randn(1, 32, 16, 32, 32)  # 32² keeps the 5-level hourglass whole
    out = nets["warping"](volume, x_s[:1] + 0.05 * torch.randn_like(x_s[:1]), x_s[:1])
    assert out["out"].shape == (1, 256, 32, 32)
    assert out["deformation"].shape == (1, 16, 32, 32, 3)
    assert out["occlusion_map"].shape == (1, 1, 32, 32)
    assert 0 < out["occlusion_map"].min() and out["occlusion_map"].max() < 1
    picture = nets["generator"](out["out"][:, :, :4, :4])
    assert picture.shape == (1, 3, 32, 32) and 0 <= picture.min() and picture.max() <= 1
    delta = nets["stitching"](torch.cat([x_s.reshape(2, -1)] * 2, dim=1))
    assert delta.shape == (2, 65)


@torch.no_grad()
def test_still_keypoints_give_the_identity_flow_whatever_the_weights(networks):
    dense = networks["warping"].eval().dense_motion_network
    kp = torch.rand(1, 21, 3) * 1.6 - 0.8
    out = dense(torch.randn(1, 32, 16, 32, 32), kp, kp)
    identity = N.coordinate_grid(16, 32, 32, kp)
    torch.testing.assert_close(out["deformation"][0], identity, atol=1e-5, rtol=0)
    torch.testing.assert_close(out["mask"].sum(dim=1), torch.ones(1, 16, 32, 32))


def test_pose_bins_rotations_and_keypoint_formula():
    assert K.bins_to_degrees(torch.zeros(1, 66)).item() == pytest.approx(0.0, abs=1e-4)  # bins centred on 0°
    one_hot = torch.full((1, 66), -1e4)
    one_hot[0, 40] = 0
    assert K.bins_to_degrees(one_hot).item() == pytest.approx(40 * 3 - 97.5)
    angles = torch.tensor([[10.0, -25.0, 5.0], [0.0, 0.0, 0.0]])
    r = K.rotation_matrix(*angles.unbind(-1))
    torch.testing.assert_close(r[1], torch.eye(3))
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(K.matrix_to_angles(r.transpose(1, 2)), angles, atol=1e-4, rtol=0)
    kp = torch.randn(1, 21, 3)
    x = K.transform_keypoints(kp, torch.eye(3)[None], torch.zeros(1, 21, 3), torch.tensor([[2.0]]),
                              torch.tensor([[0.1, -0.2, 5.0]]))
    torch.testing.assert_close(x, 2 * kp + torch.tensor([0.1, -0.2, 0.0]))  # t's z is dropped


# ----------------------------------------------------------------------------- driving

@pytest.fixture(scope="module")
def clip(shared_data):
    import emoflame

    return emoflame.animate(shared_data / "speech" / "arctic_a0007.wav", emotion="happy", intensity=0.8, progress=False)


@pytest.fixture(scope="module")
def avatar():
    import emoflame

    return emoflame.default_avatar()


def _still(clip):
    return AnimationClip(fps=clip.fps, intensity=clip.intensity, emotion_latent=clip.emotion_latent,
                         weights=np.zeros_like(clip.weights), channels=clip.channels)


def _source(lip_ratio):
    g = torch.Generator().manual_seed(1)
    motion = K.Motion(kp=0.3 * torch.randn(1, 21, 3, generator=g), angles=torch.tensor([[4.0, -8.0, 2.0]]),
                      exp=0.02 * torch.randn(1, 21, 3, generator=g), scale=torch.tensor([[1.4]]),
                      t=torch.tensor([[0.01, -0.02, 0.3]]))
    return D.Source(motion, np.array([0.31, 0.29]), lip_ratio)


def test_clip_drive_on_real_speech(clip, avatar):
    drive = D.clip_drive(clip, avatar)
    t = clip.num_frames
    assert drive.angles.shape == (t, 3)
    np.testing.assert_allclose(drive.angles, D.head_pose_to_angles(D.clip_head_pose(clip)), atol=1e-5)
    assert np.abs(drive.angles).max() < 30  # a talking head's nods and sway, in degrees
    assert drive.eye_opening.shape == drive.lip_ratio.shape == (t,)
    assert drive.expression.shape == (t, len(drive.channels))
    assert not set(drive.channels) & set(D.EYE_CHANNELS + D.LIP_CHANNELS)
    assert "tongueOut" not in drive.channels and "mouthSmile_L" in drive.channels
    blink = clip.channel("eyeBlink_L") > 0.95
    assert blink.any() and drive.eye_opening[blink].max() < 0.1  # a keyed blink shuts the photo's eyes
    rest = np.all(clip.weights[:, [clip.channels.index(c) for c in D.EYE_CHANNELS]] < 0.01, axis=1)
    assert rest.sum() > 10
    np.testing.assert_allclose(drive.eye_opening[rest], 1.0, atol=0.02)
    r = np.corrcoef(drive.lip_ratio, clip.channel("jawOpen") * (1 - clip.channel("mouthClose")))[0, 1]
    assert r > 0.9 and drive.lip_ratio.max() > 0.2
    still = D.clip_drive(_still(clip), avatar)
    assert not still.expression.any() and not still.angles.any()
    np.testing.assert_allclose(still.eye_opening, 1.0, atol=1e-6)


def test_a_head_track_becomes_keypoint_angles(clip, avatar):
    pose = np.zeros((clip.num_frames, 3), np.float32)
    pose[:, 1] = 0.2   # turn about FLAME's up axis
    pose[5, :] = (0.1, 0.0, 0.0)  # nod about FLAME's x
    turned = copy.copy(clip)
    turned.head_pose = pose
    angles = D.clip_drive(turned, avatar).angles
    np.testing.assert_allclose(angles[0], [0.0, -np.degrees(0.2), 0.0], atol=1e-4)  # y up -> y down flips the sense
    np.testing.assert_allclose(angles[5], [np.degrees(0.1), 0.0, 0.0], atol=1e-4)


def test_zero_expression_gives_zero_motion(clip, avatar, networks):
    still = D.clip_drive(_still(clip), avatar)
    rest_lip = float(still.lip_ratio[0])
    rng = np.random.default_rng(0)
    basis = D.ExpressionBasis(still.channels, rng.normal(size=(len(still.channels), 21, 3)).astype(np.float32), {})
    assert not basis.delta(still.expression, still.channels).any()
    source = _source(rest_lip)
    x_s = source.keypoints()
    with torch.no_grad():
        x_d = D.driven_keypoints(source, still, basis, None, networks["eye"], networks["lip"])
    assert x_d.shape == (clip.num_frames, 21, 3)
    torch.testing.assert_close(x_d, x_s.expand_as(x_d), atol=1e-6, rtol=0)


def test_clip_expression_moves_keypoints_by_the_basis(clip, avatar, networks):
    still_head = copy.copy(clip)
    still_head.head_pose = None
    drive = D.clip_drive(still_head, avatar)
    rng = np.random.default_rng(0)
    basis = D.ExpressionBasis(drive.channels, 0.01 * rng.normal(size=(len(drive.channels), 21, 3)).astype(np.float32), {})
    source = _source(0.0)
    with torch.no_grad():
        x_d = D.driven_keypoints(source, drive, basis)
        frames = D.driven_keypoints(source, drive, basis, frames=slice(10, 14))
    expected = drive.expression @ basis.deltas.reshape(len(drive.channels), -1)  # (T, 63)
    moved = (x_d - source.keypoints()).reshape(clip.num_frames, -1).numpy() / 1.4  # s · Δδ, same pose
    np.testing.assert_allclose(moved, expected, atol=1e-5)
    torch.testing.assert_close(frames, x_d[10:14])
    with torch.no_grad():
        opened = D.driven_keypoints(source, drive, None, None, None, networks["lip"])
    speaking = drive.lip_ratio > 0.2
    assert (opened - source.keypoints()).abs()[speaking].sum() > 0  # R_lip acts where the lips part


# ------------------------------------------------------------------- ratios, crop, renders

def test_avatar_ratios_open_and_close(avatar):
    rest, per_channel = D.channel_landmarks(avatar)
    eye, lip = D.ratios_from_68(rest)
    assert np.all((eye > 0.25) & (eye < 0.45)) and lip < 0.05
    shut, _ = D.ratios_from_68(rest + per_channel[ARKIT_CHANNELS.index("eyeBlink_R")])
    assert shut[0] < 0.5 * eye[0] and shut[1] == pytest.approx(eye[1], abs=1e-3)  # _R is the subject's right, listed first
    _, open_lip = D.ratios_from_68(rest + per_channel[ARKIT_CHANNELS.index("jawOpen")])
    assert open_lip > 0.5


def test_crop_follows_the_face_axes():
    face = np.array([[0, 0], [100, 0], [0, 120], [100, 120]], float)  # extent 100 × 120
    eyes, mouth = np.array([[30, 40], [70, 40]], float), np.array([[40, 100], [60, 100]], float)
    crop = C.crop_for(face, eyes, mouth, size=512)
    side = 120 * C.CROP_SCALE
    np.testing.assert_allclose(crop.matrix[:, :2], np.eye(2) * 512 / side, atol=1e-9)
    centre = crop.apply(np.array([[50, 60 - C.CROP_SHIFT_UP * side]]))
    np.testing.assert_allclose(centre, [[256, 256]], atol=1e-9)
    turn = np.radians(30)
    rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    turned = C.crop_for(face @ rot.T, eyes @ rot.T, mouth @ rot.T, size=512)
    a, b = turned.apply(eyes @ rot.T), turned.apply(mouth @ rot.T)
    assert a[:, 1].std() < 1e-9 and abs(a[:, 0].mean() - b[:, 0].mean()) < 1e-9  # eyes level, mouth below
    back = turned.inverse() @ np.array([10.0, 20.0, 1.0])  # crop pixel -> photo pixel
    np.testing.assert_allclose(turned.apply(back[None]), [[10, 20]], atol=1e-9)


def test_paste_back_of_the_unchanged_crop_keeps_the_photo(avatar):
    photo = B.render_avatar(avatar, np.zeros(52), B.avatar_frame(avatar, 400), size=400)
    lm = avatar.landmarks(avatar.vertices)
    pts = np.stack([lm[:, 0], -lm[:, 1], np.ones(68)], 1) @ B.avatar_frame(avatar, 400).T
    crop = C.crop_for_68(pts, 512)
    paste = C.PasteBack(photo, crop)
    frame = paste(C.warp_to_crop(photo, crop))
    assert frame.shape == photo.shape and frame.dtype == np.uint8
    assert np.abs(frame.astype(int) - photo).mean() < 1.0
    mask = C.feather_mask(64)
    assert mask.max() == 1.0 and mask[0].max() == 0.0 and mask[32, 32] == 1.0


def test_avatar_renders_move_where_the_channel_acts_and_mediapipe_reads_them(avatar):
    frame = B.avatar_frame(avatar, 512)
    rest = B.render_avatar(avatar, np.zeros(52), frame, 512)
    w = np.zeros(52, np.float32)
    w[ARKIT_CHANNELS.index("jawOpen")] = 1.0
    jaw = B.render_avatar(avatar, w, frame, 512)
    assert rest.shape == (512, 512, 3) and rest.dtype == np.uint8
    changed = np.abs(jaw.astype(int) - rest).sum(-1) > 30
    lm = avatar.landmarks(avatar.vertices)
    px = np.stack([lm[:, 0], -lm[:, 1], np.ones(68)], 1) @ frame.T  # (68, 2) crop pixels
    rows, cols = np.nonzero(changed)
    assert len(rows) > 5000
    assert np.mean(rows < px[36:48, 1].mean()) < 0.01  # the jaw moves nothing above the eyes
    assert abs(cols.mean() - px[30, 0]) < 10  # and moves symmetrically about the nose
    e0, l0 = D.ratios_from_mediapipe(C.detect_face_landmarks(rest))
    e1, l1 = D.ratios_from_mediapipe(C.detect_face_landmarks(jaw))
    assert l0 < 0.1 < 0.3 < l1 and np.all(e0 > 0.15)


def test_a_photo_without_a_face_is_a_portrait_error():
    with pytest.raises(PortraitError, match="no face"):
        C.detect_face_landmarks(np.full((256, 256, 3), 128, np.uint8))


class _MeanPixelMotion(torch.nn.Module):
    """Stands in for M: δ is the image's mean brightness on every coordinate (no weights needed)."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return {"exp": x.mean(dim=(1, 2, 3))[:, None].expand(-1, 63) + self.anchor}


def test_the_expression_basis_is_measured_once_then_read_from_the_cache(avatar, tmp_path, monkeypatch):
    monkeypatch.setattr(B, "basis_channels", lambda _: ("jawOpen", "mouthSmile_L", "browInnerUp"))
    (tmp_path / "w" / "base_models").mkdir(parents=True)
    (tmp_path / "w" / W.FILES["motion"]).write_bytes(b"stands in for the weights file in the cache key")
    models = type("Models", (), {"motion": _MeanPixelMotion(), "folder": tmp_path / "w"})()
    basis = B.expression_basis(models, avatar, cache=tmp_path / "cache")
    assert basis.channels == ("jawOpen", "mouthSmile_L", "browInnerUp") and basis.deltas.shape == (3, 21, 3)
    renders = B.basis_renders(avatar, basis.channels)
    expected = renders.astype(np.float32).mean(axis=(1, 2, 3)) / 255.0
    np.testing.assert_allclose(basis.deltas[:, 0, 0], expected[1:] - expected[0], atol=1e-5)
    assert np.all(basis.deltas[0] != 0)  # an open mouth shows the dark interior: the render changed
    calls = models.motion.calls
    again = B.expression_basis(models, avatar, cache=tmp_path / "cache")
    assert models.motion.calls == calls and np.array_equal(again.deltas, basis.deltas)
    assert len(list((tmp_path / "cache").glob("basis-*.npz"))) == 1

"""The default avatar's mouth as a viewer sees it: front close-up Workbench renders (256 px) with
a material-ID pass and an albedo pass (benchmarks/bench_avatar_mouth.py prints the same figures
at 512 px)."""

import importlib.util
import sys
from pathlib import Path

import pytest

import emoflame

bpy = pytest.importorskip("bpy")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_avatar_mouth.py"
SPEC = importlib.util.spec_from_file_location("bench_avatar_mouth", BENCH)
mouth = sys.modules.setdefault(SPEC.name, importlib.util.module_from_spec(SPEC))
SPEC.loader.exec_module(mouth)


@pytest.fixture(scope="module")
def shot():
    return mouth.new_shot(emoflame.default_avatar(), 256)


@pytest.fixture(scope="module")
def figures(shot, tmp_path_factory):
    out = tmp_path_factory.mktemp("mouth")
    poses = dict(mouth.POSES, smile={"mouthSmile": 1.0}, funnel={"mouthFunnel": 1.0})
    return {name: mouth.measure(shot, name, weights, out) for name, weights in poses.items()}


@pytest.mark.parametrize("name", ["rest", "closure"])
def test_closed_lips_show_no_tooth(figures, name):
    # rest: all shape keys 0; closure: the phonetic engine's bilabial pose (visemes.CLOSED)
    row = figures[name]
    assert row["teeth_upper_px"] == row["teeth_lower_px"] == 0, row
    assert row["face_teeth_upper_px"] == row["face_teeth_lower_px"] == 0, row


@pytest.mark.parametrize("name", ["open_mid", "open_aa", "open_wide"])
def test_open_vowels_show_upper_and_lower_teeth(figures, name):
    row = figures[name]
    # measured at 256 px: 170-260 upper and 700-930 lower teeth pixels, 110-170 of them in the
    # middle of the mouth (within 8 mm of its centre line)
    assert row["teeth_lower_px"] > 200 and row["teeth_upper_px"] > 50 and row["teeth_lower_mid_px"] > 30, row


@pytest.mark.parametrize("name", ["rest", "closure", "open_aa", "open_wide", "smile", "funnel"])
def test_lip_colour_stays_inside_the_lip_contour(figures, name):
    row = figures[name]
    assert row["lip_px"] > 1000  # the measure sees the lips at all
    assert row["beyond_2mm_px"] == 0 and row["max_outside_mm"] < mouth.LIP_OUTSIDE_MM, row


def test_the_id_pass_tells_teeth_from_lips(shot, tmp_path):
    """The measure can fail: with the lips apart the upper teeth show."""
    row = mouth.measure(shot, "apart", {"jawOpen": 0.3, "mouthUpperUp": 0.6}, tmp_path)
    assert row["teeth_upper_px"] > 100


def test_render_uses_the_textures(shot, tmp_path):
    """Workbench's Texture colour shows the painted lips: the lips' pixels are redder than the skin's."""
    mouth.pose(shot, {})
    mouth.aim(shot, "mouth")
    albedo = mouth.albedo_pass(shot, tmp_path / "albedo.png")
    centre = albedo[albedo.shape[0] // 2 - 2: albedo.shape[0] // 2 + 3, albedo.shape[1] // 2 - 10: albedo.shape[1] // 2 + 10]
    cheek = albedo[albedo.shape[0] // 2, 10]
    redness = lambda rgb: rgb[..., 0] - rgb[..., 1]  # noqa: E731
    assert redness(centre).mean() > redness(cheek) + 0.08

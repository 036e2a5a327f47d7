"""Tiny training runs on a real FACEGOOD take: the losses fall, runs resume, the held-out take is refused."""

import logging

import pytest
import torch

from emoflame.core.intensity.predictor import IntensityPredictor, PredictorConfig
from emoflame.core.train import expression, intensity
from emoflame.core.checkpoints import load_checkpoint
from emoflame.core.train.common import TrainConfig, training_takes


def _config(tmp_path, name, model, steps, extra=""):
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""{model}
[train]
steps = {steps}
batch = 4
window = 60
lr = 2e-3
log_every = 5
save_every = 10
takes = ["1114_3_15"]
run_dir = "{tmp_path / name}"
export = "{tmp_path / name}.pt"
{extra}""")
    return path


def test_intensity_predictor_learns_and_resumes(tmp_path, caplog):
    torch.manual_seed(0)
    model = "[model]\nhidden = 16\nwavenet_layers = 2\nflows = 2"
    metrics = intensity.train(_config(tmp_path, "p", model, 30))
    assert metrics["final_loss"] < 0.7 * metrics["first_loss"]
    net, ckpt = load_checkpoint(tmp_path / "p.pt", IntensityPredictor, PredictorConfig)
    assert ckpt["step"] == 30 and ckpt["meta"]["train_takes"] == ["1114_3_15"] and ckpt["meta"]["label_scale"] > 0
    with caplog.at_level(logging.INFO, logger="emoflame.train"):
        intensity.train(_config(tmp_path, "p", model, 35))
    assert "at step 30" in caplog.text


def test_expression_models_learn_on_augmented_speech(tmp_path):
    model = "[model]\n[model.adapter]\nhidden = 32\n[model.transformer]\nd_model = 32\nlayers = 1\nheads = 2"
    metrics = expression.train(_config(tmp_path, "t", model, 25))
    assert metrics["final_loss"] < 0.8 * metrics["first_loss"]
    assert metrics["held_out"] == "1114_3_16"


def test_held_out_take_is_never_trained_on():
    with pytest.raises(ValueError, match="held out"):
        training_takes(TrainConfig(takes=["1114_3_16"]))
    assert "1114_3_16" not in training_takes(TrainConfig())


def test_range_loss_sees_shrunk_peaks_not_timing():
    from emoflame.core.train.expression import range_loss

    torch.manual_seed(0)
    target = torch.rand(2, 50, 52)
    shuffled = target[:, torch.randperm(50)]
    assert float(range_loss(shuffled, target)) < 1e-7  # the same values at other times cost nothing
    assert abs(float(range_loss(0.5 * target, target)) - 0.5 * float(target.mean())) < 1e-6


def test_calibration_gives_a_shrunk_channel_the_captures_range(shared_data):
    import numpy as np

    from emoflame.core.channels import CHANNEL_INDEX
    from emoflame.core.expression.learned import calibrate, read_calibration
    from emoflame.core.train.calibration import fit_calibration
    from emoflame.core.train.facegood import load_take

    take = load_take(shared_data / "facegood", "1114_3_15")
    capture = take.weights * take.valid
    jaw, funnel = CHANNEL_INDEX["jawOpen"], CHANNEL_INDEX["mouthFunnel"]
    shrunk = capture.copy()
    shrunk[:, jaw] = 0.5 * capture[:, jaw] + 0.05  # L1's median pull: peaks at about half
    shrunk[:, funnel] = np.random.default_rng(0).permutation(capture[:, funnel])  # a channel T does not follow
    cal = fit_calibration(shrunk, capture, take.valid)
    assert "jawOpen" in cal["channels"] and "mouthFunnel" not in cal["channels"]
    out = calibrate(shrunk, read_calibration(cal))
    for q in (50, 90, 95, 99):
        assert abs(np.percentile(out[:, jaw], q) - np.percentile(capture[:, jaw], q)) < 0.01, q
    assert abs(cal["scale"][cal["channels"].index("jawOpen")] - 2.0) < 0.01
    assert np.array_equal(out[:, funnel], shrunk[:, funnel])  # left as it was
    assert np.corrcoef(out[:, jaw], capture[:, jaw])[0, 1] > 0.999  # the timing is untouched

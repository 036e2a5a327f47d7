"""Intensity pseudo-labels on real captured speech and the avatar; the predictor P's flow and sampling."""

import numpy as np
import pytest
import torch

from emoflame.core.emotion.facs import emotion_direction
from emoflame.core.intensity.predictor import IntensityPredictor, PredictorConfig
from emoflame.core.intensity.pseudo_labels import pseudo_intensity, raw_intensity
from emoflame.core.train.facegood import load_take


@pytest.fixture(scope="module")
def takes(shared_data):
    return {t: load_take(shared_data / "facegood", t) for t in ("1114_2_01", "1114_3_15")}


def test_exaggerated_take_scores_higher_than_normal_on_one_scale(takes):
    normal, exaggerated = (takes[t].weights * takes[t].valid for t in ("1114_2_01", "1114_3_15"))
    scale = float(np.percentile(raw_intensity(normal), 99))
    a, b = pseudo_intensity(normal, scale=scale), pseudo_intensity(exaggerated, scale=scale)
    assert 0.0 <= a.min() and b.max() <= 1.0
    # measured: mean raw L 0.239 (normal) vs 0.454 (exaggerated)
    assert b.mean() > 1.6 * a.mean()


def test_per_sequence_normalisation_reaches_one_and_rest_is_zero(takes):
    w = takes["1114_2_01"].weights
    label = pseudo_intensity(w)
    assert label.max() == pytest.approx(1.0)
    assert pseudo_intensity(np.zeros((3, 52)), scale=1.0).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="never leaves neutral"):
        pseudo_intensity(np.zeros((3, 52)))
    with pytest.raises(ValueError, match="frames, 52"):
        pseudo_intensity(np.zeros((3, 10)))


def test_avatar_landmark_label_grows_with_emotion_strength():
    import emoflame

    avatar = emoflame.default_avatar()
    steps = np.linspace(0, 1, 5)[:, None]
    for emotion in ("happy", "angry", "surprised"):
        raw = raw_intensity(steps * emotion_direction(emotion), avatar=avatar)  # millimetres
        assert raw[0] == pytest.approx(0.0, abs=1e-3)
        assert np.all(np.diff(raw) > 1.0)
        # labelled against a neutral-speech frame instead of the rest pose, the emotion still shows
        assert raw_intensity(steps * emotion_direction(emotion), neutral=np.full(52, 0.05, np.float32))[-1] > 0


def test_flow_prior_inverts_and_sampling_is_seeded():
    torch.manual_seed(0)
    model = IntensityPredictor(PredictorConfig(hidden=16, wavenet_layers=2))
    for flow in model.flows:
        torch.nn.init.normal_(flow.post.weight, std=0.2)
    z, cond, mask = torch.randn(2, 4, 20), torch.randn(2, 16, 20), torch.ones(2, 1, 20)
    u = z
    for flow in model.flows:
        u, _ = flow(u, cond, mask)
    assert not torch.allclose(u, z)
    for flow in reversed(model.flows):
        u, _ = flow(u, cond, mask, reverse=True)
    assert torch.allclose(u, z, atol=1e-5)
    x = torch.randn(1, 37, 83)  # odd length: the stride-2 latent must still give 37 frames
    a = model.sample(x, generator=torch.Generator().manual_seed(3))
    b = model.sample(x, generator=torch.Generator().manual_seed(3))
    c = model.sample(x, generator=torch.Generator().manual_seed(4))
    assert a.shape == (1, 37) and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    out = model(x, torch.rand(1, 37), torch.ones(1, 37, dtype=torch.bool))
    assert out["mean"].shape == (1, 37) and torch.isfinite(out["loss"])

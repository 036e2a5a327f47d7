"""Offline text encoders and the emotion adapter M with its re-normalization."""

import numpy as np
import pytest
import torch

from emoflame.core.emotion.adapter import AdapterConfig, EmotionAdapter, level_norm, renormalize
from emoflame.core.emotion.text import ClipTextEncoder, text_encoder
from emoflame.core.emotion.vocabulary import MEAD_EMOTIONS
from emoflame.core.errors import ModelFileError


def test_packaged_minilm_places_free_text_near_its_emotion():
    enc = text_encoder("minilm")
    canon = enc.encode(list(MEAD_EMOTIONS))
    assert canon.shape == (8, 384)
    assert np.allclose(np.linalg.norm(canon, axis=1), 1.0, atol=1e-4)
    queries = {"terrified": "fearful", "astonished": "surprised", "heartbroken": "sad", "overjoyed": "happy"}
    nearest = np.array(MEAD_EMOTIONS)[(enc.encode(list(queries)) @ canon.T).argmax(1)]
    assert list(nearest) == list(queries.values())


def test_clip_without_checkpoint_names_the_setting(tmp_path):
    for missing in ("", str(tmp_path / "missing.bin")):
        with pytest.raises(ModelFileError, match="EMOFLAME_CLIP.*CLIP Weights preference"):
            ClipTextEncoder(missing)


def test_clip_loads_a_local_checkpoint(tmp_path):
    # The loading path on a real open_clip checkpoint file, with a tiny architecture registered
    # for the test so it runs in a second (untrained weights: this checks loading and shapes,
    # not what the embeddings mean).
    import json

    import open_clip

    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "emoflame-test-tiny.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "emoflame-test-tiny.json")
    path = tmp_path / "tiny.bin"
    torch.save(open_clip.create_model("emoflame-test-tiny", pretrained=None).state_dict(), path)
    enc = ClipTextEncoder(path, arch="emoflame-test-tiny")
    emb = enc.encode(["happy", "quietly furious"])
    assert emb.shape == (2, enc.dim) == (2, 32)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    bad = tmp_path / "bad.bin"
    torch.save({"not": torch.zeros(2)}, bad)
    with pytest.raises(ModelFileError, match="not an open_clip"):
        ClipTextEncoder(bad, arch="emoflame-test-tiny")


def test_adapter_has_the_papers_shape():
    cfg = AdapterConfig()
    m = EmotionAdapter(cfg)
    assert len(m.fc) == 8 and m.fc[4].in_features == 384 + 384 and m.fc[-1].out_features == 896
    out = m(torch.randn(3, 16), torch.randn(3, 384))
    assert out.shape == (3, 896)


def test_renormalization_levels_and_neutral_origin():
    levels = torch.tensor([[0.0, 1 / 3, 0.5, 2 / 3, 1.0]])
    assert level_norm(levels).tolist()[0] == pytest.approx([0.0, 5.0, 10.0, 15.0, 30.0])
    assert level_norm(np.array([-1.0, 2.0])).tolist() == [0.0, 30.0]
    feature = torch.randn(1, 896) * 7
    out = renormalize(feature, levels)
    assert out.norm(dim=-1)[0].tolist() == pytest.approx([0.0, 5.0, 10.0, 15.0, 30.0], abs=1e-4)
    cos = torch.nn.functional.cosine_similarity(out[0, 1:], feature.expand(4, -1), dim=-1)
    assert torch.allclose(cos, torch.ones(4), atol=1e-5)  # the direction (the emotion) is kept

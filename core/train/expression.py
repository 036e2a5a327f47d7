"""Train the EmotionAdapter M and the ExpressionTransformer T together (Xu et al., Sec. 3.3–3.4).

    python -m emoflame.core.train.expression --config core/train/configs/expression.toml

Data: the FACEGOOD takes minus the held-out one, with emotions added by
``core.train.augment`` (FACS directions × random intensity curves, lips yielding at closures).
Each window gets an emotion (the 8 MEAD emotions, neutral included), one of its words from
``core.emotion.vocabulary`` (so M sees synonyms, and free text lands near them), a normal
sample z and an intensity curve L. M(z, text) is re-normalized to t(L) per frame (neutral at the
origin) and fed to T; the loss is L1 on the 52 channels plus L1 on their frame-to-frame velocity,
plus the L2-norm penalty that keeps M(neutral) at the origin, plus (``range_weight``) the L1
between each window's sorted values per channel (:func:`range_loss`), which keeps T's peaks
from shrinking to the median. ``intensity_mode`` trains the
Table 3 baselines with the same data and steps. At the end, T's range calibration is fitted on
the training takes (``core.train.calibration``) and stored in its checkpoint.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from ..channels import CHANNEL_INDEX
from ..emotion.adapter import AdapterConfig, EmotionAdapter, emotion_condition
from ..emotion.facs import emotion_direction
from ..emotion.text import text_encoder
from ..emotion.vocabulary import MEAD_EMOTIONS, SYNONYMS
from ..checkpoints import export_checkpoint
from ..expression.learned import calibrate, read_calibration
from ..expression.transformer import ExpressionTransformer, TransformerConfig
from ..settings import Settings
from .augment import emotional_targets, random_intensity_curves
from .calibration import fit_calibration, neutral_predictions
from .common import finish_run, load_config, log, resolve, resume_state, run_summary, run_training, save_state, start_run
from .dataset import sample_windows

NEUTRAL_PENALTY = 0.01


@dataclasses.dataclass
class ExpressionModels:
    """The two model configs of one run (one TOML [model] table)."""

    adapter: dict = dataclasses.field(default_factory=dict)
    transformer: dict = dataclasses.field(default_factory=dict)
    text_encoder: str = "minilm"
    velocity_weight: float = 0.5
    range_weight: float = 0.0   # weight of range_loss (0: the per-frame L1 alone)


def lip_sync_metrics(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Per-frame Pearson r of jawOpen and mean absolute error over the captured channels."""
    jaw = CHANNEL_INDEX["jawOpen"]
    return {"jaw_open_r": float(np.corrcoef(pred[:, jaw], truth[:, jaw])[0, 1]),
            "mae_mouth": float(np.abs(pred - truth)[:, truth.std(0) > 0].mean())}


def range_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between each channel's values sorted over the window: (B, W, C) → scalar.

    The 1-D Wasserstein distance between the distributions of predicted and captured values per
    window and channel: blind to timing (the per-frame L1 sees to that), it penalises a prediction
    whose peaks fall short of the capture's, which per-frame L1 alone rewards wherever the audio
    leaves the mouth shape uncertain (it predicts the median).
    """
    return (pred.sort(dim=1).values - target.sort(dim=1).values).abs().mean()


def train(config_path: Path) -> dict:
    models, tcfg, extra = load_config(config_path, ExpressionModels)
    device, takes, train_seqs, (held,), mean, std = start_run(tcfg)

    clip = Settings.from_environment()
    encoder = text_encoder(models.text_encoder, clip.clip_checkpoint, clip.clip_arch)
    words = [[e, *SYNONYMS[e]] for e in MEAD_EMOTIONS]
    word_emb = [torch.from_numpy(encoder.encode(w)).to(device) for w in words]  # per emotion (n_words, D)
    canonical = np.stack([encoder.encode([e])[0] for e in MEAD_EMOTIONS])
    directions = np.stack([emotion_direction(e) for e in MEAD_EMOTIONS])

    acfg = AdapterConfig(**{**models.adapter, "text_dim": encoder.dim})
    tcfg_model = TransformerConfig(**{**models.transformer, "feature_dim": len(mean), "emotion_dim": acfg.out_dim})
    adapter = EmotionAdapter(acfg).to(device)
    transformer = ExpressionTransformer(tcfg_model).to(device)
    params = list(adapter.parameters()) + list(transformer.parameters())
    opt = torch.optim.AdamW(params, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    warmup = max(1, min(100, tcfg.steps // 8))  # 100 steps for the shipped runs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.1, 1 - s / tcfg.steps))
    run_dir = resolve(tcfg.run_dir)
    modules = {"adapter": adapter, "transformer": transformer}
    start = resume_state(run_dir, modules, opt)
    for _ in range(start):
        sched.step()
    rng = np.random.default_rng(tcfg.seed + start)
    mean_t, std_t = torch.from_numpy(mean).to(device), torch.from_numpy(std).to(device)
    neutral_id = MEAD_EMOTIONS.index("neutral")
    t0, history = time.time(), []
    adapter.train(); transformer.train()
    for step in range(start, tcfg.steps):
        f, w, _ = sample_windows(rng, train_seqs, tcfg.window, tcfg.batch)
        emo = rng.integers(0, len(MEAD_EMOTIONS), tcfg.batch)
        curves = random_intensity_curves(rng, tcfg.batch, tcfg.window)
        target = emotional_targets(w, directions[emo], curves * (emo != neutral_id)[:, None])
        text = torch.stack([word_emb[e][rng.integers(len(word_emb[e]))] for e in emo])
        z = torch.randn(tcfg.batch, acfg.z_dim, device=device)
        feature = adapter(z, text)
        intensity = torch.from_numpy(curves).to(device)
        neutral = torch.from_numpy(emo == neutral_id).to(device)
        x = (torch.from_numpy(f).to(device) - mean_t) / std_t
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=device)
        pred = transformer(x, emotion_condition(tcfg_model.intensity_mode, feature, intensity, neutral), mask)
        y = torch.from_numpy(target).to(device)
        loss_pos = (pred - y).abs().mean()
        loss_vel = ((pred[:, 1:] - pred[:, :-1]) - (y[:, 1:] - y[:, :-1])).abs().mean()
        neutral_text = word_emb[neutral_id][:1].expand(tcfg.batch, -1)
        loss_neutral = adapter(z, neutral_text).pow(2).sum(-1).mean()
        loss = loss_pos + models.velocity_weight * loss_vel + NEUTRAL_PENALTY * loss_neutral
        if models.range_weight:
            loss = loss + models.range_weight * range_loss(pred, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        history.append(loss_pos.item())
        if (step + 1) % tcfg.log_every == 0:
            log.info("step %d L1 %.4f vel %.4f neutral %.3f (%.2f steps/s)", step + 1, np.mean(history[-tcfg.log_every:]),
                     float(loss_vel), float(loss_neutral), (step + 1 - start) / (time.time() - t0))
        if (step + 1) % tcfg.save_every == 0:
            save_state(run_dir, step + 1, modules, opt)
    adapter.eval(); transformer.eval()
    calibration = fit_calibration(*neutral_predictions(transformer, train_seqs, mean, std, device), held.valid)
    pred = neutral_predictions(transformer, [held], mean, std, device)[0]
    held_out = lip_sync_metrics(pred, held.weights)
    held_out.update({f"{k}_calibrated": v for k, v in lip_sync_metrics(calibrate(pred, read_calibration(calibration)),
                                                                       held.weights).items()})
    metrics, common = run_summary(tcfg, takes, config_path, start, t0, history, held_out)
    common["augmentation"] = "core.train.augment"
    outputs = extra.get("outputs", {})
    if outputs:
        export_checkpoint(resolve(outputs["adapter"]), adapter, acfg, tcfg.steps, {
            **common, "text_encoder": encoder.name, "emotions": list(MEAD_EMOTIONS), "emotion_text_embeddings": canonical.tolist()})
        export_checkpoint(resolve(outputs["transformer"]), transformer, tcfg_model, tcfg.steps, {
            **common, "feature_mean": mean.tolist(), "feature_std": std.tolist(), "calibration": calibration})
    return finish_run(run_dir, tcfg, modules, opt, metrics)


def main(argv=None):
    run_training(train, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()

"""Train the IntensityPredictor P on the FACEGOOD takes (held-out take excluded).

    python -m emoflame.core.train.intensity --config core/train/configs/intensity.toml

Labels: the channel-weight pseudo-intensity L_i of each captured frame against the rig's rest
pose (``core.intensity.pseudo_labels``), averaged over ~1 s and divided by the 99th percentile
of the training takes, so the exaggerated takes score higher than the normal ones. Resumable:
re-running the command continues from ``<run_dir>/last.pt``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..checkpoints import export_checkpoint
from ..intensity.predictor import IntensityPredictor, PredictorConfig
from .common import finish_run, load_config, log, resolve, resume_state, run_summary, run_training, save_state, start_run
from .dataset import sample_windows


def evaluate(model, seqs, mean, std, scale, device, seeds=(0, 1, 2), temperature=0.667) -> dict:
    """Pearson r and RMSE between P's samples (averaged over ``seeds``) and the normalised labels."""
    rs, errs = [], []
    for s in seqs:
        x = torch.from_numpy((s.features - mean) / std)[None].to(device)
        draws = [model.sample(x, temperature=temperature, generator=torch.Generator(device).manual_seed(k))[0].cpu().numpy()
                 for k in seeds]
        pred, label = np.mean(draws, 0), np.clip(s.raw_label / scale, 0, 1)
        rs.append(float(np.corrcoef(pred, label)[0, 1]))
        errs.append(float(np.sqrt(np.mean((pred - label) ** 2))))
    return {"pearson_r": float(np.mean(rs)), "rmse": float(np.mean(errs))}


def train(config_path: Path) -> dict:
    mcfg, tcfg, _ = load_config(config_path, PredictorConfig)
    device, takes, train_seqs, held, mean, std = start_run(tcfg)
    scale = float(np.percentile(np.concatenate([s.raw_label for s in train_seqs]), 99))
    mcfg.feature_dim = len(mean)

    model = IntensityPredictor(mcfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    run_dir = resolve(tcfg.run_dir)
    start = resume_state(run_dir, {"model": model}, opt)
    rng = np.random.default_rng(tcfg.seed + start)
    mean_t, std_t = torch.from_numpy(mean).to(device), torch.from_numpy(std).to(device)
    t0, history = time.time(), []
    model.train()
    for step in range(start, tcfg.steps):
        f, _, l = sample_windows(rng, train_seqs, tcfg.window, tcfg.batch)
        x = (torch.from_numpy(f).to(device) - mean_t) / std_t
        y = torch.from_numpy(np.clip(l / scale, 0, 1)).to(device)
        out = model(x, y, torch.ones(y.shape, dtype=torch.bool, device=device))
        opt.zero_grad()
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        history.append(out["loss"].item())
        if (step + 1) % tcfg.log_every == 0:
            log.info("step %d loss %.4f recon %.4f kl %.4f (%.1f steps/s)", step + 1, np.mean(history[-tcfg.log_every:]),
                     float(out["recon"]), float(out["kl"]), (step + 1 - start) / (time.time() - t0))
        if (step + 1) % tcfg.save_every == 0:
            save_state(run_dir, step + 1, {"model": model}, opt)
    model.eval()
    metrics, meta = run_summary(tcfg, takes, config_path, start, t0, history,
                                evaluate(model, held, mean, std, scale, device))
    if tcfg.export:
        export_checkpoint(resolve(tcfg.export), model, mcfg, tcfg.steps,
                          {"feature_mean": mean.tolist(), "feature_std": std.tolist(), "label_scale": scale, **meta})
    return finish_run(run_dir, tcfg, {"model": model}, opt, metrics)


def main(argv=None):
    run_training(train, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()

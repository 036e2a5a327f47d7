"""T's articulation range: a per-channel linear map fitted on the training takes.

    python -m emoflame.core.train.calibration --config core/train/configs/expression.toml

L1 regression (T's loss) predicts a median: where the audio leaves the mouth shape uncertain,
the peaks of jawOpen and the lips are pulled towards the middle, and T reaches about half the
captured range. Per channel, a line through the medians of T's neutral output and of the capture on the
training takes, with the slope that best takes T's upper percentiles onto the capture's (least
squares over :data:`LEVELS`, the median up, where articulation lives), gives the range back; its
slope is at least 1, so no peak shrinks, and being linear it keeps the timing and T's
correlation with the capture. (A full quantile map, tried first, also matched the percentiles but
cost 0.04-0.05 of mouth-opening r on the training takes by flattening the low end, and so does a
free least-squares line, whose offset sends T's quiet frames to 0.) It is applied by
``core.expression.learned.calibrate`` to T's speech part only, so an emotion's channels keep
what M and T give them. Only channels T follows (Pearson r of at least :data:`MIN_R` against the
capture on the training takes) are mapped: a channel T does not track would only get louder
noise. The held-out take plays no part.

Run alone, the module refits the map of an exported transformer and writes it back into the
checkpoint's meta; ``core.train.expression`` fits it at the end of every run.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import numpy as np
import torch

from ..channels import ARKIT_CHANNELS

LEVELS = (50.0, 60.0, 70.0, 80.0, 85.0, 90.0, 95.0, 97.5, 99.0, 99.5)
"""Percentiles the line is fitted to: through the first (the median), the slope from the rest."""
MIN_R = 0.5
"""Pearson r against the capture (training takes) a channel needs to be calibrated."""


def fit_calibration(predicted: np.ndarray, captured: np.ndarray, valid: np.ndarray) -> dict:
    """The linear map of each channel T follows.

    Args:
        predicted: (F, 52) T's neutral output over the training takes' frames.
        captured: (F, 52) the capture at the same frames.
        valid: (52,) bool, the captured channels.

    Returns:
        ``{"channels": [names], "scale": [a], "offset": [b], "pearson_r": [r], "levels":
        LEVELS, "min_r": MIN_R, "captured": [names]}``: a channel's weight w becomes
        clip(a·w + b, 0, 1), a ≥ 1; ``captured`` the channels the capture recorded (T's speech
        part keeps only those).
    """
    out = {"channels": [], "scale": [], "offset": [], "pearson_r": [], "levels": list(LEVELS), "min_r": MIN_R,
           "captured": [ARKIT_CHANNELS[k] for k in np.flatnonzero(valid)]}
    for k in np.flatnonzero(valid):
        p, c = predicted[:, k].astype(np.float64), captured[:, k].astype(np.float64)
        if p.std() < 1e-6 or c.std() < 1e-6:
            continue
        r = float(np.corrcoef(p, c)[0, 1])
        if r < MIN_R:
            continue
        xp, fp = np.percentile(p, LEVELS), np.percentile(c, LEVELS)
        dx, dy = xp - xp[0], fp - fp[0]
        scale = max(1.0, float(dx @ dy / max(dx @ dx, 1e-12)))
        offset = float(fp[0] - scale * xp[0])
        out["channels"].append(ARKIT_CHANNELS[k])
        out["scale"].append(scale)
        out["offset"].append(offset)
        out["pearson_r"].append(r)
    return out


def neutral_predictions(transformer, seqs, mean: np.ndarray, std: np.ndarray, device) -> tuple[np.ndarray, np.ndarray]:
    """T's neutral output and the capture over whole takes, stacked.

    Args:
        transformer: T in eval mode.
        seqs: ``core.train.dataset.Sequence`` list.
        mean, std: (D,) the feature statistics T was trained with.

    Returns:
        ``(predicted (F, 52), captured (F, 52))``.
    """
    from ..expression.learned import run_transformer

    preds = []
    with torch.no_grad():
        for s in seqs:
            x = torch.from_numpy((s.features - mean) / std).float()[None].to(device)
            extra = 1 if transformer.cfg.intensity_mode == "concat" else 0
            zeros = torch.zeros(1, x.shape[1], transformer.cfg.emotion_dim + extra, device=device)
            preds.append(run_transformer(transformer, x, zeros))
    return np.concatenate(preds), np.concatenate([s.weights for s in seqs])


def calibrate_checkpoint(config_path: Path) -> dict:
    """Refit the calibration of the transformer a config exports, on that config's training
    takes, and write it into the checkpoint's meta. Returns the calibration."""
    from ..checkpoints import load_checkpoint
    from ..expression.transformer import ExpressionTransformer, TransformerConfig
    from .common import TrainConfig, resolve, start_run

    raw = tomllib.loads(Path(config_path).read_text())  # [train] and [outputs]; [model] is in the checkpoint
    device, _, train_seqs, _, _, _ = start_run(TrainConfig(**raw.get("train", {})))
    path = resolve(raw["outputs"]["transformer"])
    transformer, ckpt = load_checkpoint(path, ExpressionTransformer, TransformerConfig, str(device))
    mean, std = (np.asarray(ckpt["meta"][k], np.float32) for k in ("feature_mean", "feature_std"))
    cal = fit_calibration(*neutral_predictions(transformer, train_seqs, mean, std, device), train_seqs[0].valid)
    ckpt["meta"]["calibration"] = cal
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)
    return cal


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="an expression config in core/train/configs/")
    args = parser.parse_args(argv)
    cal = calibrate_checkpoint(args.config)
    for name, r, a, b in zip(cal["channels"], cal["pearson_r"], cal["scale"], cal["offset"]):
        print(f"{name:<18} r {r:.3f}  w -> {a:.3f} w {b:+.3f}")


if __name__ == "__main__":
    main()

"""The learned models' checkpoint files, read by inference and written by training.

A checkpoint describes itself (as nanoGPT's do): ``{"model": state_dict, "config": {...},
"step": int, "meta": {...}}``, rebuilt as ``Model(Config(**config))``. Loading uses
``torch.load(weights_only=True)``: no code runs from the file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .errors import ModelFileError


def export_checkpoint(path: Path, model: torch.nn.Module, config, step: int, meta: dict) -> Path:
    """Write a shipped checkpoint (weights as float32 CPU tensors; config and meta as plain values).

    Args:
        path: the ``.pt`` file; its folder is created.
        model: the trained module.
        config: its config dataclass.
        step: optimiser steps it was trained for.
        meta: provenance and what inference needs (``fps``, ``front_end``, feature statistics).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
         "config": dataclasses.asdict(config), "step": step, "meta": meta},
        path,
    )
    return path


def load_checkpoint(path: Path, model_cls, config_cls, device: str = "cpu"):
    """Rebuild ``model_cls(config_cls(**ckpt['config']))`` from a checkpoint, safely.

    Returns:
        ``(model in eval mode on device, checkpoint dict)``.

    Raises:
        ModelFileError: the file is missing, not a checkpoint, or holds anything but weights.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"checkpoint missing: {path}; reinstall emoflame or retrain it (see its _CARD.md)")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        model = model_cls(config_cls(**ckpt["config"]))
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, TypeError, ValueError, EOFError) as exc:
        raise ModelFileError(f"{path} is not a valid emoflame {model_cls.__name__} checkpoint ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), ckpt


def model_fps(ckpt: dict) -> float:
    """The frame rate (Hz) a checkpoint's model was trained at: its ``meta["fps"]``.

    Raises:
        ModelFileError: the checkpoint does not record a positive frame rate.
    """
    fps = ckpt.get("meta", {}).get("fps")
    if not isinstance(fps, (int, float)) or not fps > 0:
        raise ModelFileError(f"the checkpoint records no frame rate (meta fps = {fps!r}); retrain or reinstall it")
    return float(fps)

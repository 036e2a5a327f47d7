"""What every training entry point shares: TOML configs, seeding, devices, checkpoints.

A run keeps its resumable state (model, optimiser, step, RNG) in ``<run_dir>/last.pt`` and
exports the shipped checkpoint — ``{"model": state_dict, "config": {...}, "step": int,
"meta": {...}}`` — to ``export`` when it finishes. Every load uses ``weights_only=True``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import random
import tomllib
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelFileError

log = logging.getLogger("emoflame.train")

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data"


@dataclasses.dataclass
class TrainConfig:
    steps: int = 3000          # optimiser steps
    batch: int = 16            # windows per step
    window: int = 120          # frames per training window (30 fps)
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"       # "auto" (CUDA when present), "cpu" or "cuda"
    threads: int = 1           # CPU threads (the machine is shared)
    log_every: int = 100
    save_every: int = 500      # steps between resumable snapshots
    front_end: str = "logmel_prosody"
    data: str = ""             # ../shared/data by default
    takes: list = dataclasses.field(default_factory=list)  # FACEGOOD takes to train on; [] = all but the held-out one
    run_dir: str = "out/train/run"
    export: str = ""           # where the final checkpoint goes (relative to the repository)


def load_config(path: str | Path, model_cls):
    """Read a TOML file with ``[model]`` and ``[train]`` tables (plus any extra tables, returned raw).

    Returns:
        ``(model_config, train_config, extra)``.

    Raises:
        ValueError: an unknown key (named) in ``[model]`` or ``[train]``.
    """
    raw = tomllib.loads(Path(path).read_text())
    out = []
    for cls, key in ((model_cls, "model"), (TrainConfig, "train")):
        table = raw.pop(key, {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(table) - names
        if unknown:
            raise ValueError(f"{path}: unknown [{key}] keys {sorted(unknown)}; known: {sorted(names)}")
        out.append(cls(**table))
    return out[0], out[1], raw


def training_takes(tcfg: TrainConfig) -> tuple[str, ...]:
    """The takes a run trains on.

    Raises:
        ValueError: the held-out take or an unknown take is listed.
    """
    from .facegood import HELD_OUT, TRAIN_TAKES

    takes = tuple(tcfg.takes) or TRAIN_TAKES
    bad = [t for t in takes if t not in TRAIN_TAKES]
    if bad:
        raise ValueError(f"cannot train on {bad}: choose from {list(TRAIN_TAKES)} ({HELD_OUT} is held out for evaluation)")
    return takes


def loss_summary(history: list[float], n: int = 10) -> dict:
    """Mean loss over the first and the last ``n`` steps of this run."""
    return {"first_loss": float(np.mean(history[:n])) if history else None,
            "final_loss": float(np.mean(history[-n:])) if history else None}


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else REPO / p


def save_state(run_dir: Path, step: int, modules: dict, optimizer) -> None:
    """Write the resumable snapshot ``run_dir/last.pt`` (atomic rename)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "modules": {k: m.state_dict() for k, m in modules.items()},
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    tmp = run_dir / "last.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(run_dir / "last.pt")


def resume_state(run_dir: Path, modules: dict, optimizer) -> int:
    """Load ``run_dir/last.pt`` into ``modules`` and ``optimizer`` if it exists; returns the step to start at."""
    path = run_dir / "last.pt"
    if not path.is_file():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=True)
    for k, m in modules.items():
        m.load_state_dict(state["modules"][k])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    log.info("resumed %s at step %d", path, state["step"])
    return int(state["step"])


def export_checkpoint(path: Path, model: torch.nn.Module, config, step: int, meta: dict) -> Path:
    """Write the shipped checkpoint (weights as float32 tensors; config and meta as plain values)."""
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
        ``(model in eval mode, checkpoint dict)``.

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


def run_training(train, description: str, argv=None) -> None:
    """Command-line entry of a training module: ``--config FILE.toml``, INFO logging, then
    ``train(config_path)`` and its held-out metrics printed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, required=True, help="a TOML file in core/train/configs/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(train(args.config))

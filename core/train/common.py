"""What every training entry point shares: TOML configs, seeding, devices, checkpoints.

A run keeps its resumable state (model, optimiser, step, RNG) in ``<run_dir>/last.pt`` and
exports the shipped checkpoint (``core.checkpoints.export_checkpoint``) when it finishes. Every
load uses ``weights_only=True``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import random
import time
import tomllib
from pathlib import Path

import numpy as np
import torch


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


def start_run(tcfg: TrainConfig):
    """What every run does first: threads, seed and device; the training takes and the held-out
    take as ``core.train.dataset.Sequence`` (features cached under ``out/cache``); the feature
    statistics of the training takes.

    Returns:
        ``(device, takes, train_seqs, held_seqs, mean (D,), std (D,))``.

    Raises:
        ValueError: the held-out take or an unknown take is listed to train on.
    """
    from .dataset import feature_stats, load_sequences
    from .facegood import HELD_OUT

    torch.set_num_threads(tcfg.threads)
    set_seed(tcfg.seed)
    data = Path(tcfg.data) if tcfg.data else DEFAULT_DATA
    cache = resolve("out/cache")
    takes = training_takes(tcfg)
    train_seqs = load_sequences(data, takes, tcfg.front_end, cache)
    held = load_sequences(data, (HELD_OUT,), tcfg.front_end, cache)
    mean, std = feature_stats(train_seqs)
    return pick_device(tcfg.device), takes, train_seqs, held, mean, std


def run_summary(tcfg: TrainConfig, takes, config_path, start: int, started: float, history: list[float],
                held_out: dict) -> tuple[dict, dict]:
    """What every run records when it ends: ``(metrics, meta)``.

    Args:
        tcfg: the run's train config.
        takes: the takes it trained on.
        config_path: its TOML file.
        start: the step it resumed at; ``started``: ``time.time()`` then.
        history: the loss per step of this run.
        held_out: the model's metrics on the held-out take.

    Returns:
        ``metrics`` (held-out figures, steps per second, first and final loss) and the checkpoint
        ``meta`` every exported model carries (front end, frame rate, takes, seed, metrics, config).
    """
    from .facegood import FPS, HELD_OUT

    metrics = {"held_out": HELD_OUT, **held_out,
               "train_steps_per_s": (tcfg.steps - start) / max(time.time() - started, 1e-9),
               **loss_summary(history)}
    meta = {"front_end": tcfg.front_end, "fps": FPS, "train_takes": list(takes), "seed": tcfg.seed,
            "metrics": metrics, "config_file": str(config_path)}
    return metrics, meta


def finish_run(run_dir: Path, tcfg: TrainConfig, modules: dict, optimizer, metrics: dict) -> dict:
    """Write the final resumable snapshot, log the held-out metrics and return them."""
    save_state(run_dir, tcfg.steps, modules, optimizer)
    log.info("held-out %s: %s", metrics["held_out"], metrics)
    return metrics


def run_training(train, description: str, argv=None) -> None:
    """Command-line entry of a training module: ``--config FILE.toml``, INFO logging, then
    ``train(config_path)`` and its held-out metrics printed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, required=True, help="a TOML file in core/train/configs/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(train(args.config))

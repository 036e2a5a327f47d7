"""Load LivePortrait's released weights from a local folder, safely and checked.

The folder holds the release's files in its own layout (``FILES``), found through the
``folder`` argument or ``$EMOFLAME_LIVEPORTRAIT``. Every file is read with
``torch.load(weights_only=True)`` (no pickled code runs), bounded in size, and every tensor's name
and shape is checked against the network before anything is loaded, so a damaged, foreign or
malicious file is a :class:`ModelFileError` that names the file and the fix. Nothing is ever
downloaded, and there is no fallback to untrained weights: without the files nothing renders.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...core.errors import ModelFileError, SettingsError
from .networks import (
    EYE, LIP, STITCHING, AppearanceFeatureExtractor, KeypointMLP, MotionExtractor, SpadeGenerator, WarpingModule,
)

log = logging.getLogger(__name__)

ENV_VAR = "EMOFLAME_LIVEPORTRAIT"
"""Environment variable naming the weights folder when no folder is passed."""

FILES = {
    "appearance": "base_models/appearance_feature_extractor.pth",
    "motion": "base_models/motion_extractor.pth",
    "warping": "base_models/warping_module.pth",
    "generator": "base_models/spade_generator.pth",
    "retargeting": "retargeting_models/stitching_retargeting_module.pth",
}
"""Network group -> path inside the weights folder (the layout of LivePortrait's release)."""

RETARGETING_PARTS = {"retarget_shoulder": "stitching", "retarget_mouth": "lip", "retarget_eye": "eye"}
"""Entry of the retargeting file -> the :class:`LivePortraitModels` field it loads."""

_SOURCE = ("LivePortrait's released human weights (KwaiVGI/LivePortrait: the 'liveportrait/' folder of its "
           "Hugging Face repository)")
_DDP_PREFIX = "module."  # DistributedDataParallel's prefix, which the retargeting file's keys carry
_SIZE_SLACK = 2.0        # a file may be this many times its tensors' float32 size (plus 1 MiB) and no more


@dataclass
class LivePortraitModels:
    """The loaded networks, in eval mode without gradients, on ``device``.

    Attributes:
        appearance: F, image -> feature volume.
        motion: M, image -> keypoints, pose, expression.
        warping: W, the warping module with its dense-motion network.
        generator: G, the SPADE generator.
        stitching: S, [x_s, x_d] (126) -> Δ (65).
        lip: R_lip, [x_s, c_s,lip, c_d,lip] (65) -> Δ (63).
        eye: R_eyes, [x_s, c_s,eye L, c_s,eye R, c_d,eye] (66) -> Δ (63).
        folder: the weights folder they came from.
        device: where they live.
    """

    appearance: AppearanceFeatureExtractor
    motion: MotionExtractor
    warping: WarpingModule
    generator: SpadeGenerator
    stitching: KeypointMLP
    lip: KeypointMLP
    eye: KeypointMLP
    folder: Path
    device: torch.device


def build_networks() -> dict[str, nn.Module]:
    """Freshly initialised networks with the released configuration, by :class:`LivePortraitModels` field.

    Untrained: only for loading into, or for shape tests. Never render with them.
    """
    return {
        "appearance": AppearanceFeatureExtractor(), "motion": MotionExtractor(), "warping": WarpingModule(),
        "generator": SpadeGenerator(), "stitching": KeypointMLP(STITCHING), "lip": KeypointMLP(LIP),
        "eye": KeypointMLP(EYE),
    }


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` -> CUDA when present, else CPU; anything else as torch reads it.

    Raises:
        SettingsError: an unknown device or CUDA asked for where there is none.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise SettingsError(f"unknown device {device!r} ({exc}); use 'auto', 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError(f"device {device!r} asked for, but this torch sees no CUDA GPU; use 'auto' or 'cpu'")
    return dev


def layout_help(folder: str | Path = "/path/to/liveportrait_weights") -> str:
    """One line telling where the files go and how emoflame finds them."""
    files = ", ".join(f"{folder}/{f}" for f in FILES.values())
    return (f"put {_SOURCE} in a folder laid out as {files}, then pass that folder or set "
            f"{ENV_VAR}={folder}; emoflame never downloads them and never renders without them")


def weights_folder(folder: str | os.PathLike | None = None) -> Path:
    """The weights folder: ``folder`` if given, else ``$EMOFLAME_LIVEPORTRAIT``; every file must be there.

    Raises:
        ModelFileError: no folder given or set, the folder is missing, or files are missing
            (all of them are named, with the layout).
    """
    if folder is None:
        folder = os.environ.get(ENV_VAR) or None
    if folder is None:
        raise ModelFileError(f"the neural renderer needs LivePortrait's weights and no folder was given "
                             f"({ENV_VAR} is not set): {layout_help()}")
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelFileError(f"LivePortrait weights folder {path} does not exist: {layout_help(path)}")
    missing = [f for f in FILES.values() if not (path / f).is_file()]
    if missing:
        raise ModelFileError(f"LivePortrait weights folder {path} lacks {', '.join(missing)}: {layout_help(path)}")
    return path


def _float32_bytes(modules: list[nn.Module]) -> int:
    return sum(t.numel() * 4 for m in modules for t in m.state_dict().values())


def _read(path: Path, label: str, expected_bytes: int):
    """torch.load(weights_only=True) with a size bound; any failure becomes ModelFileError."""
    size = path.stat().st_size
    if size > _SIZE_SLACK * expected_bytes + 2 ** 20:
        raise ModelFileError(f"{path} is {size / 2 ** 20:.0f} MiB, far more than {label} holds "
                             f"({expected_bytes / 2 ** 20:.0f} MiB): it is not that file; {layout_help(path.parents[1])}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged zip, a foreign pickle, a pickle with code: all the same to the user
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"{path} cannot be read as {label} ({type(exc).__name__}: {reason}); emoflame reads weights with "
            f"torch.load(weights_only=True) and never runs code stored in a file: replace it with the file from "
            f"{_SOURCE}") from None


def validate_state_dict(tensors, module: nn.Module, where: str) -> dict[str, torch.Tensor]:
    """Check a loaded state dict against ``module`` and return it ready for ``load_state_dict(strict=True)``.

    A leading ``module.`` on every key (DistributedDataParallel's) is removed; floating tensors
    become float32 and must be finite.

    Args:
        tensors: what ``torch.load`` returned.
        module: the network it must fit.
        where: the file (and entry) for messages.

    Raises:
        ModelFileError: not a name -> tensor mapping, missing or unexpected names, a wrong shape
            or dtype, or non-finite values; the message names the file and a few of the names.
    """
    fix = f"replace it with the file from {_SOURCE}"
    if not isinstance(tensors, Mapping) or not all(isinstance(k, str) for k in tensors):
        raise ModelFileError(f"{where} is not a state dict (a mapping of names to tensors) but a "
                             f"{type(tensors).__name__}; {fix}")
    if tensors and all(k.startswith(_DDP_PREFIX) for k in tensors):
        tensors = {k[len(_DDP_PREFIX):]: v for k, v in tensors.items()}
    expected = module.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    not_tensor = [k for k in tensors if k in expected and not isinstance(tensors[k], torch.Tensor)]
    wrong = [f"{k} {tuple(tensors[k].shape)} (expected {tuple(expected[k].shape)})" for k in expected
             if k in tensors and k not in not_tensor and tensors[k].shape != expected[k].shape]
    problems = []
    for what, names in (("missing", missing), ("unexpected", unexpected), ("not tensors", not_tensor),
                        ("wrong shapes", wrong)):
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            problems.append(f"{what}: {', '.join(names[:3])}{more}")
    if problems:
        raise ModelFileError(f"{where} does not fit LivePortrait's {type(module).__name__} "
                             f"({'; '.join(problems)}); {fix}")
    out = {}
    for k, ref in expected.items():
        t = tensors[k]
        if ref.is_floating_point():
            if not t.is_floating_point():
                raise ModelFileError(f"{where}: {k} is {t.dtype}, expected floating point; {fix}")
            t = t.to(torch.float32)
            if not torch.isfinite(t).all():
                raise ModelFileError(f"{where}: {k} holds NaN or infinite values; {fix}")
        elif t.is_floating_point() or t.is_complex():
            raise ModelFileError(f"{where}: {k} is {t.dtype}, expected an integer counter; {fix}")
        out[k] = t
    return out


def load_liveportrait(folder: str | os.PathLike | None = None, device: str | torch.device = "auto") -> LivePortraitModels:
    """Load the five released LivePortrait files into our networks.

    Args:
        folder: the weights folder (layout: ``FILES``); ``$EMOFLAME_LIVEPORTRAIT`` when None.
        device: ``'auto'`` (CUDA when present), ``'cpu'``, ``'cuda'``, ``'cuda:1'``…

    Returns:
        :class:`LivePortraitModels` in eval mode, gradients off.

    Raises:
        ModelFileError: no folder, missing files, or a file that is damaged, too large, not a
            weights file, or does not fit (names the file and the fix).
        SettingsError: an unusable ``device``.
    """
    path = weights_folder(folder)
    dev = resolve_device(device)
    nets = build_networks()
    # Smallest file first: a broken small file is reported before the large ones are read.
    for group in sorted(FILES, key=lambda g: (path / FILES[g]).stat().st_size):
        relative = FILES[group]
        file = path / relative
        if group == "retargeting":
            parts = [nets[f] for f in RETARGETING_PARTS.values()]
            data = _read(file, "LivePortrait's stitching and retargeting module", _float32_bytes(parts))
            if not isinstance(data, Mapping):
                raise ModelFileError(f"{file} is a {type(data).__name__}, not LivePortrait's dict of "
                                     f"{', '.join(RETARGETING_PARTS)}; replace it with the file from {_SOURCE}")
            absent = [k for k in RETARGETING_PARTS if k not in data]
            if absent:
                raise ModelFileError(f"{file} lacks {', '.join(absent)} (it has {', '.join(map(str, data)) or 'nothing'}); "
                                     f"replace it with the file from {_SOURCE}")
            extra = [k for k in data if k not in RETARGETING_PARTS]
            if extra:
                log.warning("%s: ignoring entries %s", file, extra)
            for entry, name in RETARGETING_PARTS.items():
                state = validate_state_dict(data[entry], nets[name], f"{file} [{entry}]")
                nets[name].load_state_dict(state, strict=True)
        else:
            data = _read(file, f"LivePortrait's {type(nets[group]).__name__}", _float32_bytes([nets[group]]))
            nets[group].load_state_dict(validate_state_dict(data, nets[group], str(file)), strict=True)
        log.info("loaded %s", file)
    for net in nets.values():
        net.eval().requires_grad_(False).to(dev)
    return LivePortraitModels(**nets, folder=path, device=dev)

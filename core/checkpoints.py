"""The learned models' checkpoint files, read by inference and written by training.

A checkpoint describes itself (as nanoGPT's do): ``{"model": state_dict, "config": {...},
"step": int, "meta": {...}}``, rebuilt as ``Model(Config(**config))``.

Loading treats the file as untrusted: its size is bounded; it must be a zip-format torch file
whose members do not expand beyond their stored size (torch writes them uncompressed); it is
read with ``torch.load(weights_only=True)``, so no code runs from it; the config is checked
against the config class's fields and types; the model is first built on torch's ``meta``
device (shapes, no memory), bounded in size, and compared name by name and shape by shape with
the file's tensors, which must be finite; the metadata inference reads (frame rate, feature
statistics, stored text embeddings) is checked against the config. Only then is the model
built and filled.
"""

from __future__ import annotations

import dataclasses
import math
import zipfile
from pathlib import Path

import torch

from .errors import ModelFileError

MAX_CHECKPOINT_BYTES = 1 << 30
"""A checkpoint file is at most 1 GiB (emoflame's are 2–6 MB)."""

MAX_MODEL_VALUES = 250_000_000
"""Values in a model's parameters and buffers (1 GB of float32): a config asking for more is not
one of emoflame's models (theirs have 1–1.5 million)."""

MAX_EXPANSION = 1.05
"""Zip members' total uncompressed size over the file's size: torch stores members uncompressed."""

MAX_FPS = 1000.0

_FIX = "reinstall emoflame or retrain it (see its _CARD.md)"


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

    Args:
        path: the ``.pt`` file.
        model_cls: the ``torch.nn.Module`` class, built from its config.
        config_cls: its config dataclass.
        device: ``'cpu'`` or ``'cuda'``.

    Returns:
        ``(model in eval mode on device, checkpoint dict)``; the dict's tensors stay on the CPU.

    Raises:
        ModelFileError: the file is missing, over :data:`MAX_CHECKPOINT_BYTES`, damaged, not a
            zip-format torch checkpoint, holds anything but tensors and plain values (it may be
            malicious), has a config that does not fit ``config_cls`` or asks for a model over
            :data:`MAX_MODEL_VALUES`, tensors whose names or shapes are not the model's or that
            hold NaN or infinity, or metadata that disagrees with the config; the message names
            the file.
    """
    path = Path(path)
    model = model_cls.__name__
    if not path.is_file():
        raise ModelFileError(f"checkpoint missing: {path}; reinstall emoflame or retrain it (see its _CARD.md)")
    ckpt = read_checkpoint(path, model)
    config = _config(path, model, config_cls, ckpt["config"])
    _check_state(path, model, model_cls, config, ckpt["model"])
    check_meta(path, model, ckpt["meta"], config)
    try:
        net = model_cls(config)
        net.load_state_dict(ckpt["model"], strict=True)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise _damaged(path, model, one_line(exc)) from None
    return net.to(device).eval(), ckpt


def read_checkpoint(path: Path, model: str = "model") -> dict:
    """The checkpoint dict of ``path``, read with ``weights_only=True`` after the checks of
    :func:`check_weights_file`, with its layout checked: ``model`` a mapping of names to tensors,
    ``config`` and ``meta`` mappings with text keys.

    Raises:
        ModelFileError: see :func:`load_checkpoint`.
    """
    what, fix = f"a valid emoflame {model} checkpoint", _FIX
    check_weights_file(path, what, fix)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every way an untrusted file fails to parse is the same to the user
        raise weights_error(path, what, fix, exc) from None
    if not isinstance(ckpt, dict) or not {"model", "config"} <= set(ckpt):
        found = sorted(map(str, ckpt))[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise _damaged(path, model, f"expected a dict with 'model' and 'config', found {found}")
    ckpt.setdefault("meta", {})
    for key in ("model", "config", "meta"):
        value = ckpt[key]
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _damaged(path, model, f"its {key!r} is not a mapping of names")
    bad = next((k for k, v in ckpt["model"].items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise _damaged(path, model, f"weight {bad!r} is not a tensor")
    return ckpt


def check_weights_file(path: Path, what: str, fix: str, max_bytes: int = MAX_CHECKPOINT_BYTES) -> None:
    """Check a weights file's container before anything parses it: at most ``max_bytes``; a
    ``.safetensors`` file with a header that fits in it; anything else a zip-format torch file
    (torch ≥ 1.6 writes nothing else; the legacy format sizes its storages from the file's own
    claims) whose members do not expand beyond :data:`MAX_EXPANSION` of its size.

    Args:
        path: the file.
        what: what it should be, for the message ("an open_clip ViT-B-32 checkpoint").
        fix: what the user should do, for the message.
        max_bytes: largest size accepted.

    Raises:
        ModelFileError: ``{path} is not {what} ({why}); {fix}``.
    """
    def refuse(why):
        return ModelFileError(f"{path} is not {what} ({why}); {fix}")

    size = path.stat().st_size
    if size == 0:
        raise refuse("an empty file")
    if size > max_bytes:
        raise refuse(f"{size / 2**30:.1f} GiB, more than {max_bytes / 2**30:.0f} GiB")
    if path.suffix == ".safetensors":
        with open(path, "rb") as f:
            head = f.read(8)
        header = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < header <= min(size - 8, 100 << 20):
            raise refuse(f"a safetensors header of {header:,} bytes in a file of {size:,}")
        return
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise refuse(f"not a zip-format torch file: {one_line(exc)}") from None
    if expanded > MAX_EXPANSION * size + 4096:
        raise refuse(f"its members expand to {expanded:,} bytes from {size:,}: a zip bomb")


def weights_error(path: Path, what: str, fix: str, exc: BaseException) -> ModelFileError:
    """The ModelFileError for ``exc``, raised while parsing the weights file ``path``: a file
    refused by ``weights_only`` (it holds code or foreign objects) is named as possibly
    malicious, anything else as damaged."""
    text = str(exc)
    if "weights_only" in text or "GLOBAL" in text or "Unsupported" in text:
        return ModelFileError(f"{path} holds code or objects other than tensors ({_unsafe_detail(exc)}), so it was "
                              f"not loaded: it may be malicious; {fix}")
    return ModelFileError(f"{path} is not {what} ({one_line(exc)}); {fix}")


def _damaged(path: Path, model: str, why: str) -> ModelFileError:
    return ModelFileError(f"{path} is not a valid emoflame {model} checkpoint ({why}); {_FIX}")


def _config(path: Path, model: str, config_cls, values: dict):
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise _damaged(path, model, f"unknown config entries {unknown[:5]}")
    for name, value in values.items():
        default = fields[name].default
        if default is dataclasses.MISSING:
            continue
        kind = type(default)
        fits = (isinstance(value, bool) if kind is bool else
                isinstance(value, int) and not isinstance(value, bool) and value >= 0 if kind is int else
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) if kind is float else
                isinstance(value, kind))
        if not fits:
            raise _damaged(path, model, f"config {name} = {value!r:.40}, expected "
                           f"{'a whole number >= 0' if kind is int else kind.__name__}")
    try:
        return config_cls(**values)
    except (TypeError, ValueError) as exc:
        raise _damaged(path, model, f"its config: {one_line(exc)}") from None


class ModelTooLarge(Exception):
    """A model that :func:`build_on_meta` stopped building; the message says why."""


def build_on_meta(build, held: int, max_values: int = MAX_MODEL_VALUES) -> torch.nn.Module:
    """``build()`` on torch's ``meta`` device (shapes, no memory), stopped as soon as it registers
    64 more parameters and buffers than the ``held`` tensors of its file, or more than
    ``max_values`` values in them, so a config asking for a billion layers costs nothing.

    Raises:
        ModelTooLarge: either bound was passed.
        Exception: whatever ``build`` raises.
    """
    built = {"tensors": 0, "values": 0}

    def count(module, name, tensor):
        if tensor is not None:
            built["tensors"] += 1
            built["values"] += tensor.numel()
            if built["tensors"] > held + 64:
                raise ModelTooLarge(f"its config builds more than the {held} weights the file holds")
            if built["values"] > max_values:
                raise ModelTooLarge(f"its config asks for more than {max_values:,} weights")

    hooks = (torch.nn.modules.module.register_module_parameter_registration_hook(count),
             torch.nn.modules.module.register_module_buffer_registration_hook(count))
    try:
        with torch.device("meta"):
            return build()
    finally:
        for hook in hooks:
            hook.remove()


def _check_state(path: Path, model: str, model_cls, config, state: dict) -> None:
    """The file's tensors against a model built on the meta device (:func:`build_on_meta`)."""
    try:
        skeleton = build_on_meta(lambda: model_cls(config), held=len(state))
    except ModelTooLarge as exc:
        raise _damaged(path, model, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a config the model's constructor refuses, in any way
        raise _damaged(path, model, f"its config builds no model: {one_line(exc)}") from None
    expected = skeleton.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        why = "; ".join(part for part in (f"missing weights {missing[:3]}" if missing else "",
                                          f"unexpected weights {unexpected[:3]}" if unexpected else "") if part)
        raise _damaged(path, model, why)
    for name, tensor in state.items():
        want = expected[name]
        if tuple(tensor.shape) != tuple(want.shape):
            raise _damaged(path, model, f"weight {name!r} has shape "
                           f"{tuple(tensor.shape)}, the config needs {tuple(want.shape)}")
        if want.dtype.is_floating_point != tensor.dtype.is_floating_point or tensor.is_complex():
            raise _damaged(path, model, f"weight {name!r} is {tensor.dtype}, "
                           f"expected {want.dtype}")
        if tensor.dtype.is_floating_point and not bool(torch.isfinite(tensor).all()):
            raise _damaged(path, model, f"weight {name!r} holds NaN or infinity")


def check_meta(path: Path, model: str, meta: dict, config) -> None:
    """What inference reads from ``meta``. A model that reads audio features (its config has
    ``feature_dim``) needs ``fps`` (a frame rate), ``front_end`` (its name) and
    ``feature_mean``/``feature_std`` (finite, positive deviations, ``feature_dim`` long); a model
    that reads text embeddings (``text_dim``) needs ``text_encoder`` (its name) and ``emotions``
    with one finite ``emotion_text_embeddings`` row of ``text_dim`` each. ``fps`` and
    ``front_end`` are checked wherever present.

    Raises:
        ModelFileError: a value missing, of the wrong type, length or range (the message names it).
    """
    def bad(why):
        return _damaged(path, model, f"meta {why}")

    width = getattr(config, "feature_dim", None)
    needed = (("fps", "front_end", "feature_mean", "feature_std") if width is not None else ()) + \
             (("text_encoder", "emotions", "emotion_text_embeddings") if hasattr(config, "text_dim") else ())
    missing = [key for key in needed if key not in meta]
    if missing:
        raise bad(f"lacks {', '.join(missing)}")
    if "fps" in meta:
        fps = meta["fps"]
        if not (isinstance(fps, (int, float)) and not isinstance(fps, bool) and 0 < fps <= MAX_FPS):
            raise bad(f"fps = {fps!r:.40}, expected a frame rate in (0, {MAX_FPS:g}]")
    if "front_end" in meta and not isinstance(meta["front_end"], str):
        raise bad(f"front_end = {meta['front_end']!r:.40}, expected its name")
    for key in ("feature_mean", "feature_std"):
        if key in meta:
            row = _numbers(meta[key])
            if row is None or (width is not None and len(row) != width):
                raise bad(f"{key} is not {width or 'a list of'} finite numbers")
            if key == "feature_std" and min(row, default=1.0) <= 0:
                raise bad("feature_std has values <= 0")
    if "text_encoder" in meta and not isinstance(meta["text_encoder"], str):
        raise bad(f"text_encoder = {meta['text_encoder']!r:.40}, expected its name")
    if "emotions" in meta or "emotion_text_embeddings" in meta:
        names, rows = meta.get("emotions"), meta.get("emotion_text_embeddings")
        width = getattr(config, "text_dim", None)
        if (not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not isinstance(rows, list)
                or len(rows) != len(names)
                or any((r := _numbers(row)) is None or (width is not None and len(r) != width) for row in rows)):
            raise bad(f"emotions and emotion_text_embeddings are not names with one row of {width} finite numbers each")


def _numbers(values) -> list[float] | None:
    if not isinstance(values, (list, tuple)) or len(values) > 1_000_000:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


def _unsafe_detail(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line), lines[-1] if lines else "")
    return detail.rstrip(".")[:160]


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line: its first line, with the next one when the first only
    introduces it ("Error(s) in loading state_dict for CLIP:")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return text[:200] + ("…" if len(text) > 200 else "")


def model_fps(ckpt: dict) -> float:
    """The frame rate (Hz) a checkpoint's model was trained at: its ``meta["fps"]``.

    Raises:
        ModelFileError: the checkpoint does not record a positive frame rate.
    """
    fps = ckpt.get("meta", {}).get("fps")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not 0 < fps <= MAX_FPS:
        raise ModelFileError(f"the checkpoint records no frame rate (meta fps = {fps!r}); retrain or reinstall it")
    return float(fps)

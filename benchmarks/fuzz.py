"""Hostile and malformed input through every front door of emoflame (issue 13), with the counts per
outcome: the promise is "bad input gets one line on stderr and exit code 2, nothing is left
behind, no existing file changes, no code runs from any file".

Each case runs in a fresh interpreter, in a fresh folder (its working directory, with HOME and
TMPDIR inside it) holding the real recording ``take.wav`` (CMU ARCTIC a0007, from
../shared/data) and pre-existing files that must stay byte-identical, under a wall-clock timeout
and an address-space cap (``resource.setrlimit(RLIMIT_AS)`` in a preexec_fn). The front doors:
``python -m emoflame.cli animate …`` (with ``-q``), the Python API (a ``python -c`` script that
exits 2 with the message of an EmoflameError), the add-on's worker process (``core/worker.py
REQUEST.json CLIP.npz``), and SIGINT/SIGTERM sent to a running command.

Outcomes (one per case): ``ok`` (exit 0 where success is right), ``clean error`` (exit 2, one
line on stderr, no traceback), ``accepted bad input`` (exit 0 where an error is right),
``refused good input``, ``error, not one line`` (exit 2 with more or less than one line),
``traceback``, ``crash`` (a signal or the memory cap killed it), ``hang/timeout``, ``wrong exit
on interrupt``. Flags on top: ``files left behind``, ``pre-existing file changed``, ``code
executed`` (a payload's marker file appeared).

    python benchmarks/fuzz.py                     # the whole catalogue (about an hour on 2 cores)
    python benchmarks/fuzz.py --only audio fps    # categories
    python benchmarks/fuzz.py --cases cli.fps.nan --verbose
    python benchmarks/fuzz.py --list
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pickle
import resource
import shlex
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EMOFLAME_SHARED_DATA", REPO.parent / "shared" / "data"))
SPEECH = DATA / "speech" / "arctic_a0007.wav"
MEMORY_CAP = 10 << 30
"""Bytes of address space per case: a normal run (torch, bpy, Whisper) needs about 7 GiB here."""
TIMEOUT = 240.0
MARKER = "PWNED"
"""What every code-running payload creates in its working directory."""
PRE_EXISTING = {"existing.blend": 4096, "existing.npz": 2048, "existing.mp4": 8192, "existing.glb": 1024,
                "notes.txt": 64}
IGNORED = ("home/.config", "home/.cache", "home/.local", "tmp/numba", "tmp/torchinductor", "tmp/matplotlib")
"""Folders a run may fill with caches (not outputs): not counted as files left behind."""
THIRD_PARTY = {"tmp/.ses": "onnxruntime's telemetry session file (onnxruntime 1.32, imported by faster-whisper's VAD)"}
"""Files a dependency leaves in TMPDIR on every run: reported apart from emoflame's leftovers."""

OWNERS = {
    "audio": "core/audio/load.py (helper: audio front door)",
    "emotion": "core/pipeline.py, core/emotion (lead)",
    "intensity": "core/pipeline.py, core/intensity (lead)",
    "transcript": "core/pipeline.py, core/audio/transcript.py (lead)",
    "fps": "cli.py (CLI helper) / core/pipeline.py (lead)",
    "seed": "cli.py (CLI helper) / core/validate.py (lead)",
    "outputs": "cli.py, core/outputs.py (CLI helper)",
    "model": "core/flame/loading.py (done) and the CLI's order of work (CLI helper / lead)",
    "weights": "core/checkpoints.py, core/emotion/text.py, core/audio/hubert.py (helper)",
    "clip": "core/clip.py (lead)",
    "avatar": "core/flame/avatar.py (avatar helper)",
    "worker": "core/worker.py (helper)",
    "interrupt": "cli.py, core/outputs.py (CLI helper)",
}


@dataclass
class Case:
    """One hostile input.

    Attributes:
        name: ``door.category.what``.
        category: a key of :data:`OWNERS`.
        kind: ``cli`` (argv after ``emoflame``), ``python`` (code run with the API; an
            EmoflameError exits 2), ``worker`` (argv of core/worker.py) or ``signal`` (a cli
            argv and ``(signal, seconds)`` to send it).
        argv: the command's arguments (``cli``, ``worker``, ``signal``).
        code: the Python code (``python``); ``AUDIO`` is ``take.wav``.
        setup: writes the case's inputs into its folder.
        expect: ``error``, ``ok`` or ``either``.
        may_change: pre-existing files the case may replace when it succeeds (``--force``).
        env: extra environment variables.
        interrupt: ``(signal number, seconds after the start)``.
        timeout: seconds.
        should: what should happen, for the report.
    """

    name: str
    category: str
    kind: str
    argv: list[str] = field(default_factory=list)
    code: str = ""
    setup: Callable[[Path], None] | None = None
    expect: str = "error"
    may_change: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    interrupt: tuple[int, float] | None = None
    timeout: float = TIMEOUT
    should: str = "exit 2 with one line naming the problem and the fix; nothing left behind"


# --- inputs ------------------------------------------------------------------------------------


def _speech() -> tuple[np.ndarray, int]:
    return soundfile.read(SPEECH, dtype="float32")


def _wav(name: str, transform=None, rate: int | None = None, subtype: str = "PCM_16", fmt: str | None = None):
    """setup: the real speech (transformed) written as ``name``."""
    def write(folder: Path):
        x, sr = _speech()
        x = transform(x) if transform else x
        soundfile.write(folder / name, x, rate or sr, subtype=subtype, format=fmt)
    return write


def _bytes(name: str, data: bytes | Callable[[], bytes]):
    def write(folder: Path):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data() if callable(data) else data)
    return write


def _text(name: str, text: str, encoding: str = "utf-8"):
    return _bytes(name, lambda: text.encode(encoding))


def _steps(*setups):
    def run(folder: Path):
        for setup in setups:
            setup(folder)
    return run


def _with_sample(value, at: float = 1.25):
    def change(x):
        x = x.astype(np.float64 if isinstance(value, float) and abs(value) > 1e38 else np.float32).copy()
        x[int(at * 16000)] = value
        return x
    return change


def _flac_header(name: str, rate=None, channels=None, frames=None):
    """The real speech as FLAC with its STREAMINFO rate, channels or total frames rewritten."""
    def write(folder: Path):
        x, sr = _speech()
        buffer = io.BytesIO()
        soundfile.write(buffer, x, sr, format="FLAC")
        data = bytearray(buffer.getvalue())
        at = 18
        value = int.from_bytes(data[at:at + 8], "big")
        old = (value >> 44, ((value >> 41) & 7) + 1, (value >> 36) & 31, value & (2**36 - 1))
        value = ((rate if rate is not None else old[0]) << 44) | (((channels or old[1]) - 1) << 41) | (old[2] << 36) \
            | (frames if frames is not None else old[3])
        data[at:at + 8] = value.to_bytes(8, "big")
        (folder / name).write_bytes(bytes(data))
    return write


def _wav_field(name: str, offset: int, fmt: str, value):
    """The real speech as a 16-bit WAV with one header field overwritten."""
    def write(folder: Path):
        x, sr = _speech()
        buffer = io.BytesIO()
        soundfile.write(buffer, x, sr, format="WAV", subtype="PCM_16")
        data = bytearray(buffer.getvalue())
        data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
        (folder / name).write_bytes(bytes(data))
    return write


def _long_header_wav(folder: Path):
    with soundfile.SoundFile(folder / "long.wav", "w", samplerate=8000, channels=1, subtype="PCM_U8", format="WAV") as f:
        f.write(np.zeros(8000 * 3601, np.float32))


def _random(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _csv(name: str, rows: list[str]):
    return _text(name, "\n".join(rows) + "\n")


# FLAME model files: the catalogue of tests/test_hostile_model_files.py, written as files.

def _flame_catalogue() -> dict[str, Callable[[Path], None]]:
    sys.path.insert(0, str(REPO / "tests"))
    import test_hostile_model_files as hostile  # noqa: E402 - the test suite's catalogue
    from flame_fixtures import tiny_flame_arrays, write_numpy_pickle

    class Call:
        def __init__(self, function, args):
            self.function, self.args = function, args

        def __reduce__(self):
            return self.function, self.args

    touch = f"open({MARKER!r}, 'w').close()"
    files: dict[str, Callable[[Path], None]] = {
        "code_os_system": _bytes("model.pkl", lambda: pickle.dumps({"v_template": Call(os.system, (f"touch {MARKER}",))}, 2)),
        "code_eval": _bytes("model.pkl", lambda: pickle.dumps(Call(eval, (touch,)), 2)),
        "code_exec_protocol4": _bytes("model.pkl", lambda: pickle.dumps(Call(exec, (touch,)), 4)),
        "code_protocol0_inst": _bytes("model.pkl", f"(S'touch {MARKER}'\nios\nsystem\n.".encode()),
        "code_numpy_testing_runstring": _bytes("model.pkl", b"\x80\x02cnumpy.testing\nrunstring\n"
                                               + b"X" + struct.pack("<I", len(touch)) + touch.encode() + b"}\x86R."),
        "forged_object_dtype": _bytes("model.pkl", hostile._rebuilt_dtype_pickle),
        "nested_200000": _bytes("model.pkl", b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b"."),
        "empty_file": _bytes("model.pkl", b""),
        "text_file": _text("model.pkl", "not a model\n"),
        "random_bytes": _bytes("model.pkl", lambda: _random(4096)),
        "tiny_model_itself": lambda folder: write_numpy_pickle(tiny_flame_arrays(), folder / "model.pkl"),
        "sparse_1_GiB": lambda folder: open(folder / "model.pkl", "wb").truncate((1 << 30) + (1 << 20)),
    }
    for name, (content, _) in hostile._BOMBS.items():
        files[f"bomb_{name}"] = _bytes("model.pkl", (lambda c=content: c if isinstance(c, bytes) else pickle.dumps(c(), 2)))
    for name, (change, _) in hostile._MALFORMED.items():
        def write(folder: Path, change=change):
            arrays = tiny_flame_arrays()
            change(arrays)
            write_numpy_pickle(arrays, folder / "model.pkl")
        files[f"malformed_{name}"] = write
    return files


def _torch_file(name: str, make: Callable[[], object], raw: bool = False):
    def write(folder: Path):
        import torch

        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if raw:
            path.write_bytes(make())
        else:
            torch.save(make(), path)
    return write


class _Evil:
    def __reduce__(self):
        return os.system, (f"touch {MARKER}",)


def _checkpoint(change: Callable[[dict], None] | None = None, source: str = "intensity_predictor.pt"):
    def make():
        import torch

        ckpt = torch.load(REPO / "flame_assets" / source, weights_only=True)
        if change:
            change(ckpt)
        return ckpt
    return make


def _zip_bomb_checkpoint() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(REPO / "flame_assets" / "intensity_predictor.pt") as source, \
            zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for member in source.infolist():
            data = source.read(member.filename)
            out.writestr(member.filename, data + (b"\0" * 300_000_000 if member.filename.endswith("/data/0") else b""))
    return buffer.getvalue()


def _learned_folder(kind: str, change=None, raw=None):
    """A copy of the shipped learned checkpoints with ``kind`` replaced."""
    def write(folder: Path):
        import shutil

        target = folder / "assets"
        target.mkdir(exist_ok=True)
        for name in ("emotion_adapter.pt", "expression_transformer.pt", "intensity_predictor.pt"):
            shutil.copy(REPO / "flame_assets" / name, target / name)
        _torch_file(f"assets/{kind}", raw if raw else _checkpoint(change, kind), raw=raw is not None)(folder)
    return write


def _hubert(folder_change: Callable[[Path], None]):
    """A tiny HuBERT of base width (768) with random weights, saved, then damaged by ``folder_change``."""
    def write(folder: Path):
        import torch
        from transformers import HubertConfig, HubertModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        config = HubertConfig(hidden_size=768, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                              conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=16)
        torch.manual_seed(0)
        HubertModel(config).save_pretrained(folder / "hubert")
        folder_change(folder / "hubert")
    return write


def _safetensors(path: Path, tensors: dict):
    from safetensors.torch import save_file

    save_file(tensors, path)


def _hubert_state(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path / "model.safetensors")


def _clip_npz(change: Callable[[dict], None] | None = None, raw: bytes | Callable[[], bytes] | None = None,
              cut: float | None = None):
    """setup: ``clip.npz``: a clip written by emoflame (AnimationClip.save) with its members
    changed, cut to a fraction of its bytes, or ``raw`` bytes instead."""
    def write(folder: Path):
        path = folder / "clip.npz"
        if raw is not None:
            path.write_bytes(raw() if callable(raw) else raw)
            return
        with zipfile.ZipFile(_reference_clip()) as archive:
            members = {m: archive.read(m) for m in archive.namelist()}
        if change:
            change(members)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for name, data in members.items():
                out.writestr(name, data)
        if cut is not None:
            data = path.read_bytes()
            path.write_bytes(data[: int(len(data) * cut)])
    return write


_CLIP_CACHE: dict[str, Path] = {}


def _reference_clip() -> Path:
    """A clip of take.wav written once per fuzz run by emoflame itself (AnimationClip.save)."""
    if "clip" not in _CLIP_CACHE:
        folder = Path(tempfile.mkdtemp(prefix="emoflame-fuzz-clip-"))
        path = folder / "clip.npz"
        code = ("import numpy as np; from emoflame.core.clip import AnimationClip; "
                "from emoflame.core.channels import ARKIT_CHANNELS; n = 100; "
                "AnimationClip(fps=25.0, intensity=np.zeros(n, np.float32), emotion_latent=np.zeros((n, 0), np.float32), "
                "weights=np.full((n, 52), 0.1, np.float32), channels=ARKIT_CHANNELS, emotion='happy', "
                f"audio_path='take.wav', audio_offset=0.0).save({str(path)!r})")
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        _CLIP_CACHE["clip"] = path
    return _CLIP_CACHE["clip"]


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npy_header_claiming(shape: tuple) -> bytes:
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64


def _zip_bomb_npz() -> bytes:
    """A 2.5 MB .npz whose weights.npy inflates to 2.5 GB (zeros), with a header that claims them."""
    buffer = io.BytesIO()
    rows = 2_500_000_000 // (52 * 4)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        with zipfile.ZipFile(_reference_clip()) as archive:
            for name in archive.namelist():
                if name != "weights.npy":
                    out.writestr(name, archive.read(name))
        with out.open("weights.npy", "w", force_zip64=True) as member:
            member.write(_npy_header_claiming((rows, 52))[:-64])
            block = b"\0" * (1 << 20)
            for _ in range(rows * 52 * 4 >> 20):
                member.write(block)
    return buffer.getvalue()


# --- the catalogue -----------------------------------------------------------------------------


def _cli(*args: str, out: tuple[str, ...] = ("-o", "out.blend"), audio: str | None = "take.wav") -> list[str]:
    return ["animate", *([audio] if audio is not None else []), "-q", *out, *args]


def catalogue() -> list[Case]:
    """Every case, in a fixed order."""
    cases: list[Case] = []

    def add(name, category, kind="cli", **kwargs):
        cases.append(Case(name=f"{kind}.{category}.{name}", category=category, kind=kind, **kwargs))

    # audio
    audio = {
        "nan_sample": _wav("bad.wav", _with_sample(np.nan), subtype="FLOAT"),
        "inf_sample": _wav("bad.wav", _with_sample(np.inf), subtype="FLOAT"),
        "minus_inf_sample": _wav("bad.wav", _with_sample(-np.inf), subtype="FLOAT"),
        "all_nan": _wav("bad.wav", lambda x: np.full_like(x, np.nan), subtype="FLOAT"),
        "float64_1e300": _wav("bad.wav", _with_sample(1e300), subtype="DOUBLE"),
        "int16_values_as_float": _wav("bad.wav", lambda x: x * 32767, subtype="FLOAT"),
        "headerless_raw": lambda f: (f / "bad.raw").write_bytes((_speech()[0] * 32767).astype("<i2").tobytes()),
        "headerless_pcm": lambda f: (f / "bad.pcm").write_bytes((_speech()[0] * 32767).astype("<i2").tobytes()),
        "headerless_named_wav": lambda f: (f / "bad.wav").write_bytes((_speech()[0] * 32767).astype("<i2").tobytes()),
        "flac_claims_2_3e9_frames_8_channels": _flac_header("bad.flac", channels=8, frames=2_300_000_000),
        "flac_claims_3510_s_at_655_kHz": _flac_header("bad.flac", rate=655_350, channels=8, frames=2_300_000_000),
        "flac_unknown_length": _flac_header("bad.flac", frames=0),
        "flac_rate_zero": _flac_header("bad.flac", rate=0),
        "wav_2_Hz": _wav("bad.wav", lambda x: x[:7000], rate=2),
        "wav_1_Hz": _wav("bad.wav", lambda x: x[:3000], rate=1),
        "wav_3999_Hz": _wav("bad.wav", rate=3999),
        "wav_header_4e9_Hz": _wav_field("bad.wav", 24, "<I", 4_000_000_000),
        "wav_header_0_Hz": _wav_field("bad.wav", 24, "<I", 0),
        "wav_header_1000_channels": _wav_field("bad.wav", 22, "<H", 1000),
        "wav_header_data_size_4_GiB": _wav_field("bad.wav", 40, "<I", 0xFFFFFFF0),
        "empty_file": _bytes("bad.wav", b""),
        "text_named_wav": _text("bad.wav", "this is not audio\n"),
        "wav_header_only": lambda f: (f / "bad.wav").write_bytes((f / "take.wav").read_bytes()[:44]),
        "wav_truncated_mid_sample": lambda f: (f / "bad.wav").write_bytes((f / "take.wav").read_bytes()[:60_001]),
        "random_bytes_wav": _bytes("bad.wav", lambda: _random(100_000)),
        "random_bytes_mp3": _bytes("bad.mp3", lambda: _random(100_000, 1)),
        "random_bytes_ogg": _bytes("bad.ogg", lambda: b"OggS" + _random(100_000, 2)),
        "random_bytes_flac": _bytes("bad.flac", lambda: b"fLaC" + _random(100_000, 3)),
        "digital_silence": _wav("bad.wav", lambda x: np.zeros_like(x)),
        "50_ms": _wav("bad.wav", lambda x: x[:800]),
        "a_folder": lambda f: (f / "bad.wav").mkdir(),
        "missing": None,
        "symlink_loop": lambda f: (os.symlink("loop_b.wav", f / "bad.wav"), os.symlink("bad.wav", f / "loop_b.wav")),
        "dangling_symlink": lambda f: os.symlink("nowhere.wav", f / "bad.wav"),
        "over_an_hour_header": _long_header_wav,
        "blend_file_as_audio": lambda f: (f / "bad.wav").write_bytes(b"BLENDER-v500" + _random(5000)),
        "npz_as_audio": _bytes("bad.wav", lambda: _npy(np.zeros(10))),
        "ogg_cut_in_half": lambda f: (_wav("full.ogg", fmt="OGG", subtype="VORBIS")(f),
                                      (f / "bad.ogg").write_bytes((f / "full.ogg").read_bytes()[:20_000])),
        "sparse_4_GiB_wav": lambda f: open(f / "bad.wav", "wb").truncate(4 << 30),
    }
    special = {"missing": "nothing.wav", "headerless_raw": "bad.raw", "headerless_pcm": "bad.pcm",
               "over_an_hour_header": "long.wav", "ogg_cut_in_half": "bad.ogg"}
    for name, setup in audio.items():
        ext = next((e for e in (".flac", ".mp3", ".ogg") if e[1:] in name), ".wav")
        path = special.get(name, f"bad{ext}")
        expect = "either" if name in ("wav_truncated_mid_sample", "wav_header_data_size_4_GiB", "ogg_cut_in_half") else "error"
        add(name, "audio", argv=_cli(audio=path), setup=setup, expect=expect,
            should="exit 2, one line naming the problem and the fix, before any slow work; nothing left behind")
    good_audio = {
        "stereo_48_kHz": _wav("good.wav", lambda x: np.stack([x, 0.5 * x], 1), rate=48000),
        "mp3": _wav("good.mp3", fmt="MP3", subtype="MPEG_LAYER_III"),
        "ogg": _wav("good.ogg", fmt="OGG", subtype="VORBIS"),
        "eight_channels": _wav("good.wav", lambda x: np.tile(x[:, None], (1, 8))),
        "4_kHz": _wav("good.wav", rate=4000),
        "float_peaks_at_4": _wav("good.wav", lambda x: 4 * x / np.abs(x).max(), subtype="FLOAT"),
        "unsigned_8_bit": _wav("good.wav", subtype="PCM_U8"),
        "aiff": _wav("good.aiff", fmt="AIFF"),
        "unicode_name": _wav("тейк 😀.wav"),
        "white_noise": _wav("good.wav", lambda x: np.random.default_rng(0).normal(0, 0.1, len(x)).astype(np.float32)),
        "dc_offset_only": _wav("good.wav", lambda x: np.full_like(x, 0.5)),
    }
    for name, setup in good_audio.items():
        path = {"mp3": "good.mp3", "ogg": "good.ogg", "aiff": "good.aiff", "unicode_name": "тейк 😀.wav"}.get(name, "good.wav")
        add(name, "audio", argv=_cli("--transcript", "none", audio=path), setup=setup,
            expect="either" if name in ("white_noise", "dc_offset_only") else "ok",
            should="exit 0 with out.blend" if name not in ("white_noise", "dc_offset_only") else
            "either works or exits 2 with one line")

    # emotion
    long_text = ("quietly furious but trying hard to stay polite in front of the whole team " * 140)[:10_000]
    emotions = {
        "empty": ("", "phonetic", "error"), "spaces": ("   ", "phonetic", "error"),
        "unknown_word": ("bogus", "phonetic", "error"), "emoji_phonetic": ("😀", "phonetic", "error"),
        "emoji_learned": ("😀", "learned", "either"), "10000_chars_learned": (long_text, "learned", "ok"),
        "10000_chars_phonetic": (long_text, "phonetic", "error"), "trailing_newline": ("happy\n", "phonetic", "either"),
        "ansi_escape": ("\x1b[31mhappy", "phonetic", "error"), "bell_and_backspace": ("ha\x07\x08ppy", "phonetic", "error"),
        "cyrillic_learned": ("счастливый", "learned", "either"), "number": ("3", "phonetic", "error"),
        "track_ok": ("neutral@0,angry@2", "phonetic", "ok"), "track_negative_time": ("angry@-1", "phonetic", "error"),
        "track_nan_time": ("happy@0,angry@nan", "phonetic", "error"),
        "track_inf_time": ("happy@0,angry@1e309", "phonetic", "error"),
        "track_beyond_audio": ("happy@0,angry@100", "phonetic", "error"),
        "track_same_time_twice": ("happy@0,sad@0", "phonetic", "either"),
        "track_unknown_emotion": ("happy@0,bogus@1", "phonetic", "error"),
        "track_1000_entries": (",".join(f"{'happy' if i % 2 else 'sad'}@{i * 0.004:.3f}" for i in range(1000)), "phonetic", "either"),
        "lone_at_sign": ("@", "phonetic", "error"),
    }
    for name, (emotion, engine, expect) in emotions.items():
        add(name, "emotion", argv=_cli("--emotion", emotion, "--engine", engine, "--transcript", "none"), expect=expect)
    add("track_csv_binary", "emotion", argv=_cli("--emotion", "track.csv"), setup=_bytes("track.csv", lambda: _random(3000)))
    add("track_csv_nul_bytes", "emotion", argv=_cli("--emotion", "track.csv"), setup=_bytes("track.csv", b"time,emotion\n0,hap\0py\n"))
    add("track_csv_header_only", "emotion", argv=_cli("--emotion", "track.csv"), setup=_csv("track.csv", ["time,emotion"]))
    add("track_csv_100000_rows", "emotion", argv=_cli("--emotion", "track.csv", "--transcript", "none"),
        setup=_csv("track.csv", ["time,emotion"] + [f"{i * 4e-5:.6f},{'happy' if i % 2 else 'sad'}" for i in range(100_000)]),
        expect="either")
    add("track_csv_utf16", "emotion", argv=_cli("--emotion", "track.csv"),
        setup=_text("track.csv", "time,emotion\n0,happy\n1,sad\n", "utf-16"), expect="either")
    api_emotions = {"none": "None", "number": "123", "list_without_times": "['happy']", "dict": "{'happy': 1}",
                    "nul_character": "'hap\\x00py'", "bytes": "b'happy'", "nested_list": "[[['happy', 0]]]",
                    "pair_with_nan_time": "[('happy', 0.0), ('sad', float('nan'))]"}
    for name, value in api_emotions.items():
        add(name, "emotion", kind="python", code=f"emoflame.animate(AUDIO, emotion={value}, transcript='none', progress=False)")

    # intensity
    intensities = {"nan": "nan", "inf": "inf", "minus_inf": "-inf", "minus_1": "-1", "2": "2", "empty": "",
                   "abc": "abc", "missing_csv": "curve.csv", "1e-300": "1e-300", "half_with_spaces": " 0.5 "}
    for name, value in intensities.items():
        expect = "ok" if name in ("1e-300", "half_with_spaces") else "error"
        add(name, "intensity", argv=_cli("--intensity", value, "--transcript", "none"), expect=expect)
    curves = {
        "csv_empty": [""], "csv_header_only": ["time,intensity"], "csv_nan": ["time,intensity", "0,0.5", "1,nan"],
        "csv_one_row": ["time,intensity", "0,0.5"], "csv_decreasing_times": ["time,intensity", "2,0.5", "1,0.2"],
        "csv_negative_time": ["time,intensity", "-1,0.5", "1,0.2"], "csv_time_1e300": ["time,intensity", "0,0.5", "1e300,0.2"],
        "csv_frame_0": ["frame,intensity", "0,0.5", "10,0.2"], "csv_value_2": ["time,intensity", "0,2.0"],
        "csv_three_columns": ["time,intensity,extra", "0,0.5,1"], "csv_no_header": ["0,0.5", "1,0.2"],
        "csv_text_values": ["time,intensity", "zero,half"],
    }
    for name, rows in curves.items():
        add(name, "intensity", argv=_cli("--intensity", "curve.csv", "--transcript", "none"), setup=_csv("curve.csv", rows),
            expect="either" if name == "csv_one_row" else "error")
    add("csv_binary", "intensity", argv=_cli("--intensity", "curve.csv"), setup=_bytes("curve.csv", lambda: _random(2000)))
    add("csv_nul_bytes", "intensity", argv=_cli("--intensity", "curve.csv"), setup=_bytes("curve.csv", b"time,intensity\n0,0\0.5\n"))
    add("csv_a_folder", "intensity", argv=_cli("--intensity", "curve.csv"), setup=lambda f: (f / "curve.csv").mkdir())
    add("csv_1000000_rows", "intensity", argv=_cli("--intensity", "curve.csv", "--transcript", "none"),
        setup=_csv("curve.csv", ["time,intensity"] + [f"{i * 4e-6:.7f},0.5" for i in range(1_000_000)]), expect="either")
    api_intensities = {"wrong_length": "np.zeros(7)", "nan_in_array": "np.full(100, np.nan)", "two_d": "np.zeros((100, 2))",
                       "none": "None", "true": "True", "complex": "1 + 1j", "list_of_text": "['a'] * 100",
                       "object_array": "np.array([object()] * 100)"}
    for name, value in api_intensities.items():
        add(name, "intensity", kind="python", code=f"emoflame.animate(AUDIO, intensity={value}, transcript='none', progress=False)")

    # transcript
    transcripts = {"empty": ("", "error"), "spaces": ("   ", "error"), "punctuation_only": ("!!! ???", "error"),
                   "mismatch": ("hello world", "either"), "cyrillic": ("привет мир", "either"),
                   "20000_chars_inline": ("and you always want to see it " * 667, "either"), "none": ("none", "ok"),
                   "auto": ("auto", "ok")}
    for name, (text, expect) in transcripts.items():
        add(name, "transcript", argv=_cli("--transcript", text), expect=expect)
    add("word_with_q_not_before_u", "transcript", argv=_cli("--transcript", "and you always want to see it in iraq"),
        timeout=120.0, should="exit 2 (the words do not match) or exit 0, in bounded time: a word with a q not followed "
                              "by u and not in CMUdict sends transcript.guess_pronunciation into an endless loop",
        expect="either")
    add("file_1_MB", "transcript", argv=_cli("--transcript", "words.txt"),
        setup=_text("words.txt", "and you always want to see it in the superlative degree " * 18_000), expect="either")
    add("file_binary", "transcript", argv=_cli("--transcript", "words.txt"), setup=_bytes("words.txt", lambda: _random(5000)))
    add("file_nul_bytes", "transcript", argv=_cli("--transcript", "words.txt"), setup=_bytes("words.txt", b"and you\0 always"))
    add("file_a_folder", "transcript", argv=_cli("--transcript", "words.txt"), setup=lambda f: (f / "words.txt").mkdir(),
        expect="either")
    add("learned_engine_mismatch", "transcript", argv=_cli("--transcript", "hello", "--engine", "learned"), expect="either",
        should="exit 0 (the learned engine reads only the audio) or exit 2 naming the mismatch")
    for name, value in {"bytes": "b'and you always'", "number": "123", "list": "['and', 'you']"}.items():
        add(name, "transcript", kind="python", code=f"emoflame.animate(AUDIO, transcript={value}, progress=False)")

    # fps
    for name, value in {"0": "0", "minus_1": "-1", "nan": "nan", "inf": "inf", "1e-300": "1e-300", "1e300": "1e300",
                        "abc": "abc", "0_5": "0.5", "241": "241", "empty": "", "1e3": "1e3"}.items():
        add(name, "fps", argv=_cli("--fps", value))
    for name, value in {"240": "240", "23_976": "23.976", "1": "1"}.items():
        add(name, "fps", argv=_cli("--fps", value, "--transcript", "none"), expect="ok")
    for name, value in {"nan": "float('nan')", "text": "'30'", "none": "None", "true": "True", "1e-300": "1e-300",
                        "complex": "30j", "numpy_nan": "np.float32('nan')"}.items():
        add(name, "fps", kind="python", code=f"emoflame.animate(AUDIO, fps={value}, transcript='none', progress=False)")

    # seed
    for name, value in {"minus_1": "-1", "2_64": str(2**64), "1e30": "1e30", "x": "x", "1_5": "1.5", "2_32": str(2**32),
                        "empty": ""}.items():
        add(name, "seed", argv=_cli("--seed", value))
    add("2_32_minus_1", "seed", argv=_cli("--seed", str(2**32 - 1), "--transcript", "none"), expect="ok")
    for name, value in {"none": "None", "true": "True", "minus_1": "-1", "text": "'x'", "2_64": str(2**64),
                        "nan": "float('nan')"}.items():
        add(name, "seed", kind="python", code=f"emoflame.animate(AUDIO, seed={value}, transcript='none', progress=False)")
    for name, value in {"whole_float": "3.0", "numpy_int": "np.int64(5)"}.items():
        add(name, "seed", kind="python", code=f"emoflame.animate(AUDIO, seed={value}, transcript='none', progress=False)",
            expect="ok")

    # outputs
    outputs = {
        "existing_without_force": (("-o", "existing.blend"), (), "error", ()),
        "existing_with_force": (("-o", "existing.blend"), ("--force", "--transcript", "none"), "ok", ("existing.blend",)),
        "a_folder": (("-o", "folder"), (), "error", ()),
        "missing_folder": (("-o", "new/dir/out.blend"), ("--transcript", "none"), "either", ()),
        "same_as_input": (("-o", "take.wav"), (), "error", ()),
        "same_as_input_force": (("-o", "take.wav"), ("--force",), "error", ()),
        "clip_same_as_input_force": (("-o", "out.blend", "--clip", "take.wav"), ("--force",), "error", ()),
        "render_same_as_input_force": (("-o", "out.blend", "--render", "take.wav"), ("--force",), "error", ()),
        "blend_same_as_clip": (("-o", "out.npz", "--clip", "out.npz"), (), "error", ()),
        "name_too_long": (("-o", "x" * 300 + ".blend"), (), "error", ()),
        "path_too_long": (("-o", "/".join(["d" * 200] * 25) + "/out.blend"), (), "error", ()),
        "tilde_home": (("-o", "~/x.blend"), ("--transcript", "none"), "ok", ()),
        "unknown_extension": (("-o", "out.txt"), (), "error", ()),
        "dev_null": (("-o", "/dev/null"), (), "error", ()),
        "full_disk_blend": (("-o", "/dev/full"), (), "error", ()),
        "full_disk_clip": (("-o", "out.blend", "--clip", "/dev/full"), (), "error", ()),
        "full_disk_render": (("-o", "out.blend", "--render", "/dev/full"), ("--resolution", "64"), "error", ()),
        "under_a_file": (("-o", "notes.txt/out.blend"), (), "error", ()),
        "empty_name": (("-o", ""), (), "error", ()),
        "existing_clip_without_force": (("-o", "out.blend", "--clip", "existing.npz"), (), "error", ()),
        "existing_render_without_force": (("-o", "out.blend", "--render", "existing.mp4"), (), "error", ()),
        "eevee_without_gpu": (("-o", "out.blend", "--render", "out.mp4"), ("--render-engine", "eevee", "--resolution", "64"),
                              "either", ()),
        "resolution_0": (("-o", "out.blend", "--render", "out.mp4"), ("--resolution", "0"), "error", ()),
        "resolution_minus_5": (("-o", "out.blend", "--render", "out.mp4"), ("--resolution", "-5"), "error", ()),
        "resolution_1e9": (("-o", "out.blend", "--render", "out.mp4"), ("--resolution", "1000000000"), "error", ()),
        "resolution_abc": (("-o", "out.blend", "--render", "out.mp4"), ("--resolution", "abc"), "error", ()),
        "newline_in_name": (("-o", "a\nb.blend"), ("--transcript", "none"), "either", ()),
    }
    for name, (out, extra, expect, may_change) in outputs.items():
        setup = (lambda f: (f / "folder").mkdir()) if name == "a_folder" else None
        add(name, "outputs", argv=_cli(*extra, out=out), setup=setup, expect=expect, may_change=may_change,
            timeout=400.0 if "render" in name or "eevee" in name else TIMEOUT,
            should={"same_as_input_force": "refuse to write over the recording it reads (exit 2), take.wav unchanged",
                    "eevee_without_gpu": "say EEVEE needs a GPU and stop (exit 2), or fall back with a message; "
                                         "bounded time, nothing left behind",
                    "tilde_home": "expand ~ to $HOME and write there (exit 0)",
                    "full_disk_render": "exit 2 naming the full disk, no 4 KB MP4 reported as written"}.get(
                name, "exit 2 with one line naming the problem and the fix; nothing left behind"))

    # model files
    for name, setup in _flame_catalogue().items():
        add(name, "model", argv=_cli("--flame-model", "model.pkl"), setup=setup,
            should="exit 2 naming the model file's problem before any audio work; no code runs; nothing left behind")
    add("missing", "model", argv=_cli("--flame-model", "nothing.pkl"))
    add("a_folder", "model", argv=_cli("--flame-model", "."))

    # optional weights and checkpoints
    free = ("--emotion", "quietly furious", "--engine", "learned", "--transcript", "none")
    clip_cases = {"code": _torch_file("clip.bin", lambda: {"state_dict": _Evil()}),
                  "junk": _bytes("clip.bin", lambda: _random(5000)), "empty": _bytes("clip.bin", b""),
                  "truncated_safetensors": _bytes("clip.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":"),
                  "zip_bomb": _bytes("clip.bin", _zip_bomb_checkpoint)}
    for name, setup in clip_cases.items():
        path = "clip.safetensors" if "safetensors" in name else "clip.bin"
        add(f"clip_{name}", "weights", argv=_cli(*free), setup=setup, env={"EMOFLAME_CLIP": path, "EMOFLAME_CLIP_ARCH": "ViT-B-32"},
            should="a one-line ModelFileError naming the CLIP file (a free-text emotion needs it when M was "
                   "trained on CLIP; with the shipped MiniLM adapter the setting is unused and the run succeeds)",
            expect="either")
    add("clip_arch_hf_hub", "weights", kind="python",
        code="from emoflame.core.emotion.text import ClipTextEncoder; ClipTextEncoder('take.wav', 'hf-hub:laion/x')")
    for name, setup in clip_cases.items():
        path = "clip.safetensors" if "safetensors" in name else "clip.bin"
        add(f"clip_encoder_{name}", "weights", kind="python", setup=setup,
            code=f"from emoflame.core.emotion.text import ClipTextEncoder; ClipTextEncoder({path!r})")
    for name, value in {"tpu": "tpu", "cuda_without_gpu": "cuda", "empty": " "}.items():
        add(f"device_{name}", "weights", argv=_cli("--engine", "learned"), env={"EMOFLAME_DEVICE": value},
            expect="either" if name == "empty" else "error")
    checkpoints = {
        "code": (lambda: {"model": {}, "config": {}, "x": _Evil()}),
        "list": (lambda: [1, 2, 3]),
        "config_1e9_layers": _checkpoint(lambda c: c["config"].update(wavenet_layers=10**9)),
        "config_1e7_hidden": _checkpoint(lambda c: c["config"].update(hidden=10**7)),
        "config_text_hidden": _checkpoint(lambda c: c["config"].update(hidden="64")),
        "nan_weights": _checkpoint(lambda c: next(iter(c["model"].values())).fill_(float("nan"))),
        "wrong_shape": _checkpoint(lambda c: c["model"].update({next(iter(c["model"])): __import__("torch").zeros(3)})),
        "meta_fps_nan": _checkpoint(lambda c: c["meta"].update(fps=float("nan"))),
        "meta_std_zero": _checkpoint(lambda c: c["meta"].update(feature_std=[0.0] * 83)),
        "meta_missing": _checkpoint(lambda c: c.update(meta={})),
        "legacy_format": None,
    }
    for name, make in checkpoints.items():
        setup = _learned_folder("intensity_predictor.pt", raw=lambda: _legacy_checkpoint()) if make is None else \
            _learned_folder("intensity_predictor.pt", raw=lambda m=make: _saved(m()))
        add(f"predictor_{name}", "weights", kind="python", setup=setup,
            code="from emoflame.core.intensity.learned import load_learned_intensity; load_learned_intensity('cpu', 'assets')")
    for kind in ("emotion_adapter.pt", "expression_transformer.pt"):
        for name, raw in {"code": lambda: _saved({"model": {}, "config": {}, "x": _Evil()}),
                          "junk": lambda: _random(3000), "empty": lambda: b"", "zip_bomb": _zip_bomb_checkpoint}.items():
            add(f"{kind.split('_')[0]}_{name}", "weights", kind="python", setup=_learned_folder(kind, raw=raw),
                code="from emoflame.core.expression.learned import LearnedEngine; LearnedEngine.load(folder='assets')")
    huberts = {
        "empty_safetensors": lambda d: (d / "model.safetensors").write_bytes(b""),
        "no_tensors": lambda d: _safetensors(d / "model.safetensors", {}),
        "half_the_tensors": lambda d: _safetensors(d / "model.safetensors", {
            k: v for i, (k, v) in enumerate(_hubert_state(d).items()) if i % 2}),
        "nan_weights": lambda d: _safetensors(d / "model.safetensors", {
            k: v * float("nan") if i == 3 else v for i, (k, v) in enumerate(_hubert_state(d).items())}),
        "config_not_json": lambda d: (d / "config.json").write_text("{not json"),
        "config_1e6_layers": lambda d: (d / "config.json").write_text(json.dumps(
            {**json.loads((d / "config.json").read_text()), "num_hidden_layers": 10**6})),
        "pickle_weights_only": lambda d: ((d / "model.safetensors").unlink(), (d / "pytorch_model.bin").write_bytes(
            _saved({"x": _Evil()}))),
    }
    for name, change in huberts.items():
        add(f"hubert_{name}", "weights", kind="python", setup=_hubert(change), timeout=TIMEOUT,
            code="from emoflame.core.audio.hubert import hubert_features; "
                 "hubert_features(np.zeros(16000, np.float32), 25.0, 'hubert')")

    # clip files
    clip_files = {
        "truncated": _clip_npz(cut=0.5), "empty": _clip_npz(raw=b""), "random_bytes": _clip_npz(raw=_random(4000)),
        "zip_bomb": _clip_npz(raw=_zip_bomb_npz),
        "header_a_list": _clip_npz(lambda m: m.update({"header.npy": _npy(np.array("[1, 2]"))})),
        "header_not_json": _clip_npz(lambda m: m.update({"header.npy": _npy(np.array("{not json"))})),
        "nan_weights": _clip_npz(lambda m: m.update({"weights.npy": _npy(np.full((100, 52), np.nan, np.float32))})),
        "object_array": _clip_npz(lambda m: m.update({"weights.npy": _npy(np.array([object()] * 5200).reshape(100, 52))})),
        "shape_claims_1e12": _clip_npz(lambda m: m.update({"weights.npy": _npy_header_claiming((10**12 // 52, 52))})),
        "members_missing": _clip_npz(lambda m: m.pop("weights.npy")),
    }
    for name, setup in clip_files.items():
        add(name, "clip", kind="python", setup=setup,
            code="from emoflame.core.clip import AnimationClip; AnimationClip.load('clip.npz')")
    add("a_folder", "clip", kind="python", setup=lambda f: (f / "clip.npz").mkdir(),
        code="from emoflame.core.clip import AnimationClip; AnimationClip.load('clip.npz')")
    for name, value in {"fps_nan": "float('nan')", "fps_0": "0.0", "fps_text": "'25'"}.items():
        add(f"constructed_{name}", "clip", kind="python",
            code="from emoflame.core.clip import AnimationClip; from emoflame.core.channels import ARKIT_CHANNELS; "
                 f"AnimationClip(fps={value}, intensity=np.zeros(10, np.float32), emotion_latent=np.zeros((10, 0), "
                 "np.float32), weights=np.zeros((10, 52), np.float32), channels=ARKIT_CHANNELS, emotion='happy', "
                 "audio_path='take.wav', audio_offset=0.0)")
    add("constructed_nan_weights", "clip", kind="python",
        code="from emoflame.core.clip import AnimationClip; from emoflame.core.channels import ARKIT_CHANNELS; "
             "AnimationClip(fps=25.0, intensity=np.zeros(10, np.float32), emotion_latent=np.zeros((10, 0), np.float32), "
             "weights=np.full((10, 52), np.nan, np.float32), channels=ARKIT_CHANNELS, emotion='happy', "
             "audio_path='take.wav', audio_offset=0.0)")

    # the default avatar's front door
    for name, value in {"nan": "float('nan')", "inf": "float('inf')", "text": "'x'", "unknown_name": None}.items():
        weights = "{'notAChannel': 0.5}" if value is None else f"{{'jawOpen': {value}}}"
        add(name, "avatar", kind="python", code=f"emoflame.default_avatar().vertices_for({weights})")

    # the add-on's worker process
    good = {"audio": "take.wav", "emotion": "happy", "transcript": "none"}
    requests = {
        "not_json": b"{not json", "a_list": b"[1, 2]", "unknown_keys": json.dumps({**good, "bogus": 1}).encode(),
        "settings_value_not_text": json.dumps({**good, "settings": {"device": 3}}).encode(),
        "settings_unknown_key": json.dumps({**good, "settings": {"gpu": "yes"}}).encode(),
        "fps_text": json.dumps({**good, "fps": "30"}).encode(), "fps_nan": b'{"audio": "take.wav", "fps": NaN}',
        "no_audio": json.dumps({"emotion": "happy"}).encode(), "emotion_a_dict": json.dumps({**good, "emotion": {"a": 1}}).encode(),
        "intensity_list_of_text": json.dumps({**good, "intensity": ["a", "b"]}).encode(),
        "seed_minus_1": json.dumps({**good, "seed": -1}).encode(), "not_utf8": b'{"audio": "\xff\xfe"}',
        "deeply_nested": b"[" * 100_000 + b"]" * 100_000, "empty_file": b"",
    }
    for name, data in requests.items():
        add(name, "worker", kind="worker", argv=["request.json", "clip.npz"], setup=_bytes("request.json", data),
            should="exit 2 with one EMOFLAME_ERROR {...} line on stderr, no clip.npz")
    add("missing_request", "worker", kind="worker", argv=["nothing.json", "clip.npz"])
    add("wrong_arguments", "worker", kind="worker", argv=["request.json"], setup=_bytes("request.json", json.dumps(good).encode()))

    # interruption
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        for delay in (1.5, 6.0, 12.0, 20.0):
            for force in (False, True):
                out = ("-o", "existing.blend", "--clip", "existing.npz") if force else ("-o", "out.blend", "--clip", "out.npz")
                add(f"{sig.name}_after_{delay:g}s{'_force' if force else ''}", "interrupt", kind="signal",
                    argv=_cli(*(("--force",) if force else ()), out=out), interrupt=(sig, delay), expect="either",
                    may_change=("existing.blend", "existing.npz") if force else (),
                    should=f"exit {code}, no output and no temporary left, existing files byte-identical (or, when the "
                           f"signal comes after the take finished, exit 0 with the outputs)")
    add("SIGTERM_during_render_force", "interrupt", kind="signal",
        argv=_cli("--force", "--transcript", "none", "--resolution", "128",
                  out=("-o", "existing.blend", "--render", "existing.mp4")),
        interrupt=(signal.SIGTERM, 25.0), expect="either", may_change=("existing.blend", "existing.mp4"),
        should="exit 143 with existing.mp4 and existing.blend unchanged (or exit 0 if it had finished)")
    return cases


def _saved(obj) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _legacy_checkpoint() -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(_checkpoint()(), buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


# --- running a case ----------------------------------------------------------------------------

_PYTHON_PRELUDE = textwrap.dedent("""
    import sys
    import numpy as np
    import emoflame
    from emoflame.core.errors import EmoflameError
    AUDIO = "take.wav"
    try:
        exec(compile(sys.argv[1], "<case>", "exec"))
    except EmoflameError as error:
        sys.stderr.write(f"{type(error).__name__}: {error}\\n")
        sys.exit(2)
""")


@dataclass
class Result:
    case: Case
    outcome: str
    returncode: int | None
    seconds: float
    stderr: str
    left_behind: list[str]
    changed: list[str]
    code_executed: bool
    third_party: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.outcome not in ("ok", "clean error") or bool(self.left_behind or self.changed or self.code_executed)


def _limits(cap: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _snapshot(folder: Path) -> dict[str, str]:
    found = {}
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink() or not path.is_file() or _ignored(rel):
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        found[rel] = digest.hexdigest()
    return found


def _ignored(rel: str) -> bool:
    return any(rel.startswith(prefix) for prefix in IGNORED) or "__pycache__" in rel


def _prepare(folder: Path, case: Case) -> None:
    (folder / "home").mkdir()
    (folder / "tmp").mkdir()
    data = SPEECH.read_bytes()
    (folder / "take.wav").write_bytes(data)
    rng = np.random.default_rng(7)
    for name, size in PRE_EXISTING.items():
        (folder / name).write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    if case.setup:
        case.setup(folder)


def _outputs_of(argv: list[str]) -> set[str]:
    named = set()
    for flag, value in zip(argv, argv[1:]):
        if flag in ("-o", "--output", "--clip", "--render"):
            named.add(os.path.normpath(value.replace("~", "home", 1) if value.startswith("~") else value))
    return named


def run_case(case: Case, memory_cap: int = MEMORY_CAP, verbose: bool = False) -> Result:
    """Run one case in a fresh folder and classify what happened."""
    with tempfile.TemporaryDirectory(prefix="emoflame-fuzz-") as tmp:
        folder = Path(tmp)
        _prepare(folder, case)
        before = _snapshot(folder)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMOFLAME_") or k == "EMOFLAME_SHARED_DATA"}
        env.update(HOME=str(folder / "home"), TMPDIR=str(folder / "tmp"), PYTHONUNBUFFERED="1", **case.env)
        if case.kind in ("cli", "signal"):
            command = [sys.executable, "-m", "emoflame.cli", *case.argv]
        elif case.kind == "worker":
            command = [sys.executable, str(REPO / "core" / "worker.py"), *case.argv]
        else:
            command = [sys.executable, "-c", _PYTHON_PRELUDE, case.code]
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, preexec_fn=_limits(memory_cap), start_new_session=True)
        timed_out = False
        try:
            if case.interrupt:
                sig, delay = case.interrupt
                try:
                    process.wait(delay)
                except subprocess.TimeoutExpired:
                    # Ctrl-C reaches the whole foreground group; `kill` (SIGTERM) only the process.
                    if sig == signal.SIGINT:
                        os.killpg(process.pid, sig)
                    else:
                        process.send_signal(sig)
            stdout, stderr = process.communicate(timeout=case.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        seconds = time.perf_counter() - start
        try:
            os.killpg(process.pid, signal.SIGKILL)  # stray children (decoders, renderers)
        except ProcessLookupError:
            pass
        err = stderr.decode("utf-8", "replace")
        after = _snapshot(folder)
        code_executed = any(p.name == MARKER for p in folder.rglob(MARKER))
        changed = sorted(p for p, h in before.items() if after.get(p) != h and p not in case.may_change)
        rc = process.returncode
        allowed = _outputs_of(case.argv) if rc == 0 else set()
        new = sorted(p for p in after if p not in before and os.path.normpath(p) not in allowed)
        left = [p for p in new if p not in THIRD_PARTY]
        outcome = _classify(case, rc, err, timed_out)
        if verbose:
            print(f"--- {case.name}: rc {rc}, {seconds:.1f} s\n{err.strip()[-2000:]}\n{stdout.decode()[-500:]}")
        return Result(case, outcome, rc, seconds, err, left, changed, code_executed, [p for p in new if p in THIRD_PARTY])


def _classify(case: Case, rc: int | None, err: str, timed_out: bool) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    if timed_out:
        return "hang/timeout"
    if "Traceback (most recent call last)" in err:
        return "traceback"
    if rc is None or rc < 0 or rc in (134, 137, 139):
        return "crash"
    if case.interrupt:
        expected = 130 if case.interrupt[0] == signal.SIGINT else 143
        if rc == 0:
            return "ok"
        if rc == expected:
            return "clean error" if len(lines) <= 1 else "error, not one line"
        return "wrong exit on interrupt"
    if rc == 0:
        return "accepted bad input" if case.expect == "error" else "ok"
    if rc == 2:
        if case.kind == "worker":
            tagged = [line for line in lines if line.startswith("EMOFLAME_ERROR ")]
            good = len(lines) == 1 and len(tagged) == 1
        else:
            good = len(lines) == 1
        if not good:
            return "error, not one line"
        return "refused good input" if case.expect == "ok" else "clean error"
    return "traceback" if "Error" in err else f"exit {rc}"


# --- the report --------------------------------------------------------------------------------

OUTCOMES = ("ok", "clean error", "accepted bad input", "refused good input", "error, not one line", "traceback",
            "crash", "hang/timeout", "wrong exit on interrupt")


def report(results: list[Result]) -> None:
    counts = {name: 0 for name in OUTCOMES}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    flags = {"files left behind": sum(bool(r.left_behind) for r in results),
             "pre-existing file changed": sum(bool(r.changed) for r in results),
             "code executed": sum(r.code_executed for r in results)}
    third = {p for r in results for p in r.third_party}
    print(f"\n{len(results)} cases, {sum(r.seconds for r in results) / 60:.1f} min")
    for name, n in {**counts, **flags}.items():
        print(f"  {name:<28} {n}")
    for path in sorted(third):
        runs = sum(path in r.third_party for r in results)
        print(f"  (not counted: {path} appeared in {runs} runs: {THIRD_PARTY[path]})")
    by_category: dict[str, list[Result]] = {}
    for r in results:
        by_category.setdefault(r.case.category, []).append(r)
    print("\nper category (cases, failures):")
    for category, rs in by_category.items():
        print(f"  {category:<12} {len(rs):4d} {sum(r.failed for r in rs):4d}   {OWNERS.get(category, '')}")
    failures = [r for r in results if r.failed]
    if failures:
        print(f"\n{len(failures)} failures:")
    for r in failures:
        command = _shown_command(r.case)
        what = [r.outcome] + (["files left: " + ", ".join(r.left_behind[:4])] if r.left_behind else []) \
            + (["changed: " + ", ".join(r.changed)] if r.changed else []) + (["CODE EXECUTED"] if r.code_executed else [])
        tail = " | ".join(line.strip() for line in r.stderr.strip().splitlines()[-2:])[:300]
        print(f"- {r.case.name} [{r.case.category}: {OWNERS.get(r.case.category, '')}]\n    $ {command}\n"
              f"    now: {'; '.join(what)} (exit {r.returncode}, {r.seconds:.0f} s): {tail or 'no stderr'}\n"
              f"    should: {r.case.should}")


def _shown_command(case: Case) -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in case.env.items())
    if case.kind in ("cli", "signal"):
        text = "emoflame " + " ".join(shlex.quote(a) for a in case.argv)
        if case.interrupt:
            text += f"   # then {signal.Signals(case.interrupt[0]).name} after {case.interrupt[1]:g} s"
    elif case.kind == "worker":
        text = "python core/worker.py " + " ".join(case.argv)
    else:
        text = f"python -c {shlex.quote(case.code)}"
    return f"{env} {text}".strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="CATEGORY", help=f"categories: {', '.join(OWNERS)}")
    parser.add_argument("--cases", nargs="+", metavar="NAME", help="case names (see --list)")
    parser.add_argument("--jobs", type=int, default=1, help="cases at a time (default 1: the machine is shared)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--json", type=Path, help="also write every result here")
    parser.add_argument("--verbose", action="store_true", help="print each case's stderr")
    args = parser.parse_args()
    cases = [c for c in catalogue() if (not args.only or c.category in args.only)
             and (not args.cases or c.name in args.cases)]
    if args.list:
        for c in cases:
            print(f"{c.name:<60} expect {c.expect:<7} {_shown_command(c)[:120]}")
        print(f"{len(cases)} cases")
        return
    print(f"{len(cases)} cases, {args.jobs} at a time; load average {os.getloadavg()[0]:.1f}", flush=True)
    results: list[Result] = []

    def one(case):
        result = run_case(case, verbose=args.verbose)
        mark = "FAIL" if result.failed else "ok  "
        print(f"{mark} {result.outcome:<22} {result.seconds:6.1f} s  {case.name}", flush=True)
        return result

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(one, cases))
    report(results)
    if args.json:
        args.json.write_text(json.dumps([{
            "name": r.case.name, "category": r.case.category, "outcome": r.outcome, "returncode": r.returncode,
            "seconds": round(r.seconds, 2), "left_behind": r.left_behind, "changed": r.changed,
            "code_executed": r.code_executed, "third_party": r.third_party, "stderr_tail": r.stderr[-1500:],
            "command": _shown_command(r.case),
        } for r in results], indent=1))


if __name__ == "__main__":
    main()

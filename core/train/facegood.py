"""The FACEGOOD captured speech animation: 7 takes of Mandarin speech with 116 rig weights at 30 fps.

Source: FACEGOOD-Audio2Face (MIT), ``code/train/`` — ``wav/*.wav`` (16 kHz mono) paired frame by
frame with ``bs_value/bs_value_<take>.npy`` (frames, 116) in [0, 1], channel order ``bsname.txt``.
``Voice2Face_blendshape2ARkit.xlsx`` maps the channels to ARKit names; FACEGOOD marks only the
mouth and jaw rows 'valid' (their capture animated the mouth alone), so only those 27 channels
carry supervision: :attr:`Take.valid` masks the rest.

The mapping is read from the spreadsheet once (``python -m emoflame.core.train.facegood
--build-mapping``) and committed as ``facegood_arkit.json`` beside this file, so training needs
no spreadsheet reader.
"""

from __future__ import annotations

import argparse
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.frontends import audio_features
from ..audio.load import load_audio
from ..channels import ARKIT_CHANNELS, canonical_channel
from ..errors import ModelFileError
from ..settings import Settings

FPS = 30.0
TAKES = ("1114_2_01", "1114_2_02", "1114_2_03", "1114_2_04", "1114_2_05", "1114_3_15", "1114_3_16")
HELD_OUT = "1114_3_16"
"""The take no model ever trains on: the lip-sync and intensity evaluation runs on it."""
TRAIN_TAKES = tuple(t for t in TAKES if t != HELD_OUT)

MAPPING_FILE = Path(__file__).with_name("facegood_arkit.json")

# The .npy columns are in FACEGOOD's older "1015" rig order, not bsname.txt's order: column
# _COLUMN_OF_NAME[i] holds bsname.txt's channel i (the permutation in FACEGOOD's
# code/train/bs_name_1015_to_1119.py). Checked here: with it, the mirrored channel pairs
# (funnel_dl/dr, lipCornerPull_l/r, press_l/r, suck_dl/dr, ...) are the identical columns and
# mouth_stretch_c (jawOpen) correlates 0.73 with loudness on take 1114_2_01; read in
# bsname.txt order, jawOpen is constant zero.
_COLUMN_OF_NAME = np.array(
    [0, *range(2, 11), 12, 11, *range(13, 93), 94, 93, *range(95, 104), 105, 104, *range(106, 115), 1, 115]
)

# Spreadsheet spellings that differ from bsname.txt.
_ALIASES = {"cheek_up": "cheek_UP", "eye_upLidRaise_l": "eye_upperLidRaise_l", "eye_upLidRaise_r": "eye_upperLidRaise_r"}


@dataclass(frozen=True)
class Take:
    """One captured take.

    Attributes:
        name: take id, e.g. ``"1114_3_16"``.
        samples: (N,) float32 mono speech at 16 kHz.
        weights: (T, 52) float32 over ``ARKIT_CHANNELS`` at 30 fps, 0 where not captured.
        valid: (52,) bool, the channels FACEGOOD captured (mouth and jaw).
    """

    name: str
    samples: np.ndarray
    weights: np.ndarray
    valid: np.ndarray


def build_mapping(xlsx: Path, bsname: Path) -> dict:
    """Read FACEGOOD's ARKit table into ``{arkit_channel: {"sources": [...], "valid": bool}}``.

    Each ARKit channel is the max of its source channels (the spreadsheet's ``max(a, b)``).
    Needs openpyxl (a build-time tool, not a runtime dependency).
    """
    import openpyxl

    names = set(bsname.read_text().split()[1:])
    table = {}
    for row in openpyxl.load_workbook(xlsx).worksheets[0].iter_rows(min_row=3, values_only=True):
        arkit, formula, status = row[0], row[2], row[6]
        # jawLeft / mouthRight are whole names, not a side suffix on "jaw" / "mouth".
        channel = arkit if arkit in ARKIT_CHANNELS else canonical_channel(arkit or "")
        if channel is None or status is None:
            continue
        sources = [_ALIASES.get(s, s) for s in re.findall(r"[A-Za-z0-9_]+", formula or "") if s != "max"]
        missing = [s for s in sources if s not in names]
        if missing:
            raise ValueError(f"{xlsx}: {arkit} names {missing}, not in {bsname}")
        table[channel] = {"sources": sources, "valid": status.strip().lower() == "valid"}
    return table


def load_mapping() -> dict:
    """The committed FACEGOOD → ARKit table (see :func:`build_mapping`)."""
    return json.loads(MAPPING_FILE.read_text())


def to_arkit(values: np.ndarray, names: list[str], mapping: dict) -> tuple[np.ndarray, np.ndarray]:
    """FACEGOOD rig weights (T, 116) → ((T, 52) ARKit weights, (52,) bool valid mask)."""
    col = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(values), len(ARKIT_CHANNELS)), np.float32)
    valid = np.zeros(len(ARKIT_CHANNELS), bool)
    for k, channel in enumerate(ARKIT_CHANNELS):
        entry = mapping.get(channel)
        if entry and entry["sources"]:
            out[:, k] = values[:, [col[s] for s in entry["sources"]]].max(axis=1)
            valid[k] = entry["valid"]
    return out, valid


def load_take(root: Path, name: str) -> Take:
    """Load take ``name`` from the FACEGOOD folder ``root`` (``../shared/data/facegood``).

    Raises:
        ModelFileError: a file of the take is missing.
    """
    root = Path(root)
    wav, npy = root / "wav" / f"{name}.wav", root / "bs_value" / f"bs_value_{name}.npy"
    for path in (wav, npy):
        if not path.is_file():
            raise ModelFileError(f"FACEGOOD file missing: {path}; point --data at the facegood folder")
    names = (root / "bsname.txt").read_text().split()[1:]
    with warnings.catch_warnings():  # Python 2 numpy headers
        warnings.simplefilter("ignore")
        values = np.load(npy, allow_pickle=False)[:, _COLUMN_OF_NAME]
    samples, _ = load_audio(wav)
    weights, valid = to_arkit(values, names, load_mapping())
    return Take(name=name, samples=samples, weights=weights, valid=valid)


def take_features(take: Take, front_end: str, cache_dir: Path | None = None) -> np.ndarray:
    """(T, D) audio features of ``take`` on its 30 fps frame grid, trimmed to the capture's length.

    Cached as ``<cache_dir>/<take>_<front_end>.npy`` (YIN over ten minutes of speech is slow).
    """
    path = Path(cache_dir) / f"{take.name}_{front_end}.npy" if cache_dir else None
    if path is not None and path.is_file():
        feats = np.load(path, allow_pickle=False)
    else:
        feats = audio_features(take.samples, FPS, front_end, Settings.from_environment().hubert_dir)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, feats)
    n = min(len(feats), len(take.weights))
    if n < len(take.weights) - 2:
        raise ValueError(f"take {take.name}: {len(feats)} feature frames for {len(take.weights)} captured frames")
    return feats[:n]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild facegood_arkit.json from FACEGOOD's spreadsheet.")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/facegood")
    parser.add_argument("--build-mapping", action="store_true", required=True)
    args = parser.parse_args(argv)
    table = build_mapping(args.data / "Voice2Face_blendshape2ARkit.xlsx", args.data / "bsname.txt")
    MAPPING_FILE.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {MAPPING_FILE}: {sum(v['valid'] for v in table.values())} valid of {len(table)} channels")


if __name__ == "__main__":
    main()

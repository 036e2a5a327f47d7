"""Both expression engines on the English recordings: how far the mouth opens and whether it closes.

The only captured ground truth (FACEGOOD, `benchmarks/evaluate.py`) is Mandarin; this script
measures what an animator sees on English dialogue, on the default avatar, neutral emotion:
the inner-lip gap (mean of landmarks 61-63 minus 65-67, mm) at its 95th percentile, its Pearson r
with loudness, and for arctic_a0007, aligned to its transcript, the widest gap during the P of
"superlative" (2.30-2.46 s), which should be closed.

    python benchmarks/compare_engines_english.py
"""

from pathlib import Path

import numpy as np

from emoflame.core.audio.features import prosody
from emoflame.core.audio.load import load_audio
from emoflame.core.flame.avatar import default_avatar
from emoflame.core.flame.rigmap import rigmap_for_avatar
from emoflame.core.expression import ENGINES
from emoflame.core.pipeline import animate

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
NOT_SPEECH = {"asterisk-tt-monkeys.wav"}  # monkey calls
ARCTIC_TEXT = "and you always want to see it in the superlative degree"


def lip_gap_mm(avatar, rigmap, clip) -> np.ndarray:
    """(T,) inner-lip gap of the default avatar driven by ``clip``, millimetres."""
    keys = np.zeros((clip.num_frames, len(avatar.blendshape_names)), np.float32)
    keys[:, [avatar.blendshape_names.index(t) for t in rigmap.targets]] = rigmap.apply(clip.weights)
    lips = avatar.landmarks(avatar.vertices_for(keys))
    return 1000 * (lips[:, 61:64, 1].mean(axis=1) - lips[:, 65:68, 1].mean(axis=1))


def main() -> None:
    avatar = default_avatar()
    rigmap = rigmap_for_avatar(avatar)
    wavs = sorted(p for p in SPEECH.glob("*.wav") if p.name not in NOT_SPEECH)
    print(f"{'recording':<36} {'engine':<9} {'gap p95 mm':>10} {'r(gap, dB)':>10}")
    summary = {e: [] for e in ENGINES}
    for wav in wavs:
        loudness = None
        for engine in ENGINES:
            clip = animate(wav, emotion="neutral", intensity=0.0, engine=engine, progress=False)
            if loudness is None:
                loudness = prosody(load_audio(wav)[0], clip.fps).loudness
            gap = lip_gap_mm(avatar, rigmap, clip)
            r = np.corrcoef(gap, loudness)[0, 1]
            summary[engine].append((np.percentile(gap, 95), r))
            print(f"{wav.name:<36} {engine:<9} {np.percentile(gap, 95):>10.1f} {r:>10.3f}")
    for engine, rows in summary.items():
        p95, r = np.mean(rows, axis=0)
        print(f"{'mean over ' + str(len(rows)) + ' recordings':<36} {engine:<9} {p95:>10.1f} {r:>10.3f}")
    for engine in ENGINES:
        clip = animate(SPEECH / "arctic_a0007.wav", emotion="neutral", intensity=0.0, engine=engine,
                       transcript=ARCTIC_TEXT, progress=False)
        gap = lip_gap_mm(avatar, rigmap, clip)
        closure = (np.arange(clip.num_frames) / clip.fps >= 2.32) & (np.arange(clip.num_frames) / clip.fps <= 2.44)
        print(f"arctic_a0007 P of 'superlative', {engine}: widest inner-lip gap {gap[closure].max():.2f} mm "
              f"(rest {gap[0]:.2f} mm)")


if __name__ == "__main__":
    main()

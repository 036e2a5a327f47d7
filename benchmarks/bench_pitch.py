"""Praat's pitch (core.audio.pitch.f0_track, what prosody() uses) against the librosa YIN path it
replaced, and cold starts. The YIN reference needs librosa (pip install librosa==0.11.0), which
emoflame itself no longer imports.

    python benchmarks/bench_pitch.py [--no-cold]

Agreement, per recording (arctic_a0007, the Asterisk prompts, the FACEGOOD Mandarin takes), on
the 10 ms grid, against the former ``prosody`` (:func:`yin_reference`: YIN at 8 kHz, its
voicing = loud and steady): the voiced share of each; voicing agreement; on frames both call
voiced, the median absolute difference in semitones, the share over 1 semitone (gross) and the
share within 3 semitones of an octave (octave errors); and each tracker's voicing against the
phones of the forced alignment to the reference transcript (vowels, nasals, liquids and glides
voiced; S SH F TH HH P T K CH and silence unvoiced; voiced obstruents and 20 ms at each phone
boundary left out). Then both on a synthetic glide of known F0 (ten harmonics, 100 → 200 Hz in 3 s).

Cold start: fresh processes with an empty numba cache (``NUMBA_CACHE_DIR`` pointed at a new
folder: numba finds none of librosa's compiled functions, as in a fresh environment, and nothing
of the real cache is touched), step by step: the audio front end as the README's run reaches it,
then the same with the cache warm.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SPEECH = DATA / "speech"
sys.path.insert(0, str(REPO / "benchmarks"))

VOICED_PHONES = set("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW M N NG L R W Y".split())
UNVOICED_PHONES = set("S SH F TH HH P T K CH SIL".split())


def semitones(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 12 * np.log2(a / b)


def phone_voicing(samples: np.ndarray, transcript: str, frames: int) -> np.ndarray:
    """(frames,) int8: 1 voiced, 0 unvoiced, -1 left out, from the forced alignment's phones."""
    from bench_recognition import align

    phones, _ = align(samples, transcript)
    label = np.full(frames, -1, np.int8)
    for p in phones or ():
        a, b = int(round(p.start * 100)) + 2, int(round(p.end * 100)) - 2
        if b > a:
            label[a:b] = 1 if p.name in VOICED_PHONES else 0 if p.name in UNVOICED_PHONES else -1
    return label


def yin_reference(samples: np.ndarray):
    """The F0 and voicing emoflame's prosody() gave before Praat, on the 10 ms grid: librosa's YIN
    at 8 kHz (frame 512, hop 5 ms), voiced where within 25 dB of the loud frames and steady
    against its neighbours (under 0.1 octave from the median of three)."""
    import librosa
    import soxr
    from types import SimpleNamespace

    rms = librosa.feature.rms(y=samples, frame_length=400, hop_length=160, center=True)[0]
    loudness = 20 * np.log10(np.maximum(rms, 1e-5))
    f0 = librosa.yin(soxr.resample(samples, 16000, 8000), fmin=60.0, fmax=500.0, sr=8000, frame_length=512,
                     hop_length=80)
    f0 = np.pad(f0, (0, max(0, len(loudness) - len(f0))), mode="edge")[: len(loudness)]
    log_f0 = np.log2(f0)
    padded = np.pad(log_f0, 1, mode="edge")
    steady = np.abs(log_f0 - np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)) < 0.1
    voiced = (loudness > np.percentile(loudness, 95) - 25) & steady & (f0 < 500.0 * 0.98)
    return SimpleNamespace(f0=np.where(voiced, f0, 0.0), voiced=voiced)


def compare(name: str, samples: np.ndarray, transcript: str | None) -> dict:
    from emoflame.core.audio.pitch import f0_track

    start = time.perf_counter()
    yin = yin_reference(samples)
    yin_s = time.perf_counter() - start
    start = time.perf_counter()
    f0, voiced = f0_track(samples)
    praat_s = time.perf_counter() - start
    n = min(len(f0), len(yin.f0))
    f0, voiced, yf, yv = f0[:n], voiced[:n], yin.f0[:n], yin.voiced[:n]
    both = voiced & yv
    d = np.abs(semitones(f0[both], yf[both]))
    row = {"name": name, "seconds": len(samples) / 16000, "yin_voiced": yv.mean(), "praat_voiced": voiced.mean(),
           "agree": (voiced == yv).mean(), "both": int(both.sum()), "median": np.median(d), "gross": (d > 1).mean(),
           "octave": (np.abs(d - 12) < 3).mean(), "yin_s": yin_s, "praat_s": praat_s,
           "praat_median_hz": float(np.median(f0[voiced]))}
    if transcript:
        label = phone_voicing(samples, transcript, n)
        known = label >= 0
        for key, v in (("yin", yv), ("praat", voiced)):
            row[f"{key}_phones"] = (v[known] == (label[known] == 1)).mean()
            row[f"{key}_false"] = v[label == 0].mean()
            row[f"{key}_miss"] = 1 - v[label == 1].mean()
    return row


def agreement() -> None:
    from bench_recognition import REFERENCES

    from emoflame.core.audio.load import load_audio

    wavs = [SPEECH / "arctic_a0007.wav", *sorted(SPEECH.glob("asterisk-*.wav")), *sorted((DATA / "facegood" / "wav").glob("*.wav"))]
    yin_reference(load_audio(wavs[0])[0])  # librosa's imports out of the timings below
    rows = [compare(w.stem, load_audio(w)[0], REFERENCES.get(w.stem)) for w in wavs]
    print(f"{'recording':<30} {'s':>6} {'voiced yin/praat':>16} {'v agree':>7} {'both':>5} {'med st':>6} "
          f"{'>1 st':>6} {'octave':>6} {'F0 med Hz':>9} {'s yin/praat':>11}   vs phones: agree, false voiced, missed (yin | praat)")
    for r in rows:
        phones = (f"   {r['yin_phones']:.3f} {r['yin_false']:.3f} {r['yin_miss']:.3f} | {r['praat_phones']:.3f} "
                  f"{r['praat_false']:.3f} {r['praat_miss']:.3f}" if "yin_phones" in r else "")
        print(f"{r['name']:<30} {r['seconds']:6.1f} {r['yin_voiced']:7.2f}/{r['praat_voiced']:<8.2f} {r['agree']:7.3f} "
              f"{r['both']:5d} {r['median']:6.3f} {r['gross']:6.3f} {r['octave']:6.3f} {r['praat_median_hz']:9.1f} "
              f"{r['yin_s']:5.2f}/{r['praat_s']:<5.2f}{phones}")
    for label, group in (("English speech", [r for r in rows if "yin_phones" in r]),
                         ("FACEGOOD Mandarin", [r for r in rows if r["name"].startswith("1114")])):
        w = np.array([r["both"] for r in group], float)
        print(f"{label} (frame-weighted): voicing agreement {np.average([r['agree'] for r in group], weights=[r['seconds'] for r in group]):.3f}, "
              f"median |d| {np.average([r['median'] for r in group], weights=w):.3f} st, >1 st "
              f"{np.average([r['gross'] for r in group], weights=w):.3f}, octave {np.average([r['octave'] for r in group], weights=w):.3f}")
    english = [r for r in rows if "yin_phones" in r]
    for key in ("yin", "praat"):
        print(f"  {key} voicing against the phones, English: agree {np.mean([r[f'{key}_phones'] for r in english]):.3f}, "
              f"unvoiced phones called voiced {np.mean([r[f'{key}_false'] for r in english]):.3f}, voiced phones missed "
              f"{np.mean([r[f'{key}_miss'] for r in english]):.3f} (means over recordings)")


def glide() -> None:
    from emoflame.core.audio.pitch import f0_track

    seconds, rate = 3.0, 16000
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(100 * 2 ** (t / seconds)) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 11))
    wave = (0.3 * wave / np.abs(wave).max()).astype(np.float32)
    f0, voiced = f0_track(wave)
    yin = yin_reference(wave)
    truth = 100 * 2 ** (np.arange(len(f0)) * 0.01 / seconds)
    inner = slice(10, len(yin.f0) - 10)
    print("\nglide 100 → 200 Hz (ten harmonics), frames 0.1 s from either end:")
    for key, f, v in (("yin", yin.f0[inner], yin.voiced[inner]), ("praat", f0[inner], voiced[inner])):
        e = semitones(f[v], truth[inner][v])
        print(f"  {key:<5} voiced {v.mean():.3f}, error median {np.median(e):+.4f} st, max |e| {np.abs(e).max():.3f} st")


COLD_STEPS = r"""
import sys, time
start = last = time.perf_counter()
def step(label):
    global last
    now = time.perf_counter()
    print(f"  {label:<58} {now - last:6.2f} s")
    last = now
import numpy; step("import numpy")
import emoflame; step("import emoflame")
from emoflame.core.audio.load import load_audio
samples, _ = load_audio(sys.argv[1]); step("load_audio (4 s recording)")
from emoflame.core.audio.pitch import f0_track; f0_track(samples); step("f0_track: import parselmouth + first call")
from emoflame.core.audio.features import log_mel, prosody
prosody(samples, 25.0); step("features.prosody (RMS + Praat), first call")
log_mel(samples, 25.0); step("features.log_mel, first call")
print(f"  librosa or numba imported: {sorted(m for m in ('librosa', 'numba') if m in sys.modules)}")
print(f"  {'total':<58} {time.perf_counter() - start:6.2f} s")
"""

F0_ONLY = {
    "praat": "from emoflame.core.audio.pitch import f0_track; f0_track(samples)",
    "yin": "import librosa; librosa.yin(samples, fmin=60.0, fmax=500.0, sr=16000, frame_length=1024, hop_length=160)",
}


def run_fresh(code: str, cache: str | None, *args: str) -> str:
    env = dict(os.environ)
    if cache:
        env["NUMBA_CACHE_DIR"] = cache
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True)
    return out.stdout


def cold_start() -> None:
    wav = str(SPEECH / "arctic_a0007.wav")
    first = ("import time; start = time.perf_counter(); import sys; from emoflame.core.audio.load import load_audio; "
             "samples, _ = load_audio(sys.argv[1]); {call}; print(f'{{time.perf_counter() - start:.2f}}')")
    print("\nF0 of arctic_a0007 in a fresh process, imports included (s): empty numba cache / warm cache")
    for key, call in F0_ONLY.items():
        with tempfile.TemporaryDirectory() as empty:
            cold = run_fresh(first.format(call=call), empty, wav).strip()
        warm = run_fresh(first.format(call=call), None, wav).strip()
        print(f"  {key:<6} ({call.split('; ')[-1]}): {cold} / {warm}")
    for label in ("empty numba cache", "warm numba cache"):
        print(f"\nThe audio front end step by step, fresh process, {label}:")
        if label.startswith("empty"):
            with tempfile.TemporaryDirectory() as empty:
                print(run_fresh(COLD_STEPS, empty, wav), end="")
        else:
            print(run_fresh(COLD_STEPS, None, wav), end="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-cold", action="store_true", help="skip the fresh-process timings")
    args = parser.parse_args()
    agreement()
    glide()
    if not args.no_cold:
        cold_start()


if __name__ == "__main__":
    main()

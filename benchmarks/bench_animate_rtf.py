"""Real-time factor of emoflame.animate on a 60 s recording (imports excluded).

The recording is the asterisk prompts in ../shared/data/speech (real US English, one speaker,
8 kHz) concatenated and cut to 60 s, written as a 16-bit wav. animate() runs as the README's
command does (phonetic engine, intensity from the audio, the automatic transcript, head motion),
once on a short clip first, so that one-time costs (loading Whisper, pocketsphinx and P) are
reported apart from the steady per-recording cost; then the steps one by one, Whisper's share
among them.

    python benchmarks/bench_animate_rtf.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO.parent / "shared" / "data" / "speech"
SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs on the 60 s recording")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from emoflame import animate
    from emoflame.core.audio.load import load_audio

    parts = [load_audio(p)[0] for p in sorted(SPEECH.glob("asterisk-*.wav"))]
    samples = np.concatenate(parts)[: int(SECONDS * 16000)]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "asterisk_60s.wav"
        soundfile.write(wav, samples, 16000, subtype="PCM_16")
        start = time.perf_counter()
        animate(REPO / "examples" / "arctic_a0007.wav", emotion="happy", progress=False)
        print(f"first call on the 4 s example (one-time costs): {time.perf_counter() - start:.2f} s")
        times, cpu = [], []
        for run in range(args.runs):
            start, cpu_start = time.perf_counter(), cpu_seconds()
            clip = animate(wav, emotion="happy", progress=False, seed=run)
            times.append(time.perf_counter() - start)
            cpu.append(cpu_seconds() - cpu_start)
        print(f"{clip.num_frames} frames at {clip.fps:g} fps from {len(samples) / 16000:.1f} s of speech")
        print(f"animate: {min(times):.2f} s best, {np.median(times):.2f} s median of {args.runs}")
        print(f"real-time factor: {min(times) / SECONDS:.4f} best, {np.median(times) / SECONDS:.4f} median (goal <= 0.1)")
        print(f"CPU time (this process and its decoding workers): {np.median(cpu):.2f} s median, "
              f"{np.median(cpu) / SECONDS:.4f} CPU-seconds per second of audio; load average now "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print("where the time goes (one run):")
        for step, seconds in stage_times(wav).items():
            print(f"  {step:<28} {seconds:6.2f} s  ({seconds / SECONDS:.4f} x real time)")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def stage_times(wav: Path) -> dict[str, float]:
    """Seconds per step of animate() on ``wav``, in the order animate takes them."""
    from emoflame.core.audio.features import num_frames, prosody
    from emoflame.core.audio.load import load_audio
    from emoflame.core.audio.phones import align_timed_words
    from emoflame.core.audio.recognition import transcribe
    from emoflame.core.audio.speech import Speech
    from emoflame.core.emotion.track import read_emotion_track
    from emoflame.core.expression.eyes import add_eyes
    from emoflame.core.expression.head import head_motion
    from emoflame.core.expression.phonetic import PhoneticEngine
    from emoflame.core.intensity.learned import load_learned_intensity

    out, clock = {}, time.perf_counter()

    def lap(step):
        nonlocal clock
        out[step], clock = time.perf_counter() - clock, time.perf_counter()

    samples, _ = load_audio(wav)
    lap("load_audio")
    tracks = prosody(samples, 25.0)
    lap("prosody (RMS, Praat F0)")
    predictor = load_learned_intensity()
    lap("loading P (cached)")
    words = transcribe(samples)
    lap("Whisper tiny.en (words)")
    phones = align_timed_words(samples, words.words)
    lap("pocketsphinx alignment (2 cores)")
    speech = Speech(samples, 25.0, num_frames(len(samples) / 16000, 25.0), tracks, tuple(phones),
                    "aligned to the automatic transcript", words.text)
    intensity = predictor.predict(speech)
    lap("intensity (P)")
    track = read_emotion_track("happy")
    add_eyes(PhoneticEngine().generate(speech, track, intensity).weights, speech)
    lap("visemes, emotion, eyes")
    head_motion(speech.prosody, 25.0, track, intensity, 0)
    lap("head motion")
    return out


if __name__ == "__main__":
    main()

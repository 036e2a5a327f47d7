"""Quality figures of the phonetic engine on real speech (../shared/data/speech).

    python benchmarks/bench_phonetic_quality.py

Prints: the phone error rate of recognition against the forced alignment of arctic_a0007 (before
and after the bilabial check); the Pearson r of jawOpen against loudness (phones aligned to the
script or to Whisper's words, or recognised); the inner-lip gap on the default avatar during the P of "superlative" for every emotion;
the blink rate and blink durations over a minute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO.parent / "shared" / "data" / "speech"
TEXT = "and you always want to see it in the superlative degree"


def main() -> None:
    from emoflame import animate
    from emoflame.core.audio.closures import confirm_bilabials
    from emoflame.core.audio.features import prosody
    from emoflame.core.audio.load import load_audio
    from emoflame.core.audio.phones import align_phones, phone_error_rate, recognise_phones
    from emoflame.core.channels import ARKIT_CHANNELS
    from emoflame.core.emotion.facs import MEAD_EMOTIONS
    from emoflame.core.expression.eyes import eye_weights
    from emoflame.core.flame.avatar import default_avatar

    arctic = SPEECH / "arctic_a0007.wav"
    samples = load_audio(arctic)[0]
    reference = align_phones(samples, TEXT)
    recognised = recognise_phones(samples)
    for label, phones in (("raw", recognised), ("after the bilabial check", confirm_bilabials(samples, recognised))):
        print(f"phone error rate, arctic_a0007, {label}: {phone_error_rate(reference, phones):.3f} "
              f"({sum(p.name != 'SIL' for p in reference)} aligned phones)")

    congrats = SPEECH / "asterisk-demo-congrats.wav"
    for wav, transcript in ((arctic, TEXT), (arctic, "auto"), (arctic, "none"), (congrats, "auto"), (congrats, "none")):
        clip = animate(wav, transcript=transcript, progress=False)
        loudness = prosody(load_audio(wav)[0], clip.fps).loudness
        r = np.corrcoef(clip.channel("jawOpen"), loudness)[0, 1]
        how = {"auto": "aligned to Whisper's words", "none": "recognised phones"}.get(transcript, "aligned to the script")
        print(f"Pearson r(jawOpen, loudness dB), {wav.name}, {how}: {r:.3f}")

    avatar = default_avatar()
    shared = [c for c in ARKIT_CHANNELS if c in avatar.blendshape_names]
    hold = np.arange(58, 62)  # 2.32-2.44 s at 25 fps, inside the P at 2.30-2.46 s
    gaps = []
    for emotion in MEAD_EMOTIONS:
        clip = animate(arctic, emotion=emotion, intensity=1.0, transcript=TEXT, progress=False)
        keys = np.zeros((clip.num_frames, len(avatar.blendshape_names)), np.float32)
        for c in shared:
            keys[:, avatar.blendshape_names.index(c)] = clip.channel(c)
        lips = avatar.landmarks(avatar.vertices_for(keys))
        gap = 1000 * (lips[:, 61:64, 1].mean(axis=1) - lips[:, 65:68, 1].mean(axis=1))
        gaps.append(f"{emotion} {np.abs(gap[hold]).max():.2f}")
        if emotion == "neutral":
            print(f"inner-lip gap on the default avatar: rest {gap[0]:.2f} mm, widest {gap.max():.1f} mm")
    print("inner-lip gap during the P, max |mm| at intensity 1: " + ", ".join(gaps))

    fps, n = 25.0, 1500
    rates, durations = [], []
    for seed in range(20):
        blink = eye_weights(n, fps, pauses=[], seed=seed)[:, ARKIT_CHANNELS.index("eyeBlink_L")] > 0.1
        starts = np.flatnonzero(blink[1:] & ~blink[:-1]) + 1
        ends = np.flatnonzero(blink[:-1] & ~blink[1:]) + 1
        rates.append(len(starts))
        durations += list((ends - starts[: len(ends)]) / fps)
    print(f"blinks a minute (no pauses, 20 seeds): {np.mean(rates):.1f} ± {np.std(rates):.1f}; "
          f"lids over 10 % closed for {np.min(durations):.2f}-{np.max(durations):.2f} s")


if __name__ == "__main__":
    main()

"""Lip-sync figures on the repository's English recordings, on the default avatar, neutral emotion.

    python benchmarks/bench_lipsync_english.py                      # phonetic engine, all modes
    python benchmarks/bench_lipsync_english.py --engine learned     # or: --engine phonetic learned
    python benchmarks/bench_lipsync_english.py --gain               # + the same takes at -12 / +6 dB
    python benchmarks/bench_lipsync_english.py --effort DIR [DIR2]  # + quiet vs shouted lines

Recordings: ``../shared/data/speech/*.wav`` (``asterisk-tt-monkeys.wav`` left out: monkey calls),
which include the repository's ``examples/arctic_a0007.wav``. :data:`HELD_OUT` were kept out of
every choice of the phonetic engine's numbers and are reported apart.

Phones are found three ways (``--transcript``): ``none`` (phone recognition), ``auto`` (aligned
to Whisper's words), ``given`` (aligned to the text of :data:`TEXTS`: arctic's prompt, and the
scripts of the asterisk prompts from Debian's ``asterisk-core-sounds-en``, ``core-sounds-en.txt``;
demo-instruct's as spoken: "you'd", "502", "connections" and no "Finally", as Whisper hears it
and as the script does not align).
Every figure is measured against the *reference* phones, the forced alignment to :data:`TEXTS`:

- closure: bilabials (P, B, M) whose narrowest inner-lip gap during the phone (its nearest frame
  at least) is at most :data:`CLOSED_MM`;
- rest: frames of pauses (silences of at least :data:`PAUSE_S`, :data:`EDGE_S` in from their
  ends) with the gap at most :data:`CLOSED_MM`;
- width: lip-corner width (landmarks 48-54) at rounded vowels minus spread vowels (their middle
  frame; OY's rounded first quarter); and the inner-lip gap at the middle of open (AA, AE, AH,
  AW), spread and rounded vowels;
- gap p95 and r(dB): how wide the mouth opens (95th percentile of the gap) and how closely the
  gap follows the loudness (Pearson r), as the engines were first compared;
- pops: (frame, channel) steps of a mouth channel (jaw*, mouth*, tongue*, cheek*) above 0.25 at
  25 fps (scaled by 25 / fps at other rates).

``--gain``: each recording at -12 dB and +6 dB (samples scaled, not clipped), the mean absolute
difference of the inner-lip gap per frame against the original, mm.

``--effort DIR``: a folder of one speaker's lines at several vocal efforts (Hedgewars' voice
packs, real actors, each pack recorded in one session: ``apt-get download hedgewars-data``,
``usr/share/games/hedgewars/Data/Sounds/voices/Default`` or ``British``; GFDL-1.3). The lines
that align to the words of their file name, each normalised to the same peak so that only the
voice tells them apart: the effort measure against the level the line was recorded at, and the
widest inner-lip gap of the quietest third (as recorded) against the loudest third, with the
effort measure on and off (``effort=False``: what the words alone do).
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO.parent / "shared" / "data" / "speech"
NOT_SPEECH = {"asterisk-tt-monkeys.wav"}  # monkey calls
HELD_OUT = ("asterisk-demo-instruct.wav", "asterisk-priv-callee-options.wav")
"""Never looked at while choosing the engine's targets, rates and effort mapping."""

TEXTS = {
    "arctic_a0007.wav": "and you always want to see it in the superlative degree",
    "asterisk-basic-pbx-ivr-main.wav": (
        "Thank you for calling Super Awesome Company, Waldo's premier provider of perfect products. If you know "
        "your party's extension, you may dial it at any time. To establish a sales partnership, press one. To speak "
        "with a customer advocate, press two. For accounting and other receivables, press three. For a company "
        "directory, press four. For an operator, press zero."),
    "asterisk-demo-congrats.wav": (
        "Congratulations. You have successfully installed and executed the Asterisk open source PBX. You have also "
        "installed a set of sample sounds and configuration files that should help you to get started. Like a normal "
        "PBX you will navigate this demonstration by dialing digits. If you are using a console channel driver "
        "instead of a real phone you can use the dial, answer, and hang up commands to simulate the actions of a "
        "standard telephone."),
    "asterisk-demo-instruct.wav": (
        "If you'd like to learn more technical information about Asterisk dial 2 now. If you'd like to test out "
        "the voice over IP capabilities of Asterisk you can dial 502 to attempt an Inter-Asterisk Exchange or IAX "
        "connections to a demonstration server at Digium. In order for this test to work you will need to be "
        "connected to the Internet and have at least a 28.8 kilobit modem. To execute an echo test dial 600. This "
        "test is most useful when you have connected to this Asterisk server from a remote location. The sample "
        "configuration also has a single user with extension 1234 and password 4242. That user is configured to "
        "ring the console when their extension is dialed. If you dial 1234 you can try to ring the console. If the "
        "console is busy or unavailable you will be given the option to leave voicemail. To check voice mail for "
        "the user dial extension 8500 to enter the voicemail system. You can press the pound key to "
        "disconnect from the PBX."),
    "asterisk-priv-callee-options.wav": (
        "Dial 1 if you wish this caller to reach you directly now, and in the future. Dial 2 if you wish to send "
        "this caller to voicemail now and forevermore. Dial 3 to send this caller to the torture menus, now and "
        "forevermore. Dial 4 to send this caller to a polite don't call menu, now and forevermore. Dial 5 to allow "
        "this caller to come straight thru to you in the future, but just this once, send them to voicemail."),
}

FPS = 25.0
CLOSED_MM = 1.5
POP = 0.25
"""Largest step of a mouth channel between frames at 25 fps."""
PAUSE_S, EDGE_S = 0.3, 0.1
BILABIALS = ("P", "B", "M")
ROUNDED = ("UW", "UH", "OW", "AO", "OY")
SPREAD = ("IY", "IH", "EY", "EH")
OPEN = ("AA", "AE", "AH", "AW")
MODES = ("none", "auto", "given")

NOT_WORDS = re.compile(r"^(Ooff|Ow\d|Jump|Laugh|Firepunch|Poison|Hmm)")
"""Hedgewars lines that are grunts, laughs, coughs or a hum, not words."""


def mouth_columns() -> np.ndarray:
    """Columns of the mouth channels in ``ARKIT_CHANNELS`` (the channels checked for pops)."""
    from emoflame.core.channels import ARKIT_CHANNELS

    return np.array([i for i, c in enumerate(ARKIT_CHANNELS) if c.startswith(("jaw", "mouth", "tongue", "cheek"))])


def lip_geometry(avatar, rigmap, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gap, width), each (T,) mm: the inner-lip gap (landmarks 61-63 minus 65-67, vertical) and
    the lip-corner width (48 to 54) of the default avatar driven by (T, 52) channel weights."""
    keys = np.zeros((len(weights), len(avatar.blendshape_names)), np.float32)
    keys[:, [avatar.blendshape_names.index(t) for t in rigmap.targets]] = rigmap.apply(weights)
    gap, width = [], []
    for chunk in np.array_split(keys, max(1, len(keys) // 500)):
        lips = avatar.landmarks(avatar.vertices_for(chunk))
        gap.append(1000 * (lips[:, 61:64, 1].mean(axis=1) - lips[:, 65:68, 1].mean(axis=1)))
        width.append(1000 * np.linalg.norm(lips[:, 54] - lips[:, 48], axis=1))
    return np.concatenate(gap), np.concatenate(width)


def pops(weights: np.ndarray, fps: float) -> tuple[int, float]:
    """(count, largest): mouth-channel steps between frames above :data:`POP` × 25 / fps, and the
    largest step scaled to 25 fps."""
    steps = np.abs(np.diff(weights[:, mouth_columns()], axis=0)) * fps / 25.0
    return int((steps > POP + 1e-6).sum()), float(steps.max(initial=0.0))


def frame_of(t: float, fps: float, n: int) -> int:
    return min(n - 1, max(0, int(round(t * fps))))


def figures(weights: np.ndarray, fps: float, reference, avatar, rigmap, loudness: np.ndarray) -> dict:
    """Closure, rest, width and pops of one take against its reference phones (see the module),
    the gap's 95th percentile (mm) and its Pearson r with the loudness (dB, (T,))."""
    gap, width = lip_geometry(avatar, rigmap, weights)
    n = len(gap)
    closures = []
    for p in reference:
        if p.name in BILABIALS:
            lo, hi = int(np.ceil(p.start * fps)), int(np.floor(p.end * fps))
            frames = np.arange(lo, hi + 1) if hi >= lo else [frame_of(0.5 * (p.start + p.end), fps, n)]
            closures.append(gap[np.clip(frames, 0, n - 1)].min())
    rest = [frame for p in reference if p.name == "SIL" and p.end - p.start >= PAUSE_S
            for frame in range(int(np.ceil((p.start + EDGE_S) * fps)), int(np.floor((p.end - EDGE_S) * fps)) + 1)
            if frame < n]
    rounded = [width[frame_of(p.start + (0.25 if p.name == "OY" else 0.5) * (p.end - p.start), fps, n)]
               for p in reference if p.name in ROUNDED]
    spread = [width[frame_of(0.5 * (p.start + p.end), fps, n)] for p in reference if p.name in SPREAD]
    middle = {kind: [frame_of(0.5 * (p.start + p.end), fps, n) for p in reference if p.name in names]
              for kind, names in (("rounded", ROUNDED), ("spread", SPREAD), ("open", OPEN))}
    count, largest = pops(weights, fps)
    return {"closed": int(np.sum(np.array(closures) <= CLOSED_MM)), "bilabials": len(closures),
            "closure_gap": float(np.median(closures)) if closures else float("nan"),
            "rest": float(np.mean(gap[rest] <= CLOSED_MM)) if rest else float("nan"), "rest_frames": len(rest),
            "rounded_mm": float(np.mean(rounded)), "spread_mm": float(np.mean(spread)),
            "width_diff": float(np.mean(spread) - np.mean(rounded)), "pops": count, "max_step": largest,
            **{f"{kind}_gap": float(np.mean(gap[frames])) for kind, frames in middle.items()},
            "gap_p95": float(np.percentile(gap, 95)), "r_loudness": float(np.corrcoef(gap, loudness)[0, 1])}


def generate(engine, speech) -> np.ndarray:
    """(T, 52) weights of ``engine`` for ``speech``, neutral, no eye layer (blinks are not pops)."""
    from emoflame.core.emotion.track import read_emotion_track

    return engine.generate(speech, read_emotion_track("neutral"), np.zeros(speech.num_frames, np.float32), 0).weights


ONLY: list[str] = []
"""Recordings named by ``--only`` (all when empty)."""


def recordings() -> list[Path]:
    return sorted(p for p in SPEECH.glob("*.wav") if p.name not in NOT_SPEECH and (not ONLY or p.name in ONLY))


def reference_phones(samples: np.ndarray, name: str):
    from emoflame.core.audio.phones import align_phones

    return align_phones(samples, TEXTS[name])


def print_table(rows: list[tuple[str, str, str, dict]]) -> None:
    print(f"{'recording':<34} {'engine':<9} {'phones':<6} {'closed':>8} {'gap mm':>7} {'rest':>6} "
          f"{'round mm':>8} {'spread':>7} {'diff':>6} {'pops':>5} {'max step':>8} {'p95 mm':>6} {'r(dB)':>5}")
    for name, engine, mode, f in rows:
        print(f"{name:<34} {engine:<9} {mode:<6} {f['closed']:>3}/{f['bilabials']:<4} {f['closure_gap']:>7.2f} "
              f"{100 * f['rest']:>5.0f}% {f['rounded_mm']:>8.1f} {f['spread_mm']:>7.1f} {f['width_diff']:>6.1f} "
              f"{f['pops']:>5} {f['max_step']:>8.2f} {f['gap_p95']:>6.1f} {f['r_loudness']:>5.2f}  "
              f"gap open/spread/rounded {f['open_gap']:.1f}/{f['spread_gap']:.1f}/{f['rounded_gap']:.1f} mm")


def summarise(rows, label: str) -> None:
    groups = {}
    for name, engine, mode, f in rows:
        groups.setdefault((engine, mode), []).append(f)
    for (engine, mode), fs in groups.items():
        closed, total = sum(f["closed"] for f in fs), sum(f["bilabials"] for f in fs)
        rest = sum(f["rest"] * f["rest_frames"] for f in fs) / max(1, sum(f["rest_frames"] for f in fs))
        print(f"{label:<34} {engine:<9} {mode:<6} closure {closed}/{total} = {100 * closed / max(total, 1):.0f}%, "
              f"rest closed {100 * rest:.0f}%, width spread-rounded {np.mean([f['width_diff'] for f in fs]):.1f} mm "
              f"(min {min(f['width_diff'] for f in fs):.1f}), pops {sum(f['pops'] for f in fs)}, "
              f"max step {max(f['max_step'] for f in fs):.2f}")


def engine_named(name: str):
    from emoflame.core.expression.engines import load_engine
    from emoflame.core.settings import Settings

    return load_engine(name, Settings.from_environment())


def lipsync(engines: list[str], modes: list[str], avatar, rigmap) -> None:
    from emoflame.core.audio.load import load_audio
    from emoflame.core.audio.speech import analyse_speech

    rows = []
    for wav in recordings():
        samples = load_audio(wav)[0]
        reference = reference_phones(samples, wav.name)
        for engine_name in engines:
            engine = engine_named(engine_name)
            for mode in modes if engine.needs_phones else ["-"]:
                started = time.perf_counter()
                transcript = TEXTS[wav.name] if mode == "given" else mode if mode != "-" else "none"
                speech = analyse_speech(samples, FPS, phones=engine.needs_phones, transcript=transcript)
                weights = generate(engine, speech)
                rows.append((wav.name, engine_name, mode,
                             figures(weights, FPS, reference, avatar, rigmap, speech.prosody.loudness)))
                if mode == "auto":
                    print(f"  {wav.name}: {speech.phone_source} ({time.perf_counter() - started:.1f} s)")
    tuned = [r for r in rows if r[0] not in HELD_OUT]
    held = [r for r in rows if r[0] in HELD_OUT]
    print_table(rows)
    summarise(tuned, f"tuning set ({len({r[0] for r in tuned})} recordings)")
    summarise(held, f"held out ({len({r[0] for r in held})} recordings)")


def gain(engines: list[str], modes: list[str], avatar, rigmap) -> None:
    from emoflame.core.audio.load import load_audio
    from emoflame.core.audio.speech import analyse_speech

    print(f"\n{'recording':<34} {'engine':<9} {'phones':<6} {'-12 dB mm':>9} {'+6 dB mm':>9}  (mean abs gap change)")
    worst = {}
    for wav in recordings():
        samples = load_audio(wav)[0]
        for engine_name in engines:
            engine = engine_named(engine_name)
            for mode in modes if engine.needs_phones else ["-"]:
                transcript = TEXTS[wav.name] if mode == "given" else mode if mode != "-" else "none"
                gaps = [lip_geometry(avatar, rigmap, generate(engine, analyse_speech(
                    samples * 10 ** (db / 20), FPS, phones=engine.needs_phones, transcript=transcript)))[0]
                    for db in (0.0, -12.0, 6.0)]
                diffs = [float(np.abs(g - gaps[0]).mean()) for g in gaps[1:]]
                worst[(engine_name, mode)] = max(worst.get((engine_name, mode), 0.0), *diffs)
                print(f"{wav.name:<34} {engine_name:<9} {mode:<6} {diffs[0]:>9.3f} {diffs[1]:>9.3f}")
    for (engine_name, mode), value in worst.items():
        print(f"worst over recordings and gains     {engine_name:<9} {mode:<6} {value:.3f} mm")


def line_text(stem: str) -> str:
    """The words of a Hedgewars line from its file name: "Takecover" → "takecover", "Uh-oh" → "uh oh"."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", stem.replace("-", " ")).lower()


def effort(folders: list[Path], avatar, rigmap) -> None:
    from emoflame.core.audio.effort import vocal_effort
    from emoflame.core.audio.load import load_audio
    from emoflame.core.audio.speech import analyse_speech
    from emoflame.core.errors import TranscriptError
    from emoflame.core.expression.phonetic import PhoneticEngine

    for folder in folders:
        print(f"\nvocal effort, {folder}: lines that align to their file name, peak-normalised")
        print(f"  {'line':<16} {'recorded dB':>11} {'effort':>6} {'tilt dB':>7} {'voiced':>6} {'F0 Hz':>5} "
              f"{'gap on':>6} {'off':>5}  phones")
        lines = []
        for path in sorted(folder.glob("*.ogg")):
            if NOT_WORDS.match(path.stem):
                continue
            samples = load_audio(path)[0]
            recorded = 20 * np.log10(np.percentile(np.abs(samples), 99.5) + 1e-9)
            samples = 0.5 * samples / np.abs(samples).max()
            try:
                speech = analyse_speech(samples, FPS, phones=True, transcript=line_text(path.stem))
            except TranscriptError:
                continue  # stretched game words ("Boooring"): no phones to trust
            e = vocal_effort(samples, speech.prosody, FPS)
            on, off = (lip_geometry(avatar, rigmap, generate(PhoneticEngine(effort=x), speech))[0].max()
                       for x in (True, False))
            lines.append((path.stem, recorded, e.level, on, off))
            print(f"  {path.stem:<16} {recorded:>11.1f} {e.level:>+6.2f} {e.tilt_db:>+7.1f} {e.voiced:>6.2f} "
                  f"{e.f0_hz:>5.0f} {on:>6.1f} {off:>5.1f}  {' '.join(p.name for p in speech.phones if p.name != 'SIL')}")
        if len(lines) < 6:
            print("  too few lines align")
            continue
        stems, recorded, level, on, off = (np.array(c) for c in zip(*lines))
        order = np.argsort(recorded)
        third = len(order) // 3
        quiet, loud = order[:third], order[-third:]
        print(f"  r(effort, recorded level) = {np.corrcoef(level, recorded)[0, 1]:.2f} over {len(lines)} lines")
        print(f"  quietest {third} as recorded ({', '.join(stems[quiet])}) against loudest {third} "
              f"({', '.join(stems[loud])}):")
        for name, gap in (("on ", on), ("off", off)):
            print(f"    effort {name}: widest gap {gap[quiet].mean():.1f} against {gap[loud].mean():.1f} mm, "
                  f"difference {gap[loud].mean() - gap[quiet].mean():.1f} mm")
        pair = {s: (a, b) for s, _, _, a, b in lines}
        if "Coward" in pair and "Ouch" in pair:  # one vowel (AW), said quietly and shouted
            print(f"  same vowel AW: 'coward' {pair['Coward'][0]:.1f} mm, 'ouch!' {pair['Ouch'][0]:.1f} mm "
                  f"(effort off: {pair['Coward'][1]:.1f}, {pair['Ouch'][1]:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", nargs="+", default=["phonetic"], choices=["phonetic", "learned"])
    parser.add_argument("--transcript", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--gain", action="store_true", help="also the same takes at -12 dB and +6 dB")
    parser.add_argument("--effort", nargs="*", type=Path, default=[], help="folders of quiet and loud lines")
    parser.add_argument("--no-lipsync", action="store_true", help="skip the main table")
    parser.add_argument("--only", nargs="+", default=[], help="these recordings (file names) alone")
    args = parser.parse_args()
    ONLY[:] = args.only

    from emoflame.core.flame.avatar import default_avatar
    from emoflame.core.flame.rigmap import rigmap_for_avatar

    avatar = default_avatar()
    rigmap = rigmap_for_avatar(avatar)
    if not args.no_lipsync:
        lipsync(args.engine, args.transcript, avatar, rigmap)
    if args.gain:
        gain(args.engine, [m for m in args.transcript if m != "auto"] or ["given"], avatar, rigmap)
    if args.effort:
        effort(args.effort, avatar, rigmap)


if __name__ == "__main__":
    main()

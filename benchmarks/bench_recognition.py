"""Automatic transcripts (Whisper tiny.en through faster-whisper) on real English recordings.

    python benchmarks/bench_recognition.py [--threads 2] [--prompts DIR --prompt-text FILE]

Prints, for arctic_a0007 and the Asterisk prompts in ../shared/data/speech:
- the model (folder, size, layers, vocabulary), import and load time (kept out of the rates);
- per recording: real-time factor of :func:`core.audio.recognition.transcribe`, word error rate
  against the reference text (both through ``transcript.words_of``, the words the aligner gets),
  whether ``align_phones`` accepts Whisper's text, the phone error rate of that alignment against
  the alignment to the reference, and bilabial (P, B, M) agreement between the two alignments;
- Whisper's word timings against the forced alignment's, with faster-whisper's VAD on and off;
- what non-speech (monkeys screaming, silence, noise) and Mandarin speech give;
- the word error rate of arctic_a0007 at -12 to -48 dB;
- the real-time factor on 60 s (Asterisk prompts joined end to end), and of aligning its words.

References: arctic_a0007 as in ../shared/data/README.md; the Asterisk prompts' scripts from
Debian's ``asterisk-core-sounds-en`` 1.6.1-1 (``/usr/share/doc/asterisk-core-sounds-en/
core-sounds-en.txt.gz``, CC BY-SA 3.0, recorded by Allison Smith), with numbers and letters
written as read and the script's words changed where the recording differs (see REFERENCES).

``align_phones`` rejects even the reference transcripts of the 8 kHz Asterisk prompts: its
stretched-word check (``phones.POOR_FIT``, -4 log-likelihood per frame, set on 16 kHz speech)
trips on one or two correct words per prompt (-4.1 to -4.7). The benchmark prints each objection
and, where that is the only one, measures the alignment with that check off.

``align_phones`` also lets pocketsphinx's RuntimeError ("Failed to stop utterance processing",
its second, phone-level pass) through on prompts whose speech starts or ends at the first or last
sample; the benchmark reports it as the objection.

``--prompts`` adds a held-out set, never used to choose a setting: every other prompt of Debian's
``asterisk-core-sounds-en-wav`` of 4 s or more whose script holds no digits and no bracketed
sound, scored against the script as it is (``apt-get download asterisk-core-sounds-en-wav
asterisk-core-sounds-en && dpkg -x`` both; DIR is ``usr/share/asterisk/sounds/en_US_f_Allison``,
FILE the unzipped ``core-sounds-en.txt``).
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SPEECH = DATA / "speech"

REFERENCES = {
    "arctic_a0007": "and you always want to see it in the superlative degree",
    # Script: "of perfect products"; read "of the perfect products" (Whisper, and the aligner
    # scores the recording higher with "the").
    "asterisk-basic-pbx-ivr-main": (
        "Thank you for calling Super Awesome Company, Waldo's premier provider of the perfect products. If you "
        "know your party's extension, you may dial it at any time. To establish a sales partnership, press one. "
        "To speak with a customer advocate, press two. For accounting and other receivables, press three. For a "
        "company directory, press four. For an operator, press zero."),
    # Script: "help you to get started"; read without "to" (Whisper and pocketsphinx's word recogniser).
    "asterisk-demo-congrats": (
        "Congratulations. You have successfully installed and executed the Asterisk open source P B X. You have "
        "also installed a set of sample sounds and configuration files that should help you get started. Like a "
        "normal P B X you will navigate this demonstration by dialing digits. If you are using a console channel "
        "driver instead of a real phone you can use the dial, answer, and hang up commands to simulate the "
        "actions of a standard telephone."),
    # Script: "Finally, you can press…" (not read: the alignment fails with it); 500, 600, 8500, 1234, 4242
    # read digit by digit (the aligner scores these readings highest; pocketsphinx hears "floor to floor to").
    "asterisk-demo-instruct": (
        "If you would like to learn more technical information about Asterisk dial two now. If you'd like to test "
        "out the voice over I P capabilities of Asterisk you can dial five zero zero to attempt an Inter-Asterisk "
        "Exchange or I A X connection to a demonstration server at Digium. In order for this test to work you "
        "will need to be connected to the Internet and have at least a twenty eight point eight kilobit modem. "
        "To execute an echo test dial six zero zero. This test is most useful when you have connected to this "
        "Asterisk server from a remote location. The sample configuration also has a single user with extension "
        "one two three four and password four two four two. That user is configured to ring the console when "
        "their extension is dialed. If you dial one two three four you can try to ring the console. If the "
        "console is busy or unavailable you will be given the option to leave voicemail. To check voice mail "
        "for the user dial extension eight five zero zero to enter the voicemail system. You can press the "
        "pound key to disconnect from the P B X."),
    "asterisk-priv-callee-options": (
        "Dial one if you wish this caller to reach you directly now, and in the future. Dial two if you wish to "
        "send this caller to voicemail now and forevermore. Dial three to send this caller to the torture menus, "
        "now and forevermore. Dial four to send this caller to a polite don't call menu, now and forevermore. "
        "Dial five to allow this caller to come straight through to you in the future, but just this once, send "
        "them to voicemail."),
}
NOT_SPEECH = "asterisk-tt-monkeys"  # the script: "[sound of monkeys screaming]"
BILABIALS = ("P", "B", "M")


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """Levenshtein distance between word lists over the reference's length."""
    distance = np.arange(len(hypothesis) + 1)
    for i, r in enumerate(reference, 1):
        previous, distance[0] = distance.copy(), i
        for j, h in enumerate(hypothesis, 1):
            distance[j] = min(previous[j] + 1, distance[j - 1] + 1, previous[j - 1] + (r != h))
    return float(distance[-1]) / len(reference)


def aligned_words(samples: np.ndarray, text: str) -> list[tuple[str, float, float]]:
    """(word, start s, end s) of pocketsphinx's word-level forced alignment (the first pass of
    ``align_phones``), silences and fillers left out."""
    from pocketsphinx import Decoder

    from emoflame.core.audio.phones import to_pcm16
    from emoflame.core.audio.transcript import guess_pronunciation, words_of

    decoder = Decoder(loglevel="FATAL")
    words = words_of(text)
    for word in set(words):
        if decoder.lookup_word(word) is None:
            decoder.add_word(word, guess_pronunciation(word), False)
    decoder.set_align_text(" ".join(words))
    decoder.start_utt()
    decoder.process_raw(to_pcm16(samples), full_utt=True)
    decoder.end_utt()
    return [(s.word.split("(")[0], s.start_frame / 100, (s.end_frame + 1) / 100) for s in decoder.seg() or []
            if not s.word.startswith(("<", "[", "+"))]


def timing_errors(reference: list[tuple[str, float, float]], hypothesis: list[tuple[str, float, float]]):
    """Start and end differences (s, hypothesis minus reference) of the words both lists share,
    matched in order."""
    import difflib

    matcher = difflib.SequenceMatcher(a=[w for w, _, _ in reference], b=[w for w, _, _ in hypothesis], autojunk=False)
    starts, ends = [], []
    for a, b, n in matcher.get_matching_blocks():
        for k in range(n):
            starts.append(hypothesis[b + k][1] - reference[a + k][1])
            ends.append(hypothesis[b + k][2] - reference[a + k][2])
    return np.array(starts), np.array(ends)


def whisper_word_times(words) -> list[tuple[str, float, float]]:
    """faster-whisper's words as the aligner's words ("1234" → one thousand …), each with its word's times."""
    from emoflame.core.audio.transcript import words_of

    return [(token, w.start, w.end) for w in words for token in words_of(w.word)]


def bilabial_agreement(reference, hypothesis) -> tuple[int, int, int, float]:
    """Of the reference alignment's bilabials: how many the hypothesis has as the same phone,
    overlapping in time; how many bilabials the hypothesis has that match none; and the median
    absolute onset difference (ms) of the matched ones."""
    ref = [p for p in reference if p.name in BILABIALS]
    hyp = [p for p in hypothesis if p.name in BILABIALS]
    onsets, used = [], set()
    for p in ref:
        match = [i for i, q in enumerate(hyp) if q.name == p.name and q.start < p.end and p.start < q.end and i not in used]
        if match:
            i = min(match, key=lambda i: abs(hyp[i].start - p.start))
            used.add(i)
            onsets.append(abs(hyp[i].start - p.start))
    return len(onsets), len(ref), len(hyp) - len(used), 1000 * float(np.median(onsets)) if onsets else float("nan")


def align(samples: np.ndarray, text: str):
    """``align_phones`` as it is; where only its stretched-word check objects (see the module
    docstring), the alignment with that check off, and the objection. Returns (phones or None,
    objection)."""
    from emoflame.core.audio import phones
    from emoflame.core.errors import TranscriptError

    try:
        return phones.align_phones(samples, text), ""
    except RuntimeError as exc:  # pocketsphinx's own, let through by align_phones
        return None, f"RuntimeError: {exc}"
    except TranscriptError as exc:
        objection = str(exc).split("(", 1)[1].rsplit(")", 1)[0]
        if "stretched" not in objection:
            return None, objection
    saved, phones.POOR_FIT = phones.POOR_FIT, -np.inf
    try:
        return phones.align_phones(samples, text), objection
    except RuntimeError as exc:
        return None, f"{objection}; then RuntimeError: {exc}"
    except TranscriptError as exc:
        return None, str(exc).split("(", 1)[1].rsplit(")", 1)[0]
    finally:
        phones.POOR_FIT = saved


def score(name: str, samples: np.ndarray, reference: str, threads: int) -> dict:
    from emoflame.core.audio.phones import phone_error_rate
    from emoflame.core.audio.recognition import transcribe
    from emoflame.core.audio.transcript import words_of

    duration = len(samples) / 16000
    start = time.perf_counter()
    result = transcribe(samples, threads=threads)
    rtf = (time.perf_counter() - start) / duration
    truth, truth_objection = align(samples, reference)
    start = time.perf_counter()
    auto, objection = align(samples, result.text)
    row = {"name": name, "seconds": duration, "rtf": rtf, "text": result.text,
           "wer": word_error_rate(words_of(reference), words_of(result.text)),
           "probability": float(np.mean([w.probability for w in result.words])),
           "align_s": time.perf_counter() - start, "objection": objection, "truth_objection": truth_objection,
           "aligned": auto is not None and truth is not None}
    if row["aligned"]:
        row.update(per=phone_error_rate(truth, auto), bilabials=bilabial_agreement(truth, auto))
    return row


def print_rows(rows: list[dict]) -> None:
    print(f"{'recording':<34} {'s':>5} {'RTF':>6} {'WER':>6} {'p(word)':>7} {'PER':>6} "
          f"{'bilabials same/ref (+extra), onset':>34}  align_phones on Whisper's text / on the reference")
    for r in rows:
        verdicts = f"{r['objection'] or 'accepted'} / {r['truth_objection'] or 'accepted'}"
        figures = (f"{r['per']:6.3f} {r['bilabials'][0]:>6}/{r['bilabials'][1]:<3} (+{r['bilabials'][2]}), "
                   f"{r['bilabials'][3]:3.0f} ms      " if r["aligned"] else f"{'-':>6} {'-':>34}")
        print(f"{r['name']:<34} {r['seconds']:5.1f} {r['rtf']:6.3f} {r['wer']:6.3f} {r['probability']:7.2f} "
              f"{figures}  {verdicts}")
    if len(rows) > 1:
        ok = [r for r in rows if r["aligned"]]
        print(f"all: {sum(r['seconds'] for r in rows):.0f} s; WER mean {np.mean([r['wer'] for r in rows]):.3f}; "
              f"PER mean {np.mean([r['per'] for r in ok]) if ok else float('nan'):.3f} over {len(ok)} of {len(rows)} "
              f"that align; bilabials {sum(r['bilabials'][0] for r in ok)}/{sum(r['bilabials'][1] for r in ok)} "
              f"(+{sum(r['bilabials'][2] for r in ok)}); align_phones accepts Whisper's text on "
              f"{sum(not r['objection'] for r in rows)}, the reference on {sum(not r['truth_objection'] for r in rows)}")
    print("(PER and bilabials: alignment to Whisper's words against alignment to the reference; where "
          "align_phones objects only that a word is stretched, both are taken with that check off.)")


def vad_comparison(recordings: dict[str, np.ndarray], threads: int) -> None:
    """Whisper's word timings against the forced alignment to the reference, VAD on and off."""
    from emoflame.core.audio.recognition import load_model

    model = load_model(threads=threads)
    print("\nWhisper word timings minus the forced alignment's (words both have), VAD off / on:")
    for vad in (False, True):
        starts, ends = [], []
        for name, samples in recordings.items():
            segments, _ = model.transcribe(samples, language="en", beam_size=1, temperature=0.0,
                                           condition_on_previous_text=False, vad_filter=vad, word_timestamps=True)
            hyp = whisper_word_times([w for s in segments for w in s.words])
            s, e = timing_errors(aligned_words(samples, REFERENCES[name]), hyp)
            starts.append(s)
            ends.append(e)
        s, e = np.concatenate(starts), np.concatenate(ends)
        print(f"  VAD {'on ' if vad else 'off'}: {len(s)} words; start median |d| {1000 * np.median(abs(s)):.0f} ms, "
              f"p90 {1000 * np.percentile(abs(s), 90):.0f} ms, bias {1000 * np.median(s):+.0f} ms; end median |d| "
              f"{1000 * np.median(abs(e)):.0f} ms, p90 {1000 * np.percentile(abs(e), 90):.0f} ms, "
              f"bias {1000 * np.median(e):+.0f} ms")
    monkeys = load(SPEECH / f"{NOT_SPEECH}.wav")
    for vad in (False, True):
        segments, _ = model.transcribe(monkeys, language="en", beam_size=1, temperature=0.0,
                                       condition_on_previous_text=False, vad_filter=vad, word_timestamps=True)
        words = [w for s in segments for w in s.words]
        mean = f", mean word probability {np.mean([w.probability for w in words]):.2f}" if words else ""
        print(f"  {NOT_SPEECH} (monkeys screaming), VAD {'on ' if vad else 'off'}: {len(words)} words{mean}: "
              f"{' '.join(w.word.strip() for w in words)[:70]!r}")


def non_speech(threads: int) -> None:
    from emoflame.core.audio.recognition import transcribe
    from emoflame.core.errors import TranscriptError

    rng = np.random.default_rng(0)
    cases = {
        f"{NOT_SPEECH}.wav": load(SPEECH / f"{NOT_SPEECH}.wav"),
        "3 s of digital silence": np.zeros(48000, np.float32),
        "3 s of white noise at -20 dBFS": (0.1 * rng.standard_normal(48000)).astype(np.float32),
    }
    for take in ("1114_3_15", "1114_3_16"):
        cases[f"{take}.wav (Mandarin)"] = load(DATA / "facegood" / "wav" / f"{take}.wav")
    print("\nWhat is not English speech:")
    for label, samples in cases.items():
        try:
            result = transcribe(samples, threads=threads)
        except TranscriptError as exc:
            print(f"  {label}: TranscriptError: {exc}")
            continue
        p = np.mean([w.probability for w in result.words])
        phones, objection = align(samples, result.text)
        verdict = f"align_phones raises TranscriptError ({objection})" if objection else "align_phones accepts it"
        if objection and phones is not None:
            verdict += ", aligns with that check off"
        print(f"  {label}: {len(result.words)} words, mean p {p:.2f}, {result.text[:60]!r}…; {verdict}")


def gains(samples: np.ndarray, reference: str, threads: int) -> None:
    """Word error rate of arctic_a0007 played quieter (a whispered or distant take, a low gain)."""
    from emoflame.core.audio.load import peak_dbfs
    from emoflame.core.audio.recognition import transcribe
    from emoflame.core.audio.transcript import words_of

    print("\narctic_a0007 at lower gains (load_audio refuses below -60 dBFS peak):")
    for gain in (-12, -24, -36, -48):
        quiet = (samples * 10 ** (gain / 20)).astype(np.float32)
        text = transcribe(quiet, threads=threads).text
        print(f"  {gain:+d} dB (peak {peak_dbfs(quiet):.0f} dBFS): WER {word_error_rate(words_of(reference), words_of(text)):.3f}")


def sixty_seconds(threads: int) -> None:
    from emoflame.core.audio.recognition import transcribe

    joined = np.concatenate([load(SPEECH / f"{n}.wav") for n in REFERENCES if n.startswith("asterisk")])[: 60 * 16000]
    start = time.perf_counter()
    result = transcribe(joined, threads=threads)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    phones, objection = align(joined, result.text)
    aligning = time.perf_counter() - start
    print(f"\n60 s (Asterisk prompts joined): transcribe {seconds:.2f} s, real-time factor {seconds / 60:.3f} "
          f"({len(result.words)} words); align_phones to its text {aligning:.2f} s, {aligning / 60:.3f} "
          f"({objection or 'accepted'}{'' if phones is not None else ', no alignment'})")


def held_out(prompts: Path, prompt_text: Path, threads: int) -> None:
    from emoflame.core.audio.load import load_audio

    scripts = {}
    for line in prompt_text.read_text(encoding="utf-8", errors="replace").splitlines():
        match = re.match(r"^([\w/-]+):\s*(.+)$", line.strip())
        if match:
            scripts[match.group(1)] = match.group(2)
    import soundfile

    rows = []
    for wav in sorted(prompts.rglob("*.wav")):
        name = wav.relative_to(prompts).with_suffix("").as_posix()
        text = scripts.get(name, "")
        if (name in {n.removeprefix("asterisk-") for n in REFERENCES} or not text or re.search(r"[\d\[]", text)
                or soundfile.info(str(wav)).duration < 4.0):
            continue
        rows.append(score(name, load_audio(wav)[0], text, threads))
    print(f"\nHeld out: {len(rows)} Debian Asterisk prompts (≥ 4 s, scripts without digits), against the script as written:")
    print_rows(rows)


def load(path: Path) -> np.ndarray:
    from emoflame.core.audio.load import load_audio

    return load_audio(path)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompts", type=Path, help="Debian's en_US_f_Allison folder (held-out set)")
    parser.add_argument("--prompt-text", type=Path, help="core-sounds-en.txt from asterisk-core-sounds-en")
    args = parser.parse_args()

    start = time.perf_counter()
    import faster_whisper  # noqa: F401  (timed: the import is part of a cold start)

    from emoflame.core.audio.recognition import load_model, model_folder, transcribe
    imported = time.perf_counter() - start
    start = time.perf_counter()
    model = load_model(threads=args.threads)
    loaded = time.perf_counter() - start
    folder = model_folder(None)
    blob = (folder / "model.bin").read_bytes()
    layers = {side: len(set(re.findall(rb"%s/layer_(\d+)/" % side.encode(), blob))) for side in ("encoder", "decoder")}
    vocabulary = sum(1 for _ in open(folder / "vocabulary.txt", encoding="utf-8"))
    print(f"model: {folder}\n  model.bin {len(blob) / 1e6:.1f} MB, encoder/decoder layers {layers['encoder']}/"
          f"{layers['decoder']}, mel bands {model.model.n_mels}, vocabulary {vocabulary}, multilingual "
          f"{model.model.is_multilingual}")
    print(f"  import faster_whisper + emoflame.core.audio.recognition {imported:.2f} s; load (int8, "
          f"{args.threads} threads) {loaded:.2f} s")

    recordings = {name: load(SPEECH / f"{name}.wav") for name in REFERENCES}
    start = time.perf_counter()
    transcribe(recordings["arctic_a0007"], threads=args.threads)
    print(f"  first transcribe call, arctic_a0007 (4 s; loads the VAD, warms CTranslate2): "
          f"{time.perf_counter() - start:.2f} s; the rates below are of later calls\n")
    rows = [score(name, samples, REFERENCES[name], args.threads) for name, samples in recordings.items()]
    print_rows(rows)
    for r in rows:
        print(f"  {r['name']}: {r['text']!r}")
    vad_comparison(recordings, args.threads)
    non_speech(args.threads)
    gains(recordings["arctic_a0007"], REFERENCES["arctic_a0007"], args.threads)
    sixty_seconds(args.threads)
    if args.prompts and args.prompt_text:
        held_out(args.prompts, args.prompt_text, args.threads)


if __name__ == "__main__":
    main()

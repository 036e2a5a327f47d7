"""Transcripts for forced alignment: text or a text file → dictionary words with pronunciations.

pocketsphinx aligns only to lowercase words of its dictionary (CMUdict, shipped in its wheel).
Punctuation goes, digits are spelled out, and a word the dictionary lacks (a name, a made-up
word) gets a letter-to-sound guess so that the alignment still covers it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import TranscriptError


MAX_INLINE_PATH = 255
"""A transcript argument this short that names an existing file is read as that file."""


def read_transcript(transcript: str | os.PathLike) -> str:
    """The text of a transcript given inline or as a path to a UTF-8 text file.

    Raises:
        TranscriptError: a file named (a path object, or one word ending in .txt, .lab or .text)
            is missing or unreadable, or the text holds no words.
    """
    text = str(transcript)
    path = Path(text)
    looks_like_a_file = isinstance(transcript, os.PathLike) or (" " not in text.strip() and path.suffix.lower() in (".txt", ".lab", ".text"))
    if looks_like_a_file and not path.is_file():
        raise TranscriptError(f"transcript file not found: {path} (check the path, or give the words themselves)")
    if isinstance(transcript, os.PathLike) or (len(text) <= MAX_INLINE_PATH and "\n" not in text and path.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TranscriptError(f"cannot read the transcript file {path} ({exc}); give UTF-8 text") from None
    if not words_of(text):
        raise TranscriptError(
            f"the transcript {text[:40]!r} has no words; give what is said, or leave the transcript out "
            f"to recognise the speech"
        )
    return text


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> list[str]:
    """English words for 0 ≤ n < 10⁹ ("42" → forty two)."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + (number_words(n % 10) if n % 10 else [])
    for size, name in ((10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            return number_words(n // size) + [name] + (number_words(rest) if rest else [])
    raise AssertionError(n)


def words_of(text: str, digits: bool = False, spell=lambda word: False) -> list[str]:
    """Lowercase words without punctuation, numbers spelled out (apostrophes kept: "don't";
    "28.8" → twenty eight point eight).

    Args:
        text: any text.
        digits: read numbers of three or more digits digit by digit ("1234" → one two three four),
            as phone numbers and extensions are read; else as cardinals.
        spell: called with each all-capital word of 2–5 letters ("PBX"); True spells it letter
            by letter (p b x), as acronyms are said.
    """
    words = []
    for token in re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)*|\d+(?:\.\d+)?", text):
        if token[0].isdigit():
            whole, _, fraction = token.partition(".")
            each = len(whole) >= 10 or (digits and len(whole) >= 3)
            words += [_ONES[int(d)] for d in whole] if each else number_words(int(whole))
            words += ["point", *(_ONES[int(d)] for d in fraction)] if fraction else []
        elif 2 <= len(token) <= 5 and token.isupper() and spell(token):
            words += list(token.lower())
        else:
            words.append(token.lower())
    return words


# Letter groups to CMU phones, longest first; a rough guess that only has to be close enough
# for the aligner to place the word's boundaries.
_LETTER_SOUNDS = [
    ("tch", "CH"), ("sch", "S K"), ("igh", "AY"), ("ough", "AO"),
    ("th", "TH"), ("sh", "SH"), ("ch", "CH"), ("ph", "F"), ("wh", "W"), ("ng", "NG"), ("ck", "K"),
    ("qu", "K W"), ("ee", "IY"), ("ea", "IY"), ("oo", "UW"), ("ou", "AW"), ("ow", "OW"),
    ("ai", "EY"), ("ay", "EY"), ("oi", "OY"), ("oy", "OY"), ("au", "AO"), ("aw", "AO"), ("ie", "IY"),
    ("er", "ER"), ("ir", "ER"), ("ur", "ER"), ("ar", "AA R"), ("or", "AO R"),
    ("a", "AE"), ("b", "B"), ("c", "K"), ("d", "D"), ("e", "EH"), ("f", "F"), ("g", "G"), ("h", "HH"),
    ("i", "IH"), ("j", "JH"), ("k", "K"), ("l", "L"), ("m", "M"), ("n", "N"), ("o", "AA"), ("p", "P"),
    ("q", "K"), ("r", "R"), ("s", "S"), ("t", "T"), ("u", "AH"), ("v", "V"), ("w", "W"), ("x", "K S"),
    ("y", "Y"), ("z", "Z"),
]


def guess_pronunciation(word: str) -> str:
    """CMU phones for a word the dictionary lacks, by letter groups ("zorblat" → Z AO R B L AE T)."""
    letters = re.sub(r"[^a-z]", "", word.lower())
    if letters.endswith("e") and len(letters) > 2:
        letters = letters[:-1]  # a silent final e
    phones, i = [], 0
    while i < len(letters):
        group, sound = next(((g, p) for g, p in _LETTER_SOUNDS if letters.startswith(g, i)), (letters[i], ""))
        if sound and not (phones and phones[-1] == sound):  # doubled letters ("ll") are one sound
            phones.append(sound)
        i += len(group)
    return " ".join(phones)

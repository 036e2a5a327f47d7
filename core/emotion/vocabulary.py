"""The emotion words emoflame reads: the 8 MEAD emotions and their common synonyms.

MEAD (Wang et al., ECCV 2020) records neutral, happy, sad, angry, fear(ful), disgusted,
surprised and contempt; the learned models are trained on these. Free text ("quietly furious")
is the learned text encoder's job; this vocabulary is the fixed list the phonetic engine knows.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import EmotionError

MEAD_EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised", "contempt")

SYNONYMS: dict[str, tuple[str, ...]] = {
    "neutral": ("calm", "none", "normal", "plain", "flat", "default", "relaxed"),
    "happy": ("happiness", "joy", "joyful", "glad", "cheerful", "pleased", "delighted", "content", "smiling", "amused"),
    "sad": ("sadness", "unhappy", "sorrowful", "upset", "down", "gloomy", "melancholy", "depressed", "grief", "crying"),
    "angry": ("anger", "mad", "furious", "annoyed", "irritated", "rage", "enraged", "cross", "irate", "frustrated"),
    "fearful": ("fear", "afraid", "scared", "frightened", "terrified", "anxious", "nervous", "worried", "panicked"),
    "disgusted": ("disgust", "grossed out", "revolted", "repulsed", "nauseated", "sickened"),
    "surprised": ("surprise", "astonished", "amazed", "shocked", "startled", "stunned"),
    "contempt": ("contemptuous", "scornful", "disdainful", "smug", "sneering", "dismissive"),
}

_LOOKUP = {word: emotion for emotion, words in SYNONYMS.items() for word in (emotion, *words)}


def canonical_emotion(word: str) -> str:
    """The MEAD emotion a word names: 'joyful' → 'happy', 'Mad' → 'angry', 'fear' → 'fearful'.

    Case and surrounding spaces are ignored.

    Raises:
        EmotionError: the word is not one of the 8 emotions or their synonyms; the message lists
            them.
    """
    key = " ".join(str(word).lower().split())
    if key in _LOOKUP:
        return _LOOKUP[key]
    choices = "; ".join(f"{e} ({', '.join(SYNONYMS[e][:4])}, …)" for e in MEAD_EMOTIONS)
    raise EmotionError(f"unknown emotion {word!r}; choose one of: {choices}")


@dataclass(frozen=True)
class Emotion:
    """An emotion as asked for, read once at the front door.

    Attributes:
        text: the words, whitespace-normalised ("quietly furious", "Joyful").
        name: the MEAD emotion they name (:func:`canonical_emotion`), or None for free text that
            only a text encoder can read.
    """

    text: str
    name: str | None


def read_emotion(words, free_text: bool = False) -> Emotion:
    """Read an emotion: one of the 8, a synonym, or (with ``free_text``) any description.

    Raises:
        EmotionError: empty words; or words that name none of the 8 when ``free_text`` is False
            (the message lists the choices).
    """
    text = " ".join(str(words).split()) if words is not None else ""
    if not text:
        raise EmotionError("the emotion is empty; give a word such as 'happy' or a phrase such as 'quietly furious'")
    try:
        return Emotion(text, canonical_emotion(text))
    except EmotionError:
        if not free_text:
            raise
        return Emotion(text, None)

"""The emotion words emoflame reads: the 8 MEAD emotions and their common synonyms.

MEAD (Wang et al., ECCV 2020) records neutral, happy, sad, angry, fear(ful), disgusted,
surprised and contempt; the learned models are trained on these. Free text ("quietly furious")
is the learned text encoder's job; this vocabulary is the fixed list the phonetic engine knows.
"""

from __future__ import annotations

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

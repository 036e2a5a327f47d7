"""Expression engines (speech + emotion + intensity → the 52 channels) and the layers every
engine gets (eyes, head). The interface is :class:`.engine.ExpressionEngine`; this module holds
only the catalogue, so the add-on's registration can list the engines without importing them."""

ENGINES: dict[str, str] = {
    "phonetic": "Visemes from aligned or recognised phones, the emotion as a FACS direction; needs no download",
    "learned": "The trained audio-to-expression transformer of Xu et al. (P, M and T); reads free-text emotions",
}
"""Engine name → one line on what it is (``--engine``, the panel, the preferences)."""

DEFAULT_ENGINE = "phonetic"
"""See README.md, "Engines", for the evaluation behind this choice."""

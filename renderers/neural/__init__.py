"""The neural keypoint renderer: photoreal frames of a portrait driven by an AnimationClip.

Our own PyTorch implementation of LivePortrait's released architecture (Guo et al.,
"LivePortrait: Efficient Portrait Animation with Stitching and Retargeting Control", arXiv
2407.03168, 2024; the face-vid2vid family the seed paper renders with), loading LivePortrait's
released weights. No upstream code is copied; the checkpoints' tensor names and shapes are
pinned by ``tests/fixtures/liveportrait_manifest.json`` (facts recorded from upstream commit
1986663, with the configuration they come from).

Modules:
    networks.py  F (appearance feature extractor), M (motion extractor, ConvNeXt V2-tiny), W
                 (warping module with the dense-motion network), G (SPADE generator), and the
                 stitching / eye / lip retargeting MLPs; configs as dataclasses (released defaults).
    layers.py    their building blocks.
    keypoints.py pose bins -> degrees, rotations, x = s·(x_c·R + δ) + t, stitching, retargeting.
    weights.py   ``load_liveportrait(folder, device)``: safe, checked loading (ModelFileError).
    driving.py   clip -> head pose, eye / lip ratios and expression weights -> driving keypoints.
    basis.py     the expression basis: M on renders of the default avatar per ARKit channel.
    crop.py      face landmarks (MediaPipe), LivePortrait's crop, paste-back.
    render.py    ``NeuralRenderer(weights).frames(clip, photo)`` -> uint8 frames.
    benchmark.py stage timings with untrained weights (timing only, never output).

Weights: not shipped and never downloaded. Put LivePortrait's release (its ``liveportrait/``
folder) where emoflame can find it and pass the folder or set
``EMOFLAME_LIVEPORTRAIT=/path/to/liveportrait_weights``::

    /path/to/liveportrait_weights/
        base_models/appearance_feature_extractor.pth
        base_models/motion_extractor.pth
        base_models/warping_module.pth
        base_models/spade_generator.pth
        retargeting_models/stitching_retargeting_module.pth

Without them the renderer raises one ModelFileError naming these files; it never renders with
untrained weights.

Licences: LivePortrait's code is MIT (KwaiVGI/LivePortrait, LICENSE). That LICENSE adds that
the InsightFace detection models its pipeline bundles are for non-commercial research only and
must be replaced for commercial use: emoflame never uses them (faces are found with MediaPipe
Face Landmarker, Apache-2.0), and the five files above are not among them. Users obtain the
weights themselves, under the terms of the release they take them from. The avatar that drives
the expressions is FLAME (CC BY 4.0) with ICT FaceKit shapes (MIT); see flame_assets/ATTRIBUTION.md.
"""

from ...core.lazy import lazy_attributes

_PUBLIC = {
    "NeuralRenderer": ".render",
    "load_liveportrait": ".weights",
    "LivePortraitModels": ".weights",
    "ENV_VAR": ".weights",
    "FILES": ".weights",
    "detect_face_landmarks": ".crop",
    "clip_drive": ".driving",
}

__all__ = sorted(_PUBLIC)

__getattr__ = lazy_attributes(__name__, _PUBLIC)

"""Time the FLAME layer: model-file loading, the batched LBS forward, and the FLAME rig-map fit.

    python benchmarks/bench_flame.py [--frames 1500] [--device cpu|cuda] [--threads 1]

The model is the synthetic FLAME of tests/flame_fixtures.py (real template, triangles, joint
regressor and landmark embedding; synthetic bases and weights with FLAME 2020's sizes), written
as a numpy pickle and as a chumpy pickle, so no real FLAME file is needed. Prints seconds for
each load, the forward's frames per second and its real-time factor at 30 fps, and the
rigmap_for_flame fit on the default avatar (uncached, then cached).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import emoflame  # noqa: E402
from emoflame.core.flame.model import load_flame_model  # noqa: E402
from emoflame.core.flame.rigmap import rigmap_for_flame  # noqa: E402
from flame_fixtures import synthetic_flame_arrays, write_chumpy_pickle, write_numpy_pickle  # noqa: E402


def _timed(function, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1500, help="frames per forward batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    arrays = synthetic_flame_arrays(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        numpy_file = write_numpy_pickle(arrays, Path(tmp) / "flame2023.pkl")
        chumpy_file = write_chumpy_pickle(arrays, Path(tmp) / "generic_model.pkl")
        print(f"load numpy pickle  {_timed(lambda: load_flame_model(numpy_file)):.2f} s")
        print(f"load chumpy pickle {_timed(lambda: load_flame_model(chumpy_file)):.2f} s")
        model = load_flame_model(numpy_file).to(args.device)

        frames = args.frames
        params = dict(expression=torch.randn(frames, 100, device=args.device),
                      jaw_pose=0.2 * torch.rand(frames, 3, device=args.device))
        with torch.no_grad():
            model(**params)  # warm-up
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()

            def forward():
                model(**params)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()

            seconds = _timed(forward, repeat=3)
        print(f"forward {frames} frames on {args.device}: {seconds:.3f} s, {frames / seconds:.0f} frames/s, "
              f"real-time factor {seconds / (frames / 30):.4f} at 30 fps")

        avatar = emoflame.default_avatar()
        cache = Path(tmp) / "cache"
        fit = _timed(lambda: rigmap_for_flame(model, avatar, cache_dir=cache))
        cached = _timed(lambda: rigmap_for_flame(model, avatar, cache_dir=cache))
        print(f"rigmap_for_flame on the default avatar: {fit:.1f} s to fit, {cached:.3f} s cached")


if __name__ == "__main__":
    main()

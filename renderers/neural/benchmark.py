"""Forward time of each LivePortrait stage at a given input size, with UNTRAINED weights.

Timing only: the networks are freshly initialised (their output is noise and is discarded), so
this runs anywhere without the released files. ``python -m emoflame.renderers.neural.benchmark
--sizes 256 512 --device cpu --repeat 2`` prints milliseconds per stage per image; 256 is
LivePortrait's own input (512² out), 512 shows how the cost grows with resolution.
"""

from __future__ import annotations

import argparse
import time

import torch

from .keypoints import Motion, rotation_matrix, transform_keypoints
from .weights import build_networks, resolve_device


def _timed(fn, device: torch.device, repeat: int) -> tuple[float, object]:
    fn()  # warm-up: allocator, cuDNN autotuning
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeat * 1000.0, out


@torch.no_grad()
def stage_times(size: int, device: torch.device, repeat: int = 2, batch: int = 1) -> dict[str, float]:
    """Milliseconds per image of F, M, W and G (and the MLPs) for (batch, 3, size, size) input."""
    nets = {k: v.eval().to(device) for k, v in build_networks().items()}
    x = torch.rand(batch, 3, size, size, device=device)
    times = {}
    times["F appearance"], feature = _timed(lambda: nets["appearance"](x), device, repeat)
    times["M motion"], raw = _timed(lambda: nets["motion"](x), device, repeat)
    m = Motion.from_raw(raw)
    kp = transform_keypoints(m.kp, rotation_matrix(*m.angles.unbind(-1)), m.exp, m.scale, m.t)
    times["W warping"], warped = _timed(lambda: nets["warping"](feature, kp, kp), device, repeat)
    times["G generator"], image = _timed(lambda: nets["generator"](warped["out"]), device, repeat)
    flat = torch.cat([kp.reshape(batch, -1)] * 2, dim=1)
    times["S+R MLPs"], _ = _timed(lambda: (nets["stitching"](flat), nets["lip"](flat[:, :65]),
                                          nets["eye"](flat[:, :66])), device, repeat)
    times["output"] = tuple(image.shape)
    return {k: (v / batch if isinstance(v, float) else v) for k, v in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device {device}, threads {torch.get_num_threads()}, batch {args.batch}, untrained weights (timing only)")
    for size in args.sizes:
        times = stage_times(size, device, args.repeat, args.batch)
        total = sum(v for v in times.values() if isinstance(v, float))
        cells = ", ".join(f"{k} {v:.1f} ms" if isinstance(v, float) else f"{k} {v}" for k, v in times.items())
        print(f"input {size}²: {cells}; per frame (W + G + MLPs) "
              f"{times['W warping'] + times['G generator'] + times['S+R MLPs']:.0f} ms; all stages {total:.0f} ms")


if __name__ == "__main__":
    main()

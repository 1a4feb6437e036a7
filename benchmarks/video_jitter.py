"""Jitter of tracked landmarks on still faces, with and without One-Euro smoothing.

    python -m benchmarks.video_jitter [--frames 90] [--noise 4] [--faces 20] [--model default]
                                      [--detector yunet] [--no-refine]

A still face filmed by a camera whose only change from frame to frame is
sensor noise: each ``lfpw/testset`` face (the first ``--faces``) is repeated
for ``--frames`` frames at 30 fps with fresh Gaussian noise of ``--noise``
grey levels added, and tracked by :class:`cascade.video.FaceTracker` on the
default pipeline (or the one the options make). Jitter
is the mean frame-to-frame movement of the points over the inter-ocular
distance (:func:`cascade.video.jitter`); the truth does not move, so every
bit of it is trembling. Also reported: the error of the mean tracked shape
(so that smoothing is seen not to buy stillness with accuracy).
"""
import argparse
import json
from pathlib import Path

import numpy as np

import cascade
from cascade.video import FaceTracker, jitter

from . import SCRATCH

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "300w"))
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--noise", type=float, default=4.0)
    parser.add_argument("--faces", type=int, default=20)
    parser.add_argument("--model", default="default")
    parser.add_argument("--detector", default="yunet")
    parser.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", default=str(SCRATCH / "video_jitter.json"),
                        help="the JSON summary (benchmarks/results/... to publish)")
    args = parser.parse_args(argv)
    faces = cascade.load_faces(Path(args.data) / "lfpw" / "testset", lazy=True).subset(slice(0, args.faces))
    pipeline = cascade.Pipeline(args.model, detector=args.detector, refiner=args.refine)
    rng = np.random.default_rng(0)
    results = {False: [], True: []}
    errors = {False: [], True: []}
    for image, truth in zip(faces.images, faces.shapes):
        frames = [np.clip(image + rng.normal(0, args.noise, image.shape), 0, 255).astype(np.uint8)
                  for _ in range(args.frames)]
        for smooth in (False, True):
            tracker = FaceTracker(pipeline, rate=30.0, smooth=smooth)
            tracked = [tracker(frame)[1] for frame in frames]
            if any(len(t) != 1 for t in tracked):
                continue        # the detector missed the face, or saw two: not a still single face
            shapes = np.array([t[0] for t in tracked])
            results[smooth].append(jitter(shapes))
            errors[smooth].append(cascade.nme(shapes.mean(axis=0)[None], truth[None])[0])
    summary = {"frames": args.frames, "noise": args.noise, "faces": len(results[True]), "model": args.model,
               "detector": args.detector, "refined": args.refine,
               "jitter_raw": float(np.mean(results[False])), "jitter_smoothed": float(np.mean(results[True])),
               "nme_of_mean_shape_raw": float(np.mean(errors[False])),
               "nme_of_mean_shape_smoothed": float(np.mean(errors[True]))}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(f"{summary['faces']} still faces x {args.frames} frames, noise {args.noise} grey levels, "
          f"{args.detector} + {args.model}{' + refiner' if args.refine else ''}:")
    print("| smoothing | jitter (% of inter-ocular per frame) | NME of the mean tracked shape (%) |")
    print("|---|---|---|")
    print(f"| none | {100 * summary['jitter_raw']:.3f} | {100 * summary['nme_of_mean_shape_raw']:.2f} |")
    print(f"| One-Euro | {100 * summary['jitter_smoothed']:.3f} | {100 * summary['nme_of_mean_shape_smoothed']:.2f} |")


if __name__ == "__main__":
    main()

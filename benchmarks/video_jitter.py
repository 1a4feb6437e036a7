"""Jitter of tracked landmarks on still faces, and lag on moving ones, with and without smoothing.

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

Moving faces: each face is pasted on a grey 1280 x 720 frame and eased 600 px
across it in 120 frames (up to 8 px a frame, 5 on average), tracked twice, with
and without smoothing; the lag is the mean distance between the smoothed and the
unsmoothed points over the inter-ocular distance, over the frames in motion
(20 to 100), and the error of each against the truth is reported too.
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
    lags, moving_errors, not_one = [], {False: [], True: []}, {False: 0, True: 0}
    eased = (1 - np.cos(np.pi * np.linspace(0, 1, 120))) / 2
    for image, truth in zip(faces.images, faces.shapes):
        tracked = {}
        for smooth in (False, True):
            tracker, shapes = FaceTracker(pipeline, rate=30.0, smooth=smooth), []
            for x in np.round(100 + 600 * eased).astype(int):
                frame = np.full((720, 1280, 3), 100, np.uint8)
                frame[200:200 + image.shape[0], x:x + image.shape[1]] = image
                found = tracker(frame)[1]
                shapes.append(found[0] if len(found) == 1 else np.full(truth.shape, np.nan))
            tracked[smooth] = np.array(shapes)
            truths = truth + np.stack([np.round(100 + 600 * eased), np.full(120, 200.0)], axis=1)[:, None]
            one = ~np.isnan(tracked[smooth]).any(axis=(1, 2))
            not_one[smooth] += int((~one).sum())
            if one.any():
                moving_errors[smooth].append(cascade.nme(tracked[smooth][one], truths[one]).mean())
        both = np.flatnonzero(~np.isnan(tracked[True] + tracked[False]).any(axis=(1, 2)))
        both = both[(both >= 20) & (both < 100)]
        if both.size == 0:
            continue                    # the detector never found this face in motion (counted above)
        distance = np.linalg.norm(tracked[True][both] - tracked[False][both], axis=2).mean(axis=1)
        lags.append(np.mean(distance / cascade.evaluate.normalizing_distance(tracked[False][both])))
    summary = {"frames": args.frames, "noise": args.noise, "faces": len(results[True]), "model": args.model,
               "detector": args.detector, "refined": args.refine,
               "jitter_raw": float(np.mean(results[False])), "jitter_smoothed": float(np.mean(results[True])),
               "nme_of_mean_shape_raw": float(np.mean(errors[False])),
               "nme_of_mean_shape_smoothed": float(np.mean(errors[True])),
               "moving_faces": len(lags), "lag_moving": float(np.mean(lags)),
               "nme_moving_raw": float(np.mean(moving_errors[False])),
               "nme_moving_smoothed": float(np.mean(moving_errors[True])),
               "moving_frames_without_one_face": {"raw": not_one[False], "smoothed": not_one[True]}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(f"{summary['faces']} still faces x {args.frames} frames, noise {args.noise} grey levels, "
          f"{args.detector} + {args.model}{' + refiner' if args.refine else ''}:")
    print("| smoothing | jitter (% of inter-ocular per frame) | NME of the mean tracked shape (%) |")
    print("|---|---|---|")
    print(f"| none | {100 * summary['jitter_raw']:.3f} | {100 * summary['nme_of_mean_shape_raw']:.2f} |")
    print(f"| smoothed | {100 * summary['jitter_smoothed']:.3f} | {100 * summary['nme_of_mean_shape_smoothed']:.2f} |")
    print(f"\n{summary['moving_faces']} faces easing across 720p: smoothed points "
          f"{100 * summary['lag_moving']:.2f} % of the inter-ocular distance from the unsmoothed ones; "
          f"NME {100 * summary['nme_moving_raw']:.2f} % unsmoothed, {100 * summary['nme_moving_smoothed']:.2f} % "
          f"smoothed; frames without exactly one face: {not_one[False]} and {not_one[True]} of {120 * len(faces)}")


if __name__ == "__main__":
    main()

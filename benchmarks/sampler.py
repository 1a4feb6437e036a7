"""Throughput of shape-indexed pixel sampling: compiled core against the NumPy reference.

    python -m benchmarks.sampler [--data ../shared/data/300w] [--repeats 5]

Real training faces (lfpw/trainset, decoded once, colour), each sampled from 20
initial shapes at 400 feature points, the workload of one ERT training stage
on those faces. Prints a Markdown table of the median time over the repeats.
"""
import argparse
import os
import platform
from pathlib import Path

import numpy as np

from cascade import load_faces
from cascade.features import frame_transforms, sample_pixels, sample_pixels_reference
from cascade.shapes import from_unit, mean_shape, sample_initial_indices, to_unit

from .timing import median_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "300w")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-init", type=int, default=20)
    parser.add_argument("--n-points", type=int, default=400)
    args = parser.parse_args(argv)

    faces = load_faces(Path(args.data) / "lfpw" / "trainset")
    rng = np.random.default_rng(0)
    boxes = faces.face_boxes()
    mean = mean_shape(faces.shapes)
    starts = sample_initial_indices(len(faces), args.n_init, rng).ravel()
    image_index = np.repeat(np.arange(len(faces)), args.n_init)
    sample_boxes = boxes[image_index]
    shapes = from_unit(to_unit(faces.shapes[starts], boxes[starts]), sample_boxes)
    transforms = frame_transforms(shapes, sample_boxes, mean)
    anchors = rng.integers(0, faces.n_landmarks, args.n_points)
    offsets = rng.uniform(-0.2, 0.2, (args.n_points, 2))
    images = list(faces.images)
    n_values = len(shapes) * args.n_points

    def run(function, **options):
        return lambda: function(images, shapes, transforms, anchors, offsets, image_index=image_index, **options)

    rows = [("NumPy reference", median_seconds(run(sample_pixels_reference), max(1, args.repeats // 2)))]
    for n_jobs in (1, 2):
        rows.append((f"compiled, {n_jobs} thread{'s' * (n_jobs > 1)}",
                     median_seconds(run(sample_pixels, n_jobs=n_jobs), args.repeats)))

    print(f"{len(faces)} faces x {args.n_init} starts x {args.n_points} points = {n_values:,} samples; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, NumPy {np.__version__}\n")
    print("| sampler | median time (ms) | million samples / s | speed-up |")
    print("|---|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {1000 * seconds:.1f} | {n_values / seconds / 1e6:.1f} | {rows[0][1] / seconds:.1f}x |")


if __name__ == "__main__":
    main()

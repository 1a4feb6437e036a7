"""dlib's own 68-point model, run by dlib and by cascade (``ERT.from_dlib``): same answers, speed.

    python -m benchmarks.from_dlib [--data ../shared/data/300w] [--repeats 5]

Reads ``shape_predictor_68_face_landmarks.dat`` from the ``face_recognition_models``
package, predicts every ``lfpw/testset`` face from its tight ground-truth box
(rounded, as dlib's rectangles are integers) on the grey image (dlib and cascade
turn colour into grey differently), and prints agreement and faces per second on
one thread. dlib returns whole pixels, so agreement is measured on rounded points.
"""
import argparse
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

import cascade

from .timing import median_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "300w")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    threadpool_limits(1)
    import dlib
    import face_recognition_models

    path = face_recognition_models.pose_predictor_model_location()
    started = time.perf_counter()
    model = cascade.ERT.from_dlib(path)
    read_seconds = time.perf_counter() - started
    faces = cascade.load_faces(Path(args.data) / "lfpw" / "testset")
    images = [cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) for image in faces.images]
    boxes = np.round(faces.face_boxes())
    predictor = dlib.shape_predictor(path)
    rectangles = [dlib.rectangle(*map(int, box)) for box in boxes]

    def run_dlib():
        return [predictor(image, rectangle) for image, rectangle in zip(images, rectangles)]

    theirs = np.array([[(p.x, p.y) for p in detection.parts()] for detection in run_dlib()], dtype=float)
    ours = model.predict(images, boxes)
    dlib_speed = len(images) / median_seconds(run_dlib, args.repeats)
    our_speed = len(images) / median_seconds(lambda: model.predict(images, boxes), args.repeats)
    our_single = len(images) / median_seconds(
        lambda: [model.predict(image, box) for image, box in zip(images, boxes)], args.repeats)

    print(f"{len(images)} faces of lfpw/testset, GT boxes, grey; {platform.machine()}, "
          f"{os.cpu_count()} cores; model read in {read_seconds:.1f} s "
          f"({model.n_stages} stages x {model.n_trees} trees of depth {model.tree_depth})\n")
    print(f"rounded points equal to dlib's: {np.mean(np.round(ours) == theirs) * 100:.2f} %; "
          f"largest |ours - dlib's rounded point|: {np.abs(ours - theirs).max():.4f} px\n")
    print("| predictor, one thread | faces / s | vs dlib |")
    print("|---|---|---|")
    for name, speed in (("dlib", dlib_speed), ("cascade, one face per call", our_single),
                        ("cascade, all faces in one call", our_speed)):
        print(f"| {name} | {speed:,.0f} | {speed / dlib_speed:.2f}x |")


if __name__ == "__main__":
    main()

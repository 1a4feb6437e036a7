"""MediaPipe Face Mesh timed and run on the inputs ``benchmarks/realtime.py`` prepares.

    <mediapipe venv>/bin/python benchmarks/mediapipe_peer.py SPEC.json OUT.json

Runs inside a virtual environment of its own (MediaPipe 0.10.21 pins NumPy 1.x and
OpenCV 4.11; the package never depends on it), so it imports nothing of the package:
SPEC names the photos (PNG files), the video (a .npy of BGR frames), the repeats and
the annotated crops, and OUT receives, per photo, the median milliseconds of a call
(BGR to RGB conversion included, as a user of MediaPipe pays it) and the faces found;
for the video, the mean milliseconds per frame in video mode; for each crop, the 468
points of each face found, in pixels.
"""
import json
import statistics
import sys
import time

import cv2
import mediapipe as mp
import numpy as np


def points_in_pixels(result, shape):
    height, width = shape[:2]
    return [[[p.x * width, p.y * height] for p in face.landmark] for face in (result.multi_face_landmarks or [])]


def main(spec_path, out_path):
    cv2.setNumThreads(1)
    spec = json.loads(open(spec_path).read())
    mesh = mp.solutions.face_mesh
    results = {"version": mp.__version__, "photos": {}, "crops": {}}
    with mesh.FaceMesh(static_image_mode=True, max_num_faces=spec["max_faces"]) as still:
        for name, path in spec["photos"].items():
            image = cv2.imread(path)
            found = still.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))      # the first call sets up
            times = []
            for _ in range(spec["repeats"]):
                started = time.perf_counter()
                found = still.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                times.append(time.perf_counter() - started)
            results["photos"][name] = {"ms": 1000 * statistics.median(times),
                                       "faces": len(found.multi_face_landmarks or [])}
        for name, path in spec["crops"].items():
            image = cv2.imread(path)
            results["crops"][name] = points_in_pixels(still.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)),
                                                      image.shape)
    frames = np.load(spec["video"])
    with mesh.FaceMesh(static_image_mode=False, max_num_faces=spec["max_faces"]) as moving:
        times, found = [], []
        for frame in frames:
            started = time.perf_counter()
            result = moving.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            times.append(time.perf_counter() - started)
            found.append(len(result.multi_face_landmarks or []))
    results["video"] = {"ms_per_frame": 1000 * float(np.mean(times[1:])), "frames": len(frames),
                        "frames_with_a_face": int(sum(n > 0 for n in found))}
    open(out_path, "w").write(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:3])

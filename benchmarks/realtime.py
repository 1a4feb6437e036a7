"""Photos and video in real time, one core each, against MediaPipe Face Mesh and dlib in the same run.

    python -m benchmarks.realtime [--out DIR] [--repeats 30] [--rounds 2] [--mediapipe-venv DIR] [--quick]

Inputs, made here: the astronaut (scikit-image) pasted on grey canvases of 640 x 480
(the photo 480 px tall), 1920 x 1080 (1080 px) and 4032 x 3024 (12 MP; 2000 px); a
720p video of 150 frames in which she (720 px, the frame's height: MediaPipe's
short-range detector finds her face, a third of her picture, only that large) eases
520 px across the frame; and the 224
crops of ``lfpw/testset`` for accuracy.

Each method runs in its own process pinned to one core (``taskset -c 0``), the
methods taking turns, ``--rounds`` times (each case's best round is kept):

- ours: the default ``cascade.Pipeline()`` (refiner on) per photo, already decoded;
  ``cascade.video.FaceTracker`` on the video, per frame;
- MediaPipe Face Mesh 0.10.21 (``benchmarks/mediapipe_peer.py``), static-image mode
  with its own detector per photo (BGR to RGB included), video mode on the video; in
  a virtual environment of its own (``--mediapipe-venv``, made with pip on first use);
- dlib: its HOG detector on the full photo and its 68-point ``shape_predictor``
  (``face_recognition_models``, the ``peers`` extra).

Accuracy on ``lfpw/testset``: inter-ocular NME of the face overlapping the annotated
one most (IoU >= 0.2; a miss is a failure), MediaPipe's 468 points mapped to the 68
of 300-W by the correspondence published by Peizhi Yan (``Mediapipe_2_Dlib_Landmarks``,
2024: each of the 68 points one mesh point or the mean of two). The mapping is
approximate: the mesh's jaw and brow points are not the 300-W annotation's, so
MediaPipe's figure carries that mismatch too.
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from . import SCRATCH, output_path

ROOT = Path(__file__).resolve().parents[1]
MEDIAPIPE = "mediapipe==0.10.21"
#: MediaPipe's mesh points for each 300-W point, in order (Peizhi Yan, Mediapipe_2_Dlib_Landmarks).
MEDIAPIPE_TO_IBUG68 = [
    [127], [234], [93], [132, 58], [58, 172], [136], [150], [176], [152], [400], [379], [365], [397, 288],
    [361], [323], [454], [356], [70], [63], [105], [66], [107], [336], [296], [334], [293], [300], [168, 6],
    [197, 195], [5], [4], [75], [97], [2], [326], [305], [33], [160], [158], [133], [153], [144], [362],
    [385], [387], [263], [373], [380], [61], [39], [37], [0], [267], [269], [291], [321], [314], [17], [84],
    [91], [78], [82], [13], [312], [308], [317], [14], [87]]
PHOTOS = {"640x480": ((640, 480), 480), "1080p": ((1920, 1080), 1080), "12MP": ((4032, 3024), 2000)}


def from_mediapipe(points):
    """300-W's 68 points from MediaPipe's 468 (``(468, 2)``), by :data:`MEDIAPIPE_TO_IBUG68`."""
    points = np.asarray(points, dtype=np.float64)
    return np.array([points[indices].mean(axis=0) for indices in MEDIAPIPE_TO_IBUG68])


def astronaut():
    from skimage import data
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def canvas(size, side, at=None):
    """The astronaut, ``side`` pixels square, on a grey canvas of ``size`` (width, height), centred
    or with her top-left corner at ``at``."""
    width, height = size
    image = np.full((height, width, 3), 128, np.uint8)
    x, y = at if at is not None else ((width - side) // 2, (height - side) // 2)
    image[y:y + side, x:x + side] = cv2.resize(astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    return image


def prepare(folder, data_root, frames, quick):
    """Write the inputs into ``folder``; returns the spec the workers read."""
    photos = {}
    for name, (size, side) in PHOTOS.items():
        photos[name] = str(folder / f"{name}.png")
        cv2.imwrite(photos[name], canvas(size, side))
    eased = (1 - np.cos(np.pi * np.linspace(0, 1, frames))) / 2
    video = np.stack([canvas((1280, 720), 720, (int(20 + 520 * t), 0)) for t in eased])
    np.save(folder / "video.npy", video)
    crops = sorted((Path(data_root) / "lfpw" / "testset").glob("*.jpg"))[:24 if quick else None]
    return {"photos": photos, "video": str(folder / "video.npy"), "max_faces": 5,
            "crops": {path.stem: str(path) for path in crops}}


# -- workers: each in its own process, on one core ---------------------------------------------

def work_ours(spec):
    import cascade
    from cascade.video import FaceTracker
    cv2.setNumThreads(1)
    pipeline = cascade.Pipeline()
    results = {"photos": {}, "crops": {}}
    for name, path in spec["photos"].items():
        image = cv2.imread(path)
        faces = pipeline(image)
        times = []
        for _ in range(spec["repeats"]):
            started = time.perf_counter()
            faces = pipeline(image)
            times.append(time.perf_counter() - started)
        results["photos"][name] = {"ms": 1000 * statistics.median(times), "faces": len(faces)}
    for name, path in spec["crops"].items():
        results["crops"][name] = [face.landmarks.tolist() for face in pipeline(cv2.imread(path))]
    frames = np.load(spec["video"])
    tracker, times, found = FaceTracker(pipeline), [], []
    for frame in frames:
        started = time.perf_counter()
        faces = tracker.track(frame)
        times.append(time.perf_counter() - started)
        found.append(len(faces))
    results["video"] = {"ms_per_frame": 1000 * float(np.mean(times[1:])), "frames": len(frames),
                        "frames_with_a_face": int(sum(n > 0 for n in found))}
    return results


def work_dlib(spec):
    import dlib
    # The file's place, without importing the package (it needs setuptools' pkg_resources).
    models = Path(importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]) / "models"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
    results = {"photos": {}}
    for name, path in spec["photos"].items():
        image = cv2.imread(path)

        def landmarks():
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            return [predictor(rgb, box) for box in detector(rgb, 0)]
        faces, times = landmarks(), []
        for _ in range(max(3, spec["repeats"] // 5)):        # dlib is slow: fewer repeats
            started = time.perf_counter()
            faces = landmarks()
            times.append(time.perf_counter() - started)
        results["photos"][name] = {"ms": 1000 * statistics.median(times), "faces": len(faces)}
    return results


WORKERS = {"ours": work_ours, "dlib": work_dlib}


def run_worker(kind, spec_path, out_path, mediapipe_python):
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    if kind == "mediapipe":
        command = [str(mediapipe_python), str(ROOT / "benchmarks" / "mediapipe_peer.py")]
    else:
        command = [sys.executable, "-m", "benchmarks.realtime", "--worker", kind]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENCV_LOG_LEVEL": "ERROR", "GLOG_minloglevel": "2",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([*pin, *command, str(spec_path), str(out_path)], check=True, cwd=ROOT, env=env,
                   stderr=subprocess.DEVNULL if kind == "mediapipe" else None)
    return json.loads(Path(out_path).read_text())


def mediapipe_python(venv):
    """The Python of a virtual environment holding MediaPipe 0.10.21, made on first use."""
    python = Path(venv) / "bin" / "python"
    if not python.is_file():
        print(f"making {venv} with {MEDIAPIPE} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", MEDIAPIPE], check=True)
    return python


# -- scoring --------------------------------------------------------------------------------------

def accuracy(crops, data_root, mapping=None):
    """NME (inter-ocular, %) over the faces found, and the share of crops above 8 % (misses included)."""
    import cascade
    from cascade.detect import match_detection
    from cascade.shapes import tight_boxes
    errors = []
    for name, faces in crops.items():
        truth = cascade.read_pts(Path(data_root) / "lfpw" / "testset" / f"{name}.pts")
        shapes = [from_mediapipe(face) if mapping else np.asarray(face) for face in faces]
        best = match_detection(tight_boxes(np.array(shapes)), tight_boxes(truth)) if shapes else -1
        errors.append(np.inf if best < 0 else cascade.nme(shapes[best][None], truth[None])[0])
    errors = np.array(errors)
    found = np.isfinite(errors)
    return {"faces": len(errors), "found": int(found.sum()), "nme": 100 * float(errors[found].mean()),
            "above_8": 100 * float((errors > 0.08).mean())}


def best_of(rounds):
    """Each case's fastest round (the machine is shared: the best round is the least disturbed)."""
    best = json.loads(json.dumps(rounds[0]))
    for result in rounds[1:]:
        for name, photo in result["photos"].items():
            if photo["ms"] < best["photos"][name]["ms"]:
                best["photos"][name] = photo
        if "video" in result and result["video"]["ms_per_frame"] < best["video"]["ms_per_frame"]:
            best["video"] = result["video"]
    return best


def table(results):
    names = list(PHOTOS)
    ours, theirs, dlib = results["ours"], results.get("mediapipe"), results.get("dlib")
    lines = ["| case | ours (ms) | MediaPipe (ms) | ours / MediaPipe, images/s | dlib HOG + shape_predictor (ms) "
             "| ours / dlib | faces found: ours, MediaPipe, dlib |", "|---|---|---|---|---|---|---|"]
    for name in names:
        mine = ours["photos"][name]
        peer = theirs["photos"][name] if theirs else None
        slow = dlib["photos"][name] if dlib else None
        lines.append(f"| {name} photo | {mine['ms']:.2f} | {peer['ms']:.2f} | **{peer['ms'] / mine['ms']:.2f}x** | "
                     if peer else f"| {name} photo | {mine['ms']:.2f} | - | - | ")
        lines[-1] += (f"{slow['ms']:.1f} | {slow['ms'] / mine['ms']:.1f}x | " if slow else "- | - | ")
        lines[-1] += f"{mine['faces']}, {peer['faces'] if peer else '-'}, {slow['faces'] if slow else '-'} |"
    video = ours["video"]
    peer = theirs["video"] if theirs else None
    lines.append(f"| 720p video, per frame (tracker / video mode) | {video['ms_per_frame']:.2f} | "
                 + (f"{peer['ms_per_frame']:.2f} | **{peer['ms_per_frame'] / video['ms_per_frame']:.2f}x** | "
                    if peer else "- | - | ")
                 + f"- | - | frames with the face: {video['frames_with_a_face']}, "
                 + f"{peer['frames_with_a_face'] if peer else '-'} of {video['frames']} |")
    lines += ["", "| lfpw/testset | faces found | NME inter-ocular (%) | faces above 8 % (misses included) |",
              "|---|---|---|---|"]
    for key, label in (("ours_accuracy", "ours, default pipeline"),
                       ("mediapipe_accuracy", "MediaPipe, 468 points mapped to 68 (approximate)")):
        if key in results:
            a = results[key]
            lines.append(f"| {label} | {a['found']} of {a['faces']} | {a['nme']:.2f} | {a['above_8']:.1f} |")
    return "\n".join(lines) + "\n"


def processor():
    """The processor's model name (Linux), else what the platform module says."""
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "300w"))
    parser.add_argument("--out", default=str(SCRATCH / "results"))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--mediapipe-venv", default=str(SCRATCH / "mediapipe-0.10.21"))
    parser.add_argument("--no-mediapipe", action="store_true", help="leave MediaPipe out (no venv is made)")
    parser.add_argument("--quick", action="store_true", help="a few repeats, frames and crops")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.worker:                                  # inside a pinned process: SPEC OUT
        spec_path, out_path = rest
        Path(out_path).write_text(json.dumps(WORKERS[args.worker](json.loads(Path(spec_path).read_text()))))
        return
    out = output_path(args.out, args.quick)
    out.mkdir(parents=True, exist_ok=True)
    repeats, frames = (3, 20) if args.quick else (args.repeats, args.frames)
    python = None if args.no_mediapipe else mediapipe_python(args.mediapipe_venv)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        spec = {**prepare(folder, args.data, frames, args.quick), "repeats": repeats}
        (folder / "spec.json").write_text(json.dumps(spec))
        rounds = {"ours": [], "mediapipe": [], "dlib": []}
        has_dlib = all(importlib.util.find_spec(name) for name in ("dlib", "face_recognition_models"))
        if not has_dlib:
            print("dlib or face_recognition_models is not installed (pip install '.[peers]'): dlib is left out")
        kinds = ["ours", *(["mediapipe"] if python else []), *(["dlib"] if has_dlib else [])]
        for round_index in range(1 if args.quick else args.rounds):
            for kind in kinds:
                if kind == "dlib" and round_index:
                    continue                     # dlib is ten times slower: one round tells
                print(f"round {round_index + 1}: {kind}", flush=True)
                rounds[kind].append(run_worker(kind, folder / "spec.json", folder / f"{kind}.json", python))
    results = {kind: best_of(found) for kind, found in rounds.items() if found}
    results["ours_accuracy"] = accuracy(rounds["ours"][0]["crops"], args.data)
    if python:
        results["mediapipe_accuracy"] = accuracy(rounds["mediapipe"][0]["crops"], args.data, mapping=True)
        results["mediapipe_version"] = rounds["mediapipe"][0]["version"]
    for kind in ("ours", "mediapipe"):
        results.get(kind, {}).pop("crops", None)
    results["machine"] = {"processor": processor(), "cores": os.cpu_count(),
                          "python": platform.python_version(), "opencv": cv2.__version__,
                          "date": datetime.date.today().isoformat(),
                          "command": "python -m benchmarks.realtime " + " ".join(argv or sys.argv[1:])}
    (out / "realtime.json").write_text(json.dumps(results, indent=1))
    (out / "realtime.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()

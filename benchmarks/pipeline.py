"""End to end: from JPEG files to landmarks, stage by stage, against dlib and the old Haar default.

    python -m benchmarks.pipeline [--cache DIR] [--out DIR] [--repeats 3] [--old-model OLD.npz] [--quick]

Photos, written once as JPEG files into ``--cache`` and decoded like a user's:

- ``lfpw/testset``: the 224 test crops (288 x 288, one annotated face each);
- canvases of 640 x 480, 1920 x 1080 and 4000 x 3000 (12 MP) pixels: natural
  backgrounds from scikit-image (a coffee cup, a rocket, a cat, textures) with
  the astronaut photo pasted, undistorted, 0 to 3 times at several sizes (her
  face from 3 % to 20 % of the image height); ``--quick``: 640 x 480 and 1080p.

Methods, each timed per stage (decode, detect, landmark, refine) on one thread,
the methods taking turns image by image so that they share the machine's state:

- the default pipeline, ``cascade.Pipeline()``: YuNet (on its default copy: 640 px until
  2026-12-06, 320 since), the bundled ``ert-68`` started from YuNet's five points, the int8 CNN
  refiner;
- the same without the refiner, and with ``lbf-68``;
- the same detecting on a 512 px copy instead of 640;
- the old default: OpenCV's Haar cascade and ``ert-68`` from its calibrated box
  (``--old-model``: the ert-68 file that shipped with it), no refiner;
- dlib: its HOG detector on the full image (no upsampling, dlib's fastest
  setting) and its ``shape_predictor`` trained on the same training faces and
  tight boxes by the benchmark suite (``--cache``: ``python -m benchmarks.run
  --methods dlib``), each HOG box calibrated to a tight box as ours are.

Faces: on the canvases a detection is the astronaut when its centre lies in her
face box and its size is within a factor 2 of it; every other detection is
false. On ``lfpw/testset`` the detection overlapping the annotated face's tight
box most (IoU >= 0.2) is that face, and its inter-ocular NME is scored; a face
missed counts as a failure (infinite error) in the AUC and failure rates; other
detections there may be other people in the crop and are counted apart. All
cores: the images of a set on a thread pool of that many threads, one image a
task, each method's total wall time.

Also, on ``lfpw/testset``: where the default landmarker starts (the mean shape
in a box, or placed on five points: true ones, or a detector's), the error of
that start itself, and what ert-68 and the refiner make of it.
"""
import argparse
import datetime
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from skimage import data as skdata
from threadpoolctl import threadpool_limits

import cascade
from cascade.data import read_image
from cascade.detect import HaarDetector, YuNetDetector, detect_faces, detections_of, match_detection
from cascade.evaluate import auc, failure_rate, nme
from cascade.schemes import IBUG68
from cascade.shapes import frames_from_points, from_unit, rotate_about_centre

from . import SCRATCH, output_path
from .run import DEFAULT_DATA
from .timing import median_seconds

#: The astronaut's face in scikit-image's 512 x 512 photo (YuNet's box, checked by eye).
ASTRONAUT_FACE = np.array([178.0, 63.0, 268.0, 176.0])
#: Canvas sizes (width, height).
CANVASES = {"640x480": (640, 480), "1080p": (1920, 1080), "12MP": (4000, 3000)}
#: Per canvas: a background, then the astronauts as (side / canvas height, left / width, top / height, mirrored).
LAYOUTS = [
    ("coffee", []),
    ("chelsea", []),
    ("rocket", [(0.8, 0.25, 0.1, False)]),
    ("grass", [(1.0, 0.1, 0.0, False)]),
    ("coffee", [(0.25, 0.6, 0.5, False)]),
    ("gravel", [(0.6, 0.05, 0.2, False), (0.35, 0.6, 0.1, True)]),
    ("rocket", [(0.45, 0.02, 0.05, False), (0.3, 0.4, 0.5, True), (0.2, 0.75, 0.2, False)]),
    ("brick", [(0.5, 0.45, 0.45, True)]),
]


def write_photos(folder, data, quick):
    """The photo sets: ``{set name: [(path, true face boxes (k, 4), true shapes or None)]}``."""
    folder.mkdir(parents=True, exist_ok=True)
    test = cascade.load_faces(Path(data) / "lfpw" / "testset", lazy=True)
    sets = {"lfpw/testset": [(path, box[None], shape[None]) for path, box, shape
                             in zip(test.images.paths, test.face_boxes(), test.shapes)]}
    astronaut = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    for size_name, (width, height) in list(CANVASES.items())[:2 if quick else None]:
        photos = []
        for index, (background, placed) in enumerate(LAYOUTS):
            canvas = getattr(skdata, background)()
            canvas = cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR if canvas.ndim == 3 else cv2.COLOR_GRAY2BGR)
            canvas = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_LINEAR)
            boxes = []
            for side_share, left_share, top_share, mirrored in placed:
                side = int(side_share * height)
                left, top = int(left_share * width), int(top_share * height)
                photo = cv2.resize(astronaut[:, ::-1] if mirrored else astronaut, (side, side),
                                   interpolation=cv2.INTER_AREA)
                canvas[top:top + side, left:left + side] = photo[:height - top, :width - left]
                face = ASTRONAUT_FACE * side / 512
                if mirrored:
                    face = np.array([side - face[2], face[1], side - face[0], face[3]])
                boxes.append(face + [left, top, left, top])
            path = folder / f"{size_name}-{index}.jpg"
            if not path.exists():
                cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])
            photos.append((path, np.array(boxes).reshape(-1, 4), None))
        sets[size_name] = photos
    return sets


class Ours:
    """A :class:`cascade.Pipeline`, its stages timed apart."""

    def __init__(self, name, pipeline):
        self.name, self.pipeline = name, pipeline

    def stages(self, path):
        """``(faces [(box, landmarks)], {stage: seconds})`` for one photo file."""
        clock = [time.perf_counter()]
        image = read_image(path)
        clock.append(time.perf_counter())
        found = detections_of(self.pipeline.detector(image))
        clock.append(time.perf_counter())
        images = [image] * len(found.boxes)
        pipeline = self.pipeline
        shapes = pipeline.landmarker.predict(images, **pipeline.starts(found.boxes, found.points))
        clock.append(time.perf_counter())
        if pipeline.refiner is not None:
            shapes = pipeline.refiner.predict(images, shapes)
        clock.append(time.perf_counter())
        return list(zip(found.boxes, shapes)), dict(zip(("decode", "detect", "landmark", "refine"), np.diff(clock)))

    def __call__(self, path):
        return [(face.box, face.landmarks) for face in self.pipeline(read_image(path))]


class Dlib:
    """dlib's HOG detector (full image, no upsampling) and a shape_predictor file trained on tight
    boxes: each HOG rectangle is mapped to the tight box it stands for by the same calibration
    the bundled models store for dlib's boxes, as ours are."""

    def __init__(self, name, model_path, calibration):
        import dlib
        self.name, self.dlib, self.calibration = name, dlib, calibration
        self.predictor = dlib.shape_predictor(str(model_path))
        self.detector = dlib.get_frontal_face_detector()

    def stages(self, path):
        clock = [time.perf_counter()]
        image = cv2.cvtColor(read_image(path), cv2.COLOR_BGR2RGB)          # dlib reads RGB
        clock.append(time.perf_counter())
        rectangles = self.detector(image, 0)
        clock.append(time.perf_counter())
        boxes = np.array([(r.left(), r.top(), r.right(), r.bottom()) for r in rectangles], float).reshape(-1, 4)
        tight = [self.dlib.rectangle(*map(int, np.round(box))) for box in self.calibration.apply(boxes)]
        shapes = [[(p.x, p.y) for p in self.predictor(image, r).parts()] for r in tight]
        clock.append(time.perf_counter())
        faces = [(np.array(box, float), np.array(shape, float)) for box, shape in zip(boxes, shapes)]
        return faces, dict(zip(("decode", "detect", "landmark"), np.diff(clock)), refine=0.0)

    def __call__(self, path):
        return self.stages(path)[0]


def make_methods(args):
    methods = [Ours("cascade default (YuNet, ert-68 from 5 points, int8 refiner)", cascade.Pipeline()),
               Ours("cascade, no refiner", cascade.Pipeline(refiner=False)),
               Ours("cascade lbf-68 + refiner", cascade.Pipeline("lbf-68")),
               Ours("cascade default, detecting on a 512 px copy",
                    cascade.Pipeline(detector_options={"max_side": 512}))]
    old = cascade.ERT.load(args.old_model) if args.old_model else "default"
    try:
        methods.append(Ours("old default (Haar, ert-68 from its box)",
                            cascade.Pipeline(old, detector="haar", start="box", refiner=False)))
    except ImportError as error:                  # OpenCV 5 has no Haar cascades
        print(f"the old default is left out: {error}", flush=True)
    dlib_model = Path(args.cache) / ("quick" if args.quick else "full") / "dlib.dat"
    if dlib_model.is_file():
        calibration = cascade.load_model("default").box_calibrations_["dlib-hog"]
        methods.append(Dlib("dlib HOG + shape_predictor (same training faces)", dlib_model, calibration))
    else:
        print(f"no dlib model at {dlib_model}: train it with python -m benchmarks.run --methods dlib "
              f"--cache {args.cache}; dlib is left out", flush=True)
    return methods


def face_counts(found_boxes, true_boxes):
    """``(found, missed, false)``: the canvas rule of the module's docstring."""
    matched, false = set(), 0
    for box in found_boxes:
        centre, size = (box[:2] + box[2:]) / 2, np.sqrt(np.prod(box[2:] - box[:2]))
        hits = [k for k, truth in enumerate(true_boxes)
                if k not in matched and (truth[:2] <= centre).all() and (centre <= truth[2:]).all()
                and 0.5 < size / np.sqrt(np.prod(truth[2:] - truth[:2])) < 2]
        if hits:
            matched.add(hits[0])
        else:
            false += 1
    return len(matched), len(true_boxes) - len(matched), false


def run_set(methods, photos, repeats, n_threads):
    """Every method on one photo set: stage times (median over repeats), faces, landmarks."""
    seconds = {m.name: {stage: [] for stage in ("decode", "detect", "landmark", "refine")} for m in methods}
    faces = {}
    for _ in range(repeats):
        totals = {m.name: dict.fromkeys(("decode", "detect", "landmark", "refine"), 0.0) for m in methods}
        for path, _, _ in photos:
            for method in methods:                       # taking turns photo by photo
                faces[method.name, path], times = method.stages(path)
                for stage, value in times.items():
                    totals[method.name][stage] += value
        for name, stages in totals.items():
            for stage, value in stages.items():
                seconds[name][stage].append(value)
    rows = {}
    for method in methods:
        stages = {stage: float(np.median(values)) for stage, values in seconds[method.name].items()}
        started = time.perf_counter()
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(method, [path for path, _, _ in photos]))
        wall = time.perf_counter() - started
        rows[method.name] = {"ms_per_image": {k: 1000 * v / len(photos) for k, v in stages.items()},
                             "images_per_second_1_thread": len(photos) / sum(stages.values()),
                             "images_per_second_all_cores": len(photos) / wall,
                             "per_turn_seconds": {k: [float(x) for x in v] for k, v in seconds[method.name].items()}}
    return rows, faces


def score(rows, faces, photos):
    for name, row in rows.items():
        found = missed = false = 0
        errors = []
        for path, true_boxes, true_shapes in photos:
            detected = faces[name, path]
            if true_shapes is None:
                counts = face_counts([box for box, _ in detected], true_boxes)
                found, missed, false = found + counts[0], missed + counts[1], false + counts[2]
                continue
            best = match_detection(np.array([box for box, _ in detected]).reshape(-1, 4), true_boxes[0])
            if best < 0:
                missed += 1
                errors.append(np.inf)
            else:
                found += 1
                false += len(detected) - 1
                errors.append(float(nme(detected[best][1][None], true_shapes)[0]))
        row.update(found=found, missed=missed, false_detections=false)
        if errors:
            errors = np.array(errors)
            row.update(nme=float(np.mean(errors[np.isfinite(errors)])), auc_008=auc(errors, 0.08),
                       failure_008=failure_rate(errors, 0.08), failure_010=failure_rate(errors, 0.10))


def turn_seconds(row):
    """A method's seconds for the whole set in each turn, all stages together."""
    return np.sum(list(row["per_turn_seconds"].values()), axis=0)


def starts(photos):
    """Where the default pipeline's landmarker starts, and what each start gives, on the test faces:
    ``{start: {"faces", "start", "ert-68", "ert-68 + refiner", "ert-68 faces/s"}}`` (inter-ocular
    NME; faces/s of ert-68 alone on one thread, all faces in one call, median of 5). The start is
    the mean shape placed in a box, or on five points (:func:`cascade.shapes.frames_from_points`);
    a detector's boxes and points are those matching each face, mapped by ert-68's calibrations."""
    images = [read_image(path) for path, _, _ in photos]
    truth = np.concatenate([shapes for _, _, shapes in photos])
    pipeline = cascade.Pipeline()
    model = pipeline.landmarker
    kinds = {"true tight box": ("boxes", np.concatenate([boxes for _, boxes, _ in photos])),
             "true five points": ("points", IBUG68.five_points(truth))}
    detectors = {"yunet": YuNetDetector()}
    if hasattr(cv2, "CascadeClassifier"):
        detectors["haar"] = HaarDetector()
    for name, detector in detectors.items():
        boxes, points = detect_faces(detector, images, truth)
        kinds[f"{name} box, calibrated"] = ("boxes", model.box_calibrations_[name].apply(boxes))
        if points is not None:
            kinds[f"{name} points"] = ("points", points)
            calibrated = model.point_calibrations_[name].apply(points)
            kinds[f"{name} points, calibrated (the default)"] = ("points", calibrated)
    result = {}
    for label, (kind, values) in kinds.items():
        found = np.flatnonzero(~np.isnan(values).reshape(len(values), -1).any(axis=1))
        faces, where, shapes = [images[i] for i in found], values[found], truth[found]
        if kind == "boxes":
            start = from_unit(np.broadcast_to(model.mean_shape_, shapes.shape), where)
        else:
            frames, rolls = frames_from_points(IBUG68.five_points(model.mean_shape_), where)
            start = from_unit(rotate_about_centre(model.mean_shape_, rolls), frames)
        landmarks = model.predict(faces, **{kind: where})
        seconds = median_seconds(lambda: model.predict(faces, **{kind: where}), 5)
        result[label] = {"faces": len(found), "start": float(nme(start, shapes).mean()),
                         "ert-68": float(nme(landmarks, shapes).mean()),
                         "ert-68 + refiner": float(nme(pipeline.refiner.predict(faces, landmarks), shapes).mean()),
                         "ert-68 faces/s": len(found) / seconds}
    return result


def write(args, results):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    command = "python -m benchmarks.pipeline " + " ".join(args.argv)
    (out / "pipeline.json").write_text(json.dumps({"date": datetime.date.today().isoformat(), "machine": machine,
                                                   "command": command, **results}, indent=1))
    lines = [f"{datetime.date.today()}, {machine}. Command: `{command}`", ""]
    header = ("| photos | method | decode | detect | landmark | refine | images/s, 1 thread | vs dlib | "
              f"images/s, {args.threads} threads | faces found | missed | false (testset: other faces) | NME (%) | "
              "fail@0.08 (%) |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for set_name, rows in results["sets"].items():
        for name, row in rows.items():
            ms = row["ms_per_image"]
            lines.append("| " + " | ".join([
                set_name, name, *(f"{ms[k]:.1f}" for k in ("decode", "detect", "landmark", "refine")),
                f"{row['images_per_second_1_thread']:.1f}",
                f"{row['vs_dlib']:.1f}x" if "vs_dlib" in row else "-",
                f"{row['images_per_second_all_cores']:.1f}", str(row["found"]), str(row["missed"]),
                str(row["false_detections"]), f"{100 * row['nme']:.2f}" if "nme" in row else "-",
                f"{100 * row['failure_008']:.2f}" if "failure_008" in row else "-"]) + " |")
    lines += ["", "Stage times in ms per image, one thread.", "",
              "Where ert-68 starts on lfpw/testset, inter-ocular NME (%):", "",
              "| start | faces | the start itself | ert-68 | ert-68 + refiner | ert-68 faces/s, 1 thread |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {label} | {row['faces']} | {100 * row['start']:.2f} | {100 * row['ert-68']:.2f} | "
              f"{100 * row['ert-68 + refiner']:.2f} | {row['ert-68 faces/s']:,.0f} |"
              for label, row in results["starts"].items()]
    (out / "pipeline.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the 300-W folder (its lfpw/testset is read)")
    parser.add_argument("--cache", default=str(SCRATCH),
                        help="the photos, and the benchmark suite's trained dlib model")
    parser.add_argument("--out", default=str(SCRATCH / "pipeline"),
                        help="where pipeline.md and pipeline.json go (benchmarks/results to publish)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--old-model", help="the ert-68.npz of the old default, for its row")
    parser.add_argument("--quick", action="store_true", help="30 test faces, two canvas sizes, one repeat")
    args = parser.parse_args(argv)
    output_path(args.out, args.quick)
    args.argv = argv if argv is not None else __import__("sys").argv[1:]
    threadpool_limits(1)
    cv2.setNumThreads(1)
    sets = write_photos(Path(args.cache) / "photos", args.data, args.quick)
    if args.quick:
        sets["lfpw/testset"] = sets["lfpw/testset"][:30]
        args.repeats = 1
    methods = make_methods(args)
    results = {"sets": {}, "starts": starts(sets["lfpw/testset"])}
    for set_name, photos in sets.items():
        print(f"{set_name}: {len(photos)} photos", flush=True)
        rows, faces = run_set(methods, photos, args.repeats, args.threads)
        score(rows, faces, photos)
        dlib = next((m.name for m in methods if isinstance(m, Dlib)), None)
        for row in rows.values() if dlib else ():
            row["vs_dlib"] = float(np.median(turn_seconds(rows[dlib]) / turn_seconds(row)))
        results["sets"][set_name] = rows
    write(args, results)


if __name__ == "__main__":
    main()

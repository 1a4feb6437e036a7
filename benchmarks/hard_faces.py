"""Hard faces held out: the families side by side on a validation split of the training folders.

    python -m benchmarks.hard_faces --data ../shared/data/300w [--work WORK] [--out benchmarks/results] \
        [--refiner NAME=GLOBAL.onnx,LOCAL.onnx ...] [--mirror] [--families ...] [--quick]

The split: the 200 training faces that ``python -m cnn_refine.train`` holds out of the refiner's
networks (seed 0). The cascades are trained here on the other 1,812 faces (cached in ``WORK``):
ert-68 and lbf-68 by the bundled models' recipe (``cascade fit --point-share 1 --compress``, LBF's
fast preset), ESR and ASM from boxes with their defaults, as the suite trains them; so no model
measured has seen a face of the split. ``lfpw/testset`` is not read.

Each face is measured as it is and made hard (:func:`cnn_refine.hard.made_hard`, drawn with a fixed
seed): turned in the image plane by 15-60 degrees, low resolution (shrunk to 28-55 %: faces of
40-80 px, and blown up again), blurred (sigma 2-5 px), a quarter of the face hidden, JPEG at quality
5; "large pose" is the quarter of the split turned furthest from frontal (nose tip off the eye
corners' midline, from the annotations), as it is.

Starts: the pipeline (YuNet finds the face, a miss is a failure of infinite error), and the
face's tight box (a box given to the pipeline, which looks for YuNet's five points near it: the
scikit-learn style ``predict`` route), each with and without the refiner; and the CNN alone
(:meth:`cascade.Refiner.predict_from_boxes` on the tight box); ``--mirror`` adds each refiner
with ``mirror=True``. ESR and ASM start from YuNet's calibrated box (they were trained from boxes)
and are refined by the first refiner only. NME is inter-ocular; "> 8 %" the share of faces above
8 % (misses included). Speed: the landmark stage (no detector) on the faces as they are, from
YuNet's five points, one thread, microseconds a face.
"""
import argparse
import datetime
import functools
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from sklearn.base import clone
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import cascade
from benchmarks import SCRATCH, output_path
from benchmarks.methods import QUICK
from cascade.data import SHARED_300W_TRAIN
from cascade.detect import detect_faces, make_detector
from cascade.evaluate import failure_rate, plot_ced
from cascade.shapes import tight_boxes
from cascade.training import train_landmarker
from cnn_refine.hard import made_hard
from cnn_refine.train import held_out_faces

N_SPLIT = 200
#: The kinds measured: name -> (made_hard kind, its keywords).
KINDS = {"as it is": ("none", {}), "turned 15-60°": ("rotate", {"turn": (15, 60)}),
         "low resolution": ("small", {"shrink": (0.28, 0.55)}), "blurred": ("blur", {}),
         "a quarter hidden": ("occlude", {}), "JPEG 5": ("jpeg", {})}
LARGE_POSE = "large pose"
#: name -> (estimator, share of faces started from five points): the bundled models' recipes
#: (ert-68, lbf-68: every face from five points, leaves compressed), and the suite's other
#: families from boxes with their defaults.
RECIPES = {"ert-68": (cascade.ERT(random_state=0, n_jobs=2), 1.0),
           "lbf-68": (cascade.LBF(preset="fast", random_state=0, n_jobs=2), 1.0),
           "ESR": (cascade.ESR(random_state=0, n_jobs=2), 0.0),
           "ASM": (cascade.ASM(), 0.0)}
BUNDLED = ("ert-68", "lbf-68")


def split(data, quick=False):
    """``(held-out FaceSet, the rest)`` of the training folders (``quick``: 12 and 120 of them)."""
    faces = cascade.load_faces(*(Path(data) / folder for folder in SHARED_300W_TRAIN), lazy=quick)
    held = np.sort(held_out_faces(np.random.default_rng(0), len(faces), N_SPLIT))
    rest = np.setdiff1d(np.arange(len(faces)), held)
    if quick:
        held, rest = held[:12], rest[:120]
    return faces.subset(held), faces.subset(rest)


def yaw_proxy(shapes):
    """How far each face is turned from frontal: the nose tip's offset from the outer eye corners'
    midline, in inter-ocular distances (0 frontal, about 0.5 for a profile)."""
    left, right, nose = shapes[:, 36], shapes[:, 45], shapes[:, 30]
    axis = right - left
    iod = np.linalg.norm(axis, axis=1)
    return np.abs(np.einsum("ij,ij->i", nose - (left + right) / 2, axis) / iod ** 2)


def validation_models(train, work, families, quick=False):
    """``{name: (model, start)}``: the ``families`` of :data:`RECIPES` trained on ``train`` by their
    recipes (cached in ``work``; ``quick``: shrunk as the suite's ``--quick`` shrinks them, not
    cached) and the pipeline start each was trained for."""
    models = {}
    for name in families:
        estimator, point_share = RECIPES[name]
        path = Path(work) / f"{name}-without-split{'-quick' if quick else ''}.npz"
        estimator = clone(estimator)            # the recipe itself stays unfitted
        if quick:
            estimator.set_params(**QUICK[type(estimator)])
        if quick or not path.is_file():
            started = time.time()
            model = train_landmarker(estimator, list(train.images), train.shapes, point_share=point_share,
                                     detectors=("yunet",), compress=point_share > 0, seed=0, n_jobs=2)
            path.parent.mkdir(parents=True, exist_ok=True)
            model.save(path)
            print(f"trained {name} on {len(train)} faces in {(time.time() - started) / 60:.1f} min", file=sys.stderr)
        models[name] = (cascade.load_model(path), "auto" if point_share else "box")
    return models


def hard_sets(faces):
    """``{kind: (images, shapes)}``: every face of ``faces`` made hard in each way, and the large poses."""
    sets = {}
    for k, (name, (kind, options)) in enumerate(KINDS.items()):
        rng = np.random.default_rng(100 + k)
        made = [made_hard(image, shape, kind, rng, **options) for image, shape in zip(faces.images, faces.shapes)]
        sets[name] = ([image for image, _ in made], np.stack([shape for _, shape in made]))
    yaw = yaw_proxy(faces.shapes)
    turned = np.flatnonzero(yaw >= np.quantile(yaw, 0.75))
    sets[LARGE_POSE] = ([faces.images[i] for i in turned], faces.shapes[turned])
    return sets


def pipeline_errors(pipeline, images, shapes):
    """Per-face NME of ``pipeline``'s landmarks of each annotated face as its detector finds it
    (:meth:`cascade.Pipeline.annotated_faces`, the protocol of ``cascade evaluate --detector``),
    inf where it finds none."""
    found = pipeline.annotated_faces(images, shapes)
    hit = ~np.isnan(found[:, 0, 0])
    errors = np.full(len(images), np.inf)
    errors[hit] = cascade.nme(found[hit], shapes[hit])
    return errors


def methods(models, refiners):
    """``{name: per-face errors of (images, shapes)}`` callables: each cascade
    from the pipeline and from tight boxes, without a refiner and with each (the families beyond the
    bundled ones with the first only), and each refiner's CNN alone."""
    found = {}
    for model_name, (model, start) in models.items():
        tried = refiners if model_name in BUNDLED else dict(list(refiners.items())[:1])
        for refiner_name, refiner in {"": None, **tried}.items():
            pipeline = cascade.Pipeline(model, refiner=refiner or False, start=start, quality=False)
            suffix = f" + {refiner_name}" if refiner_name else ""
            found[f"{model_name}{suffix}, pipeline"] = functools.partial(pipeline_errors, pipeline)
            found[f"{model_name}{suffix}, tight box"] = lambda images, shapes, p=pipeline: cascade.nme(
                p.landmarks_of(images, boxes=tight_boxes(shapes)), shapes)
    for refiner_name, refiner in refiners.items():
        found[f"{refiner_name} alone, tight box"] = lambda images, shapes, r=refiner: cascade.nme(
            r.predict_from_boxes(images, tight_boxes(shapes)), shapes)
    return found


def landmark_speed(models, refiners, faces):
    """Microseconds a face of the landmark stage from YuNet's five points (no detector), one thread,
    on the faces YuNet finds."""
    _, points = detect_faces(make_detector("yunet"), list(faces.images), faces.shapes)
    found = np.flatnonzero(~np.isnan(points[:, 0, 0]))
    images = [faces.images[i] for i in found]
    speeds = {}
    for model_name, (model, start) in models.items():
        if start != "auto":
            continue
        starts = model.point_calibrations_["yunet"].apply(points[found])
        for refiner_name, refiner in {"": None, **refiners}.items():
            started = time.perf_counter()
            shapes = model.predict(images, points=starts)
            if refiner is not None:
                refiner.predict(images, shapes)
            name = model_name + (f" + {refiner_name}" if refiner_name else "")
            speeds[name] = (time.perf_counter() - started) / len(images) * 1e6
    return speeds


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hard_faces", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/300w", help="the 300-W folder (training folders only)")
    parser.add_argument("--work", default=str(SCRATCH / "hard_faces_work"),
                        help="cache of the cascades trained without the split")
    parser.add_argument("--out", default=str(SCRATCH / "hard_faces"), help="benchmarks/results to publish")
    parser.add_argument("--quick", action="store_true", help="12 faces, small models trained on 120 (a smoke test)")
    parser.add_argument("--refiner", action="append", default=[], metavar="NAME=GLOBAL.onnx,LOCAL.onnx",
                        help="a refiner to measure besides the bundled one (its stage files)")
    parser.add_argument("--families", nargs="+", default=list(RECIPES), choices=list(RECIPES),
                        help="the cascades to train and measure")
    parser.add_argument("--mirror", action="store_true", help="also each refiner with mirror=True")
    args = parser.parse_args(argv)
    output_path(args.out, args.quick)
    threadpool_limits(1)
    cv2.setNumThreads(1)
    held, rest = split(args.data, args.quick)
    models = validation_models(rest, args.work, args.families, args.quick)
    refiners = {"refiner": cascade.Refiner()}
    for named in args.refiner:
        name, _, files = named.partition("=")
        refiners[name] = cascade.Refiner(files.split(","))
    if args.mirror:
        refiners.update({f"{name}, mirrored": cascade.Refiner(refiner.model_path, mirror=True)
                         for name, refiner in list(refiners.items())})
    sets = hard_sets(held)
    errors = {}
    for name, measure in tqdm(methods(models, refiners).items(), desc="methods"):
        errors[name] = {kind: measure(images, shapes) for kind, (images, shapes) in sets.items()}
    speeds = landmark_speed(models, refiners, held)
    write(args, errors, speeds, {kind: len(shapes) for kind, (_, shapes) in sets.items()})


def write(args, errors, speeds, sizes):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    command = "python -m benchmarks.hard_faces " + " ".join(sys.argv[1:])
    kinds = list(sizes)
    results = {"date": str(datetime.date.today()), "machine": machine, "command": command, "faces": sizes,
               "nme": {m: {k: float(np.mean(e[np.isfinite(e)])) for k, e in by_kind.items()} for m, by_kind in
                       errors.items()},
               "above_8_percent": {m: {k: failure_rate(e) for k, e in by_kind.items()} for m, by_kind in
                                   errors.items()},
               "missed": {m: {k: int(np.isinf(e).sum()) for k, e in by_kind.items()} for m, by_kind in errors.items()},
               "us_per_face": speeds}
    (out / "hard_faces.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"{results['date']}, {machine}. Command: `{command}`", "",
             "NME inter-ocular (%) of the found faces / share above 8 % (%, misses included); faces: "
             + ", ".join(f"{k} {n}" for k, n in sizes.items()), "",
             "| method | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for method in errors:
        cells = [f"{100 * results['nme'][method][k]:.2f} / {100 * results['above_8_percent'][method][k]:.1f}"
                 for k in kinds]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "| landmark stage from YuNet's points, one thread | us a face |", "|---|---|"]
    lines += [f"| {name} | {us:,.0f} |" for name, us in speeds.items()]
    (out / "hard_faces.md").write_text("\n".join(lines) + "\n")
    pooled = {method: np.concatenate([e for k, e in by_kind.items() if k != "as it is"])
              for method, by_kind in errors.items() if "pipeline" in method or "alone" in method}
    print("\n".join(lines))
    try:
        plot_ced(pooled, out / "ced-hard-faces.png", title="Held-out training faces made hard (all kinds pooled)")
    except ImportError as error:
        print(f"plot skipped: {error}")


if __name__ == "__main__":
    main()

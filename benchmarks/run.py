"""The benchmark suite: every method on the same faces and boxes, accuracy against speed.

    python -m benchmarks.run [--methods mean-shape,ert,lbf-fast,lbf,dlib,...] [--quick]
                             [--protocol gt|detector] [--detector yunet|haar|dlib-hog]
                             [--cache DIR] [--out DIR] [--test-dir DIR ...]

Trains each method on the shared 300-W training folders with mirrors (or loads
it from ``--cache``, outside the repository), predicts the test faces with the
same boxes, and writes to ``--out``: ``table.md`` (included in BENCHMARKS.md),
``results.json`` (every figure), ``ced.png`` and ``speed_accuracy.png``, their
names ending in ``-detector-NAME`` under the detector protocol.

Protocols: ``gt`` (default), the tight box of the 68 true points, rounded to
whole pixels because dlib's rectangles are integers; ``detector``, a face
detector's box (see :func:`protocol_boxes`), faces it misses counted as
failures. Training runs in a child process per method, so its time and peak
memory are its own. Prediction is timed after a warm-up, as the median of
``--repeats`` passes over all test faces, images already decoded, the methods
taking turns pass by pass so that ratios between them compare like with like;
"1 thread" limits BLAS/OpenMP (threadpoolctl) and ours to one thread; speed
ratios to dlib are taken turn by turn, then their median. Image decoding and
face detection are timed on their own.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import cascade
from cascade.calibration import BoxCalibration, calibrate
from cascade.data import SHARED_300W_TRAIN
from cascade.detect import (
    DEFAULT_DETECTOR,
    DETECTORS,
    detect_faces,
    make_detector,
    match_detection,
)
from cascade.evaluate import auc, failure_rate, report

from . import SCRATCH, output_path
from .methods import our_methods
from .peers import peer_methods
from .timing import median_seconds

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "300w"


def all_methods():
    return {**our_methods(), **peer_methods()}


def load_sets(data, test_dirs, quick):
    """Training and test faces, each carrying its GT-box protocol boxes (tight, rounded)."""
    train = cascade.load_faces(*[Path(data) / f for f in SHARED_300W_TRAIN], lazy=True)
    tests = {str(d): cascade.load_faces(d, lazy=True) for d in (test_dirs or [Path(data) / "lfpw" / "testset"])}
    if quick:
        train = train.subset(slice(0, 120))
        tests = {name: faces.subset(slice(0, 30)) for name, faces in tests.items()}
    return with_gt_boxes(train), {name: with_gt_boxes(faces) for name, faces in tests.items()}


def with_gt_boxes(faces):
    """The faces with the tight boxes of their points, rounded to whole pixels as dlib's rectangles are."""
    return cascade.FaceSet(faces.images, faces.shapes, faces.names, np.round(faces.face_boxes()))


def train_in_child(key, args, model_dir):
    """Train one method in a child process; returns its time and peak memory."""
    record = model_dir / f"{key}.train.json"
    if not record.exists() or args.retrain:
        options = ["--train-key", key, "--data", str(Path(args.data).resolve()),
                   "--cache", str(Path(args.cache).resolve()), "--threads", str(args.threads)]
        options += ["--quick"] * args.quick
        print(f"training {key} in a child process: {' '.join(options)}", flush=True)
        subprocess.run(child_command(options), check=True, cwd=ROOT)
    return json.loads(record.read_text())


def child_command(options):
    """``python -m benchmarks.run OPTIONS``, to run from the repository root."""
    return [sys.executable, "-m", "benchmarks.run", *options]


def train_here(args):
    """The child's side of :func:`train_in_child`."""
    model_dir = cache_dir(args)
    train, _ = load_sets(args.data, None, args.quick)
    method = next(m for m in all_methods().values() if getattr(m, "key", None) == args.train_key)
    started = time.perf_counter()
    method.train(train, model_dir, args.quick, args.threads)
    seconds = time.perf_counter() - started
    # A peer's own training program (a grandchild) counts too.
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) * 1024
    (model_dir / f"{args.train_key}.train.json").write_text(json.dumps(
        {"seconds": seconds, "peak_rss_bytes": peak, "threads": args.threads, "n_faces": len(train),
         "with_mirrors": True}))


def cache_dir(args):
    folder = Path(args.cache) / ("quick" if args.quick else "full")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def interleaved_speeds(timed, thread_counts, repeats):
    """Faces per second of every method, timed in turns (method A, B, ..., A, B, ...) so that
    every method sees the same machine conditions; the median of ``repeats`` turns.
    ``timed`` maps a method's name to ``(method, images, boxes)``."""
    calls = {(name, n): (lambda m=method, i=images, b=boxes, n=n: m.predict(i, b, n))
             for name, (method, images, boxes) in timed.items() for n in thread_counts}
    times = {key: [] for key in calls}
    for call in calls.values():
        call()                                              # warm-up
    for _ in range(repeats):
        for key, call in calls.items():
            times[key].append(median_seconds(call, 0, warm_up=False))
    speeds = {name: {} for name in timed}
    for (name, n), samples in times.items():
        speeds[name][str(n)] = len(timed[name][2]) / float(np.median(samples))
    return speeds, times


def speed_ratios(times, timed, reference):
    """Each method's speed over ``reference``'s on one thread, per face: the median over turns
    of the ratio within each turn (the two were timed back to back, so they shared the machine)."""
    if reference not in timed:
        return {}
    per_face = {name: np.array(times[(name, 1)]) / len(timed[name][2]) for name in timed}
    return {name: float(np.median(per_face[reference] / per_face[name])) for name in timed}


def phase_split(method, images, boxes, repeats=5):
    """Microseconds per face in each prediction phase, one thread: the median of ``repeats`` runs."""
    runs = [method.profile(images, boxes) for _ in range(repeats + 1)][1:]    # the first warms up
    return {phase: 1e6 * float(np.median([run[phase] for run in runs])) / len(boxes) for phase in runs[0]}


def protocol_boxes(args, train, test, images, model_dir):
    """The boxes methods get on ``test``, the detector's own boxes (None under GT-box), which
    faces have one, and the protocol's notes.

    GT-box: every face, the rounded tight box of its points. Detector: the
    detection overlapping the tight box most (IoU >= 0.2), mapped by the box
    calibration learnt on the training faces with the same detector; faces with
    no such detection get no box and count as failures.
    """
    if args.protocol == "gt":
        return test.face_boxes(), None, np.ones(len(test), bool), {}
    detector = make_detector(args.detector)
    calibration = detector_calibration(args, detector, train, model_dir)
    started = time.perf_counter()
    detections = [detector(image).boxes for image in images]
    seconds = time.perf_counter() - started
    matched = [match_detection(boxes, truth) for boxes, truth in zip(detections, test.face_boxes())]
    found = np.array([m >= 0 for m in matched])
    raw = np.array([d[m] for d, m in zip(detections, matched) if m >= 0])
    return calibration.apply(raw), raw, found, {"detector": args.detector,
                                                "detection_ms_per_image": 1000 * seconds / len(images),
                          "detected": int(found.sum()), "calibration": calibration.to_dict()}


def detector_calibration(args, detector, train, model_dir):
    """The detector's box calibration, fitted on the training faces once and cached."""
    record = model_dir / f"calibration-{args.detector}.json"
    if record.exists() and not args.retrain:
        return BoxCalibration(**json.loads(record.read_text())["calibration"])
    print(f"calibrating {args.detector} boxes on {len(train)} training faces", flush=True)
    boxes, points = detect_faces(detector, train.images, train.shapes, args.threads)
    calibration, _ = calibrate(boxes, points, train.shapes)
    record.write_text(json.dumps({"calibration": calibration.to_dict(), "matched": int((~np.isnan(boxes[:, 0])).sum()),
                                  "training_faces": len(train)}))
    return calibration


def benchmark(args):
    methods = all_methods()
    unknown = set(args.methods) - set(methods)
    if unknown:         # before any data is read: a mistyped name is told at once
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {sorted(methods)}")
    model_dir = cache_dir(args)
    train, tests = load_sets(args.data, args.test_dir, args.quick)
    rows, skipped, errors, notes = [], {}, {}, {}
    for test_name, test in tests.items():
        decode_seconds = median_seconds(lambda: [test.images[i] for i in range(len(test))], 3)
        images = list(test.images)
        boxes, detector_boxes, found, notes[test_name] = protocol_boxes(args, train, test, images, model_dir)
        notes[test_name]["decode_ms_per_image"] = 1000 * decode_seconds / len(test)
        found_at = np.flatnonzero(found)
        images, test_found = [images[i] for i in found_at], test.subset(found_at)
        predictions, timed = {}, {}
        for key in args.methods:
            method = methods[key]
            reason = method.unavailable() if hasattr(method, "unavailable") else None
            own_detector = getattr(method, "own_detector", None)
            if own_detector and (args.protocol, args.detector) != ("detector", own_detector):
                reason = reason or f"runs on its own detector's boxes: --protocol detector --detector {own_detector}"
            if reason:
                skipped[method.name] = reason
                print(f"skipping {method.name}: {reason}", flush=True)
                continue
            training = train_in_child(method.key, args, model_dir) if method.key else None
            method.load(model_dir, train)
            path = method.model_path(model_dir)
            model_bytes = ((path.stat().st_size if path else 0)
                           + (method.extra_bytes() if hasattr(method, "extra_bytes") else 0))
            row = {"method": method.name, "key": key, "test_set": test_name, "training": training,
                   "model_bytes": model_bytes or None}
            rows.append(row)
            if hasattr(method, "predict_external"):          # a program that times itself
                predictions[method.name], row["faces_per_second"] = method.predict_external(
                    test_found, boxes, args.repeats, model_dir)
                continue
            method_images = method.prepare(images) if hasattr(method, "prepare") else images
            method_boxes = detector_boxes if own_detector else boxes
            predictions[method.name] = method.predict(method_images, method_boxes, 1)
            timed[method.name] = (method, method_images, method_boxes)
        speeds, times = interleaved_speeds(timed, sorted({1, args.threads}), args.repeats)
        ratios = speed_ratios(times, timed, methods["dlib"].name)
        for row in rows:
            if row["test_set"] == test_name and row["method"] in timed:
                row["faces_per_second"] = speeds[row["method"]]
                if ratios:
                    row["speed_vs_dlib"] = ratios[row["method"]]
                method, method_images, method_boxes = timed[row["method"]]
                if hasattr(method, "profile"):
                    row["phase_us_per_face"] = phase_split(method, method_images, method_boxes)
        errors[test_name] = score(rows, test_name, predictions, test.shapes, found)
    return rows, skipped, errors, notes


def score(rows, test_name, predictions, true_shapes, found):
    """Put each row's accuracy in it; returns every method's per-face inter-ocular errors.

    NME is the mean over the faces that got a box; AUC and failure rates count
    the faces without one as failures (their error is infinite).
    """
    scored = report(predictions, true_shapes[found], normalizations=("inter-ocular", "inter-pupil"),
                    thresholds=(0.08, 0.10), auc_threshold=0.08)
    by_name = {row["method"]: row for row in scored.to_dict()["rows"]}
    every_face = {}
    for name, face_errors in scored.errors().items():
        every_face[name] = np.full(len(found), np.inf)
        every_face[name][found] = face_errors
        by_name[name].update({"n_faces": len(found), "n_with_box": int(found.sum()),
                              "auc@0.08": auc(every_face[name], 0.08),
                              "failure@0.08": failure_rate(every_face[name], 0.08),
                              "failure@0.1": failure_rate(every_face[name], 0.10)})
    for row in rows:
        if row["test_set"] == test_name:
            row["accuracy"] = by_name[row["method"]]
    return every_face


def protocol_name(args):
    if args.protocol == "gt":
        return "GT-box (tight box of the 68 true points, rounded to whole pixels)"
    return (f"detector boxes ({args.detector} detector, the detection overlapping the true tight box "
            "most, calibrated to tight boxes on the training faces; faces it misses count as failures)")


def write_outputs(args, rows, skipped, errors, notes):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.protocol == "gt" else f"-detector-{args.detector}"
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    command = "python -m benchmarks.run " + " ".join(sys.argv[1:])
    (out / f"results{suffix}.json").write_text(json.dumps(
        {"date": datetime.date.today().isoformat(), "machine": machine, "command": command,
         "protocol": protocol_name(args), "notes": notes, "rows": rows, "skipped": skipped}, indent=1))
    lines = [f"Protocol: {protocol_name(args)}. {datetime.date.today()}, {machine}.",
             f"Command: `{command}`", ""]
    for test_name, note in notes.items():
        found = (f"; detection {note['detection_ms_per_image']:.1f} ms per image (one thread), "
                 f"{note['detected']} faces with a box" if "detected" in note else "")
        lines.append(f"{Path(test_name).name}: image decoding {note['decode_ms_per_image']:.2f} ms per image"
                     f"{found}; the landmarking speeds below leave these out.")
    lines.append("")
    header = ("| method | test set | faces | NME inter-ocular (%) | NME inter-pupil (%) | AUC@0.08 | "
              "fail@0.08 (%) | fail@0.10 (%) | faces/s, 1 thread | vs dlib, 1 thread | faces/s, "
              f"{args.threads} threads | training (min) | training peak memory (GiB) | model (MB) |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        accuracy, training = row["accuracy"], row["training"]
        speed = row["faces_per_second"]
        lines.append("| " + " | ".join([
            row["method"], "/".join(Path(row["test_set"]).parts[-2:]),
            str(accuracy["n_faces"]) if accuracy["n_with_box"] == accuracy["n_faces"]
            else f"{accuracy['n_with_box']} of {accuracy['n_faces']}",
            f"{100 * accuracy['nme_inter-ocular']:.2f}", f"{100 * accuracy['nme_inter-pupil']:.2f}",
            f"{accuracy['auc@0.08']:.3f}", f"{100 * accuracy['failure@0.08']:.2f}",
            f"{100 * accuracy['failure@0.1']:.2f}",
            f"{speed['1']:,.0f}", f"{row['speed_vs_dlib']:.2f}x" if "speed_vs_dlib" in row else "-",
            f"{speed[str(args.threads)]:,.0f}" if str(args.threads) in speed else "-",
            f"{training['seconds'] / 60:.1f}" if training else "-",
            f"{training['peak_rss_bytes'] / 2 ** 30:.2f}" if training else "-",
            f"{row['model_bytes'] / 1e6:.1f}" if row["model_bytes"] else "-"]) + " |")
    profiled = [row for row in rows if "phase_us_per_face" in row]
    if profiled:
        lines += ["", "Where prediction time goes, microseconds per face on one thread (the compiled "
                  "loop's own clock; for LBF, adding the reached leaves is the global regression):", "",
                  "| method | pixel sampling | tree walks | leaf adds (global regression) |", "|---|---|---|---|"]
        for row in profiled:
            phases = row["phase_us_per_face"]
            lines.append(f"| {row['method']} | {phases['sampling']:.0f} | {phases['walking']:.0f} | "
                         f"{phases['adding']:.0f} |")
    for name, reason in skipped.items():
        lines.append(f"\nSkipped {name}: {reason}.")
    (out / f"table{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        plot(out, rows, errors, suffix, "GT boxes" if args.protocol == "gt" else f"{args.detector} boxes")
    except ImportError as error:
        print(f"plots skipped: {error}")


def plot(out, rows, errors, suffix, boxes_label):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    for test_name, method_errors in errors.items():
        name = suffix if len(errors) == 1 else f"{suffix}-{Path(test_name).name}"
        cascade.plot_ced(method_errors, out / f"ced{name}.png", max_error=0.10,
                         title=f"CED, {Path(test_name).name}, {boxes_label}")
    figure = Figure(figsize=(11, 5.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    # The mean shape is a baseline far off the scale of the landmarkers; the table has it.
    for k, row in enumerate(r for r in rows if r["key"] != "mean-shape" and "faces_per_second" in r):
        axes.scatter(row["faces_per_second"]["1"], 100 * row["accuracy"]["nme_inter-ocular"],
                     marker="osD^v<>ph*"[k % 10], s=60, label=f"{row['method']} ({Path(row['test_set']).name})")
    axes.set(xscale="log", xlabel="faces per second, one thread (log)", ylabel="NME inter-ocular (%)",
             title=f"Speed against accuracy ({boxes_label})")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="x-small")
    figure.tight_layout()
    figure.savefig(out / f"speed_accuracy{suffix}.png", dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cascade bench", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="mean-shape,ert,ert-q16,ert-c40,ert-c40-q16,lbf-fast,"
                        "lbf-fast-q16,lbf,lbf-q16,esr,esr-q16,asm,dlib",
                        type=lambda s: [m.strip() for m in s.split(",") if m.strip()],
                        help="comma-separated methods to train and score (default: all of them)")
    parser.add_argument("--quick", action="store_true", help="small configs on a few dozen faces")
    parser.add_argument("--protocol", choices=("gt", "detector"), default="gt",
                        help="boxes: tight ground-truth boxes, or a detector's, calibrated")
    parser.add_argument("--detector", choices=sorted(DETECTORS), default=DEFAULT_DETECTOR,
                        help=f"the detector of --protocol detector (default {DEFAULT_DETECTOR})")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help=f"the 300-W folder (default {DEFAULT_DATA})")
    parser.add_argument("--test-dir", action="append", help="folder of image + .pts pairs (repeatable)")
    parser.add_argument("--cache", default=str(SCRATCH), help="where trained models are kept between runs")
    parser.add_argument("--out", default=str(SCRATCH / "results"),
                        help=f"where the tables, results and plots go (default: {SCRATCH / 'results'}; "
                        "benchmarks/results to publish)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads of the many-thread timings (default: the cores)")
    parser.add_argument("--repeats", type=int, default=15, help="timing repeats, the median kept (default 15)")
    parser.add_argument("--retrain", action="store_true", help="train again instead of reading the cache")
    parser.add_argument("--train-key", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    output_path(args.out, args.quick)
    if args.train_key:
        train_here(args)
        return
    # One BLAS/OpenMP thread: the "1 thread" timings must not hide threads elsewhere.
    threadpool_limits(1)
    write_outputs(args, *benchmark(args))


if __name__ == "__main__":
    main()

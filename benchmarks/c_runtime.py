"""The C runtime against Python's compiled call: the same landmarks, the time a face, the size.

    python -m benchmarks.c_runtime [--data ../shared/data/300w] [--faces 224] [--repeats 15]
                                   [--landmark "[LABEL=]COMMAND"]... [--baseline TREE] [--check] [--out DIR]

Builds ``runtime/`` (``make``, the host's cc, -O2), saves both bundled models in the flat format,
writes the ``lfpw/testset`` faces as grey PGM files, and runs the ``landmark`` example over them
from four starts: the true five points and the tight box of the true landmarks (the model's own
kinds), and YuNet's raw points and box (``--detector yunet``: the stored calibrations). Its
landmarks are compared with Python's ``model.predict`` on the same grey images (max |difference|,
pixels). Then the time a face from five points: the example (``--faces LIST --repeat``, the
median round) against Python's compiled call, one face a call, taking turns in the same run.
Each ``--landmark`` is another build of the example to compare (a cross-compiled one under
``qemu-aarch64``, the WebAssembly one under node): its landmarks are compared the same way, and
its time reported as under emulation. ``--baseline`` names a source tree with its extensions built
(the previous release, say): Python's compiled calls are timed in it and in this one, in child
processes taking turns (three each, the median kept), so that the C loop's cost to Python shows.
``--check`` exits 1 if any build differs from Python by more than 1e-4 px. Writes
``c_runtime.md`` and ``c_runtime.json`` to ``--out``.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import cascade
from cascade.detect import YuNetDetector, detect_faces
from cascade.shapes import tight_boxes

from . import SCRATCH, output_path
from .run import DEFAULT_DATA

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("ert-68", "lbf-68")
TOLERANCE = 1e-4


def build_runtime(folder):
    """The native build of ``runtime/`` in ``folder`` (the Makefile's -O3): its ``landmark`` example, and
    the stripped size of ``libcascade.so`` at -O2 and -O3."""
    sizes = {}
    for flags in ("-O2", "-O3"):
        build = folder / flags.strip("-")
        subprocess.run(["make", "-s", "-C", str(ROOT / "runtime"), f"BUILD={build}", f"CFLAGS={flags}"], check=True)
        stripped = build / "libcascade-stripped.so"
        shutil.copy(build / "libcascade.so", stripped)
        subprocess.run(["strip", str(stripped)], check=True)
        sizes[flags] = stripped.stat().st_size
    return folder / "O3" / "landmark", sizes


def starts_of(faces, images):
    """``{start: (kind, values (n, k), detector)}``: the four ways a face is started."""
    shapes = faces.shapes
    boxes, points = detect_faces(YuNetDetector(), images, shapes, n_jobs=1)
    found = ~np.isnan(boxes).any(axis=1)
    return {"true five points": ("points", cascade.IBUG68.five_points(shapes).reshape(-1, 10), None, None),
            "tight box": ("box", tight_boxes(shapes), None, None),
            "YuNet's points": ("points", points[found].reshape(-1, 10), "yunet", found),
            "YuNet's box": ("box", boxes[found], "yunet", found)}


def python_landmarks(model, images, kind, values, detector):
    if kind == "points":
        return model.predict(images, points=values.reshape(-1, 5, 2), detector=detector)
    return model.predict(images, values, detector=detector)


def write_list(path, pgms, kind, values, detector):
    with open(path, "w") as listing:
        for pgm, row in zip(pgms, values):
            listing.write(f"{pgm} {kind} {' '.join(repr(float(v)) for v in row)}{' ' + detector if detector else ''}\n")


def run_landmark(command, model_file, listing, repeat=0):
    """``(landmarks (n, L, 2), microseconds a face or None)`` of one run of the example."""
    argv = [*command, str(model_file), "--faces", str(listing), *(["--repeat", str(repeat)] if repeat else [])]
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    rows = np.array([line.split() for line in result.stdout.splitlines()], dtype=np.float64)
    timed = float(result.stderr.split()[0]) if repeat else None
    return rows.reshape(len(rows), -1, 2), timed


def python_microseconds(model, images, points, repeats):
    """Python's compiled call, one face a call (``predict(image, points=(5, 2))``): the median round."""
    rounds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for image, five in zip(images, points):
            model.predict(image, points=five)
        rounds.append((time.perf_counter() - started) / len(images))
    return 1e6 * float(np.median(rounds))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.c_runtime", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the 300-W folder")
    parser.add_argument("--faces", type=int, default=224, help="lfpw/testset faces used (default: all 224)")
    parser.add_argument("--repeats", type=int, default=15, help="timing rounds, the median kept (default 15)")
    parser.add_argument("--landmark", action="append", default=[], metavar="[LABEL=]COMMAND",
                        help="another build of the example to compare, e.g. \"wasm=node build/landmark.js\"")
    parser.add_argument("--baseline", metavar="TREE", help="a source tree with built extensions to time Python "
                        "against (A/B)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a build differs by more than 1e-4 px")
    parser.add_argument("--out", default=str(SCRATCH / "c_runtime"), help="benchmarks/results to publish")
    args = parser.parse_args(argv)
    out = output_path(args.out, args.faces < 224)
    faces = cascade.load_faces(Path(args.data) / "lfpw" / "testset", lazy=True).subset(slice(0, args.faces))
    images = [cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image for image in faces.images]
    builds = {"native": None}
    for given in args.landmark:
        label, _, command = given.partition("=")      # a label names no path: "wasm under node=node ..."
        if not command or "/" in label:
            label, command = given, given
        builds[label] = shlex.split(command)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        native, library_bytes = build_runtime(scratch / "build")
        builds["native"] = [str(native)]
        pgms = []
        for index, image in enumerate(images):
            pgms.append(scratch / f"face-{index:03d}.pgm")
            cv2.imwrite(str(pgms[-1]), image)
        starts = starts_of(faces, list(faces.images))
        differences, timings = {}, {}
        for name in MODELS:
            model = cascade.load_model(name)
            model_file = model.save(scratch / f"{name}.cascade", format="c")
            for start, (kind, values, detector, found) in starts.items():
                chosen = [i for i in range(len(images)) if found is None or found[i]]
                listing = scratch / f"{name}-{kind}-{detector}.list"
                write_list(listing, [pgms[i] for i in chosen], kind, values, detector)
                expected = python_landmarks(model, [images[i] for i in chosen], kind, values, detector)
                for build, command in builds.items():
                    got, _ = run_landmark(command, model_file, listing)
                    differences.setdefault(build, {})[f"{name}, {start}"] = float(np.abs(got - expected).max())
            listing = scratch / f"{name}-points-None.list"
            points = starts["true five points"][1].reshape(-1, 5, 2)
            for build, command in builds.items():
                rounds = args.repeats if build == "native" else max(1, args.repeats // 5)
                timings.setdefault(build, {})[name] = run_landmark(command, model_file, listing, rounds)[1]
            timings.setdefault("python", {})[name] = python_microseconds(model, images, points, args.repeats)
    worst = max(max(by_case.values()) for by_case in differences.values())
    python_ab = a_b(Path(args.baseline), Path(args.data)) if args.baseline else None
    result = {"date": datetime.date.today().isoformat(), "machine": {"processor": platform.machine(),
              "python": platform.python_version(), "cc": _compiler()},
              "command": "python -m benchmarks.c_runtime " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
              "faces": len(images), "library_bytes_stripped": library_bytes, "max_difference_px": differences,
              "microseconds_per_face": timings, "python_a_b": python_ab}
    out.mkdir(parents=True, exist_ok=True)
    (out / "c_runtime.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "c_runtime.md").write_text(table(result))
    print(table(result))
    if args.check and worst > TOLERANCE:
        print(f"a build differs from Python by {worst:.3g} px, above {TOLERANCE:g}", file=sys.stderr)
        return 1
    return 0


#: Python's compiled calls timed in a child process: one face a call and 64 a call, from five points
#: and from tight boxes, on the first 64 lfpw/testset faces (microseconds a face, the median of 15).
A_B_SCRIPT = """
import json, sys, time, numpy as np, cascade
faces = cascade.load_faces(sys.argv[1], lazy=True).subset(slice(0, 64))
images, points = list(faces.images), cascade.IBUG68.five_points(faces.shapes)
boxes = cascade.shapes.tight_boxes(faces.shapes)
timed = {}
for name in ("ert-68", "lbf-68"):
    model = cascade.load_model(name)
    for case, run in (("points, 1 a call", lambda: [model.predict(i, points=p) for i, p in zip(images, points)]),
                      ("points, 64 a call", lambda: model.predict(images, points=points)),
                      ("boxes, 64 a call", lambda: model.predict(images, boxes))):
        run()
        rounds = []
        for _ in range(15):
            started = time.perf_counter()
            run()
            rounds.append((time.perf_counter() - started) / len(images))
        timed[f"{name}, {case}"] = 1e6 * float(np.median(rounds))
print(json.dumps(timed))
"""


def a_b(baseline, data):
    """``{case: [baseline us, this build's us]}``: three child processes each, taking turns."""
    runs = {"baseline": [], "this build": []}
    for _ in range(3):
        for label, tree in (("baseline", baseline), ("this build", ROOT)):
            child = subprocess.run([sys.executable, "-c", A_B_SCRIPT, str(data / "lfpw" / "testset")], check=True,
                                   capture_output=True, text=True, cwd=tree,
                                   env={**os.environ, "PYTHONPATH": str(tree)})
            runs[label].append(json.loads(child.stdout.splitlines()[-1]))
    return {case: [float(np.median([run[case] for run in runs[label]])) for label in runs]
            for case in runs["baseline"][0]}


def _compiler():
    first = subprocess.run(["cc", "--version"], capture_output=True, text=True).stdout.splitlines()
    return first[0] if first else "cc"


def table(result):
    builds = list(result["max_difference_px"])
    cases = list(result["max_difference_px"]["native"])
    lines = [f"{result['date']}, {result['machine']['processor']}, {result['machine']['cc']}, Python "
             f"{result['machine']['python']}. Command: `{result['command']}`", "",
             f"Largest difference from Python's `predict` over {result['faces']} `lfpw/testset` faces (pixels):", "",
             "| model, start | " + " | ".join(builds) + " |", "|---" * (len(builds) + 1) + "|"]
    for case in cases:
        lines.append(f"| {case} | " + " | ".join(f"{result['max_difference_px'][b][case]:.3g}" for b in builds) + " |")
    timings = result["microseconds_per_face"]
    lines += ["", "Time a face from five points, one face a call, one thread (microseconds; other builds under "
              "emulation):", "", "| model | Python's compiled call | " + " | ".join(f"C, {b}" for b in builds)
              + " | C / Python (native) |", "|---" * (len(builds) + 3) + "|"]
    for name in MODELS:
        lines.append(f"| {name} | {timings['python'][name]:.1f} | "
                     + " | ".join(f"{timings[b][name]:.1f}" for b in builds)
                     + f" | {timings['native'][name] / timings['python'][name]:.2f} |")
    sizes = result["library_bytes_stripped"]
    lines += ["", f"The library (`libcascade.so`, x86-64, stripped): {sizes['-O2'] / 1024:.1f} KiB at -O2, "
              f"{sizes['-O3'] / 1024:.1f} KiB at -O3 (the Makefile's, whose sums vectorize)."]
    if result.get("python_a_b"):
        lines += ["", "Python's compiled call, its loop in Cython (the baseline tree) against the C runtime's "
                  "(this tree), microseconds a face, three child processes each taking turns:", "",
                  "| model, start, faces a call | Cython loop | C loop | ratio |", "|---|---|---|---|"]
        for case, (before, after) in result["python_a_b"].items():
            lines.append(f"| {case} | {before:.1f} | {after:.1f} | {after / before:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

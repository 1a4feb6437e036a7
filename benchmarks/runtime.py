"""The predict-only runtime: start-up, memory, model size, per-call overhead, compressed leaves.

    python -m benchmarks.runtime [--data ../shared/data/300w] [--repeats 10] [--out DIR]
                                 [--full-models DIR]

- start-up: ``import cascade; cascade.load_model("default")`` in a fresh process, against
  ``import numpy, cv2`` alone (median of ``--repeats`` processes each);
- memory: the peak resident size of a fresh process that builds the default pipeline, reads a
  1920 x 1080 JPEG (the astronaut pasted on a coffee-cup background) and landmarks it;
- per-call overhead: the bundled models on the first 64 ``lfpw/testset`` faces, from YuNet-like
  five points (their true ones) and from tight boxes, one face a call against one call of 64,
  timed in turn (one thread; medians of 15 pairs, the ratio the pairs' median);
- compressed leaves: each bundled model against its uncompressed leaves (``--full-models``: the
  files of the previous release, int16 leaves without a basis) on ``lfpw/testset``: inter-ocular
  NME from YuNet's calibrated points (the pipeline's start, no refiner), faces/s on one thread
  (all faces in one call, median of 7) and file size.

Writes ``runtime.md`` and ``runtime.json`` to ``--out``.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import cascade
from cascade.bundled import BUNDLED, MODELS_DIR
from cascade.detect import YuNetDetector, detect_faces
from cascade.shapes import tight_boxes

from . import SCRATCH
from .run import DEFAULT_DATA
from .timing import median_seconds

STARTUP = "import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
PEAK_MEMORY = """
import resource, cv2, cascade
faces = cascade.Pipeline()(cascade.data.read_image({path!r}))
assert len(faces) == 1
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def photo_1080p(folder):
    """A 1920 x 1080 JPEG: the astronaut pasted on scikit-image's coffee cup (made here, so that the
    measured process imports nothing but what landmarking needs)."""
    import cv2
    from skimage import data
    path = folder / "astronaut-1080p.jpg"
    photo = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), (1920, 1080))
    photo[200:712, 700:1212] = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(path), photo, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def fresh_seconds(code, repeats):
    """Median seconds of ``code`` in fresh processes (the interpreter's own start excluded)."""
    runs = [float(subprocess.run([sys.executable, "-c", STARTUP.format(code=code)], capture_output=True,
                                 text=True, check=True, cwd=SCRATCH).stdout) for _ in range(repeats)]
    return float(np.median(runs))


def per_call(model, images, starts, pairs=15):
    """Microseconds a face, all faces in one call and one face a call, timed in turn ``pairs`` times
    (medians), and the median of the pairs' ratios: the host's load drifts between two blocks of
    repeats, much less between two runs a few milliseconds apart."""
    kind = "points" if starts.ndim == 3 else "boxes"

    def batch():
        model.predict(images, **{kind: starts})

    def single():
        for image, start in zip(images, starts):
            model.predict(image, **{kind: start})

    times = np.array([[median_seconds(run, 1, warm_up=k == 0) for run in (batch, single)]
                      for k in range(pairs)]) / len(images)
    return {"batch_us": 1e6 * float(np.median(times[:, 0])), "single_us": 1e6 * float(np.median(times[:, 1])),
            "ratio": float(np.median(times[:, 1] / times[:, 0]))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--full-models", help="a folder of uncompressed lbf-68.npz and ert-68.npz to compare")
    parser.add_argument("--out", default=str(SCRATCH / "runtime"), help="benchmarks/results to publish")
    args = parser.parse_args(argv)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    results = {"startup_s": {
        "import numpy, cv2": fresh_seconds("import numpy, cv2", args.repeats),
        "import cascade; load_model('default')": fresh_seconds(
            "import cascade; cascade.load_model('default')", args.repeats)}}
    script = PEAK_MEMORY.format(path=str(photo_1080p(SCRATCH)))
    results["peak_rss_mib_pipeline_1080p"] = float(subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=SCRATCH).stdout)
    threadpool_limits(1)
    test = cascade.load_faces(Path(args.data) / "lfpw" / "testset")
    images, truth = list(test.images), test.shapes
    _, detected = detect_faces(YuNetDetector(), images, truth)
    results["per_call"], results["models"] = {}, {}
    for name in BUNDLED:
        model = cascade.load_model(name)
        results["per_call"][name] = {
            "from five points": per_call(model, images[:64], cascade.IBUG68.five_points(truth[:64])),
            "from boxes": per_call(model, images[:64], tight_boxes(truth[:64]))}
        variants = {"bundled": model}
        if args.full_models:
            variants["uncompressed leaves"] = cascade.load_model(Path(args.full_models) / BUNDLED[name])
        for label, variant in variants.items():
            path = MODELS_DIR / BUNDLED[name] if label == "bundled" else Path(args.full_models) / BUNDLED[name]
            points = variant.point_calibrations_["yunet"].apply(detected)
            results["models"][f"{name}, {label}"] = {
                "nme": float(cascade.nme(variant.predict(images, points=points), truth).mean()),
                "faces_per_second": len(images) / median_seconds(lambda: variant.predict(images, points=points), 7),
                "megabytes": path.stat().st_size / 1e6,
                "rank": None if getattr(variant, "leaf_basis_", None) is None else variant.leaf_basis_.shape[1]}
        print(name, json.dumps(results["per_call"][name]), flush=True)
    write(args, results)


def write(args, results):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    command = "python -m benchmarks.runtime " + " ".join(sys.argv[1:])
    (out / "runtime.json").write_text(json.dumps({"date": datetime.date.today().isoformat(), "machine": machine,
                                                  "command": command, **results}, indent=1))
    startup = results["startup_s"]
    lines = [f"{datetime.date.today()}, {machine}. Command: `{command}`", "",
             "| start-up, fresh process (median) | seconds |", "|---|---|"]
    lines += [f"| `{code}` | {seconds:.3f} |" for code, seconds in startup.items()]
    lines += ["", f"Peak resident memory, default pipeline on a 1080p photo: "
              f"{results['peak_rss_mib_pipeline_1080p']:.0f} MiB.", "",
              "| model | start | us/face, 64 a call | us/face, 1 a call | ratio |", "|---|---|---|---|---|"]
    for name, starts in results["per_call"].items():
        lines += [f"| {name} | {start} | {row['batch_us']:.0f} | {row['single_us']:.0f} | {row['ratio']:.2f} |"
                  for start, row in starts.items()]
    lines += ["", "| model | leaf basis rank | NME from YuNet's points (%) | faces/s, 1 thread | file (MB) |",
              "|---|---|---|---|---|"]
    lines += [f"| {name} | {row['rank'] or 'none'} | {100 * row['nme']:.2f} | {row['faces_per_second']:,.0f} | "
              f"{row['megabytes']:.1f} |" for name, row in results["models"].items()]
    (out / "runtime.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Where a refined face's time goes: the refiner's parts, timed apart, float32 against int8.

    python -m benchmarks.refiner_speed [--repeats 7] [--out DIR] [--models A.onnx,B.onnx ...]

On the ``lfpw/testset`` faces (decoded beforehand, colour, as a pipeline gets
them), each started from the bundled ``ert-68``'s answer from YuNet's five
points (as in the default pipeline; YuNet finds all 224), one thread throughout:
the grey neighbourhood of each face (made once for all stages), then for each
stage the crop similarity and the pixels it reads (the crop, or the patches
around the points), the network's ONNX Runtime call, and the correction back to
the image; then the whole ``Refiner.predict`` (its batches of 16 faces, every
stage). Each figure is the
median of ``--repeats`` passes over all faces, the refiners taking turns pass by
pass; the accuracy is the inter-ocular NME of the refined shapes. ``--models``
adds refiners (comma-separated stage files), e.g. an earlier release's.
"""
import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

import cascade
from cascade.detect import detect_faces, make_detector
from cascade.refiner import Refiner
from cascade.crops import grey_faces, network_inputs
from cascade.refiner import INT8_MODELS, network_feed
from cnn_refine import FLOAT_MODELS

from . import SCRATCH
from .run import DEFAULT_DATA


def stage_parts(stage, faces, shapes, batch_size):
    """Seconds of each part of one stage on all faces (grey neighbourhoods, shapes in them), in the
    refiner's batches."""
    parts = dict.fromkeys(("pixels", "network", "back to the image"), 0.0)
    for start in range(0, len(faces), batch_size):
        batch = slice(start, start + batch_size)
        clock = time.perf_counter()
        inputs = network_inputs(faces[batch], shapes[batch], stage.template, stage.crop_size, stage.patch_size)
        middle = time.perf_counter()
        corrections = stage.session.run(None, network_feed(stage.patch_size, inputs.pixels, inputs.offsets))[0]
        end = time.perf_counter()
        shapes[batch] = inputs.corrected(corrections)
        parts["pixels"] += middle - clock
        parts["network"] += end - middle
        parts["back to the image"] += time.perf_counter() - end
    return parts


def measure(refiners, images, starts, repeats):
    """``{refiner name: {part: microseconds per face}}``, medians over passes taken in turns."""
    samples = {name: {} for name in refiners}
    for _ in range(repeats + 1):                                   # the first pass warms up
        for name, refiner in refiners.items():
            clock = time.perf_counter()
            faces, offsets = grey_faces(images, starts)
            samples[name].setdefault("grey neighbourhood of each face", []).append(time.perf_counter() - clock)
            shapes = starts - offsets[:, None]
            for k, stage in enumerate(refiner.stages):
                for part, seconds in stage_parts(stage, faces, shapes, refiner.batch_size).items():
                    samples[name].setdefault(f"stage {k + 1} ({_kind(stage)}): {part}", []).append(seconds)
            clock = time.perf_counter()
            refiner.predict(images, starts)
            samples[name].setdefault("Refiner.predict, all stages", []).append(time.perf_counter() - clock)
    return {name: {part: 1e6 * float(np.median(values[1:])) / len(images) for part, values in parts.items()}
            for name, parts in samples.items()}


def _kind(stage):
    return "global" if stage.patch_size is None else "local"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the 300-W folder (its lfpw/testset is read)")
    parser.add_argument("--faces", type=int, default=None, help="the first N test faces only")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(SCRATCH / "refiner"), help="benchmarks/results to publish")
    parser.add_argument("--models", action="append", default=[], help="more refiners: stage files, comma-separated")
    args = parser.parse_args(argv)
    threadpool_limits(1)
    cv2.setNumThreads(1)
    test = cascade.load_faces(Path(args.data) / "lfpw" / "testset", lazy=True).subset(slice(args.faces))
    test = cascade.FaceSet(list(test.images), test.shapes, test.names)
    images = list(test.images)
    model = cascade.load_model("ert-68")
    _, points = detect_faces(make_detector("yunet"), images, test.shapes)
    if np.isnan(points).any():
        raise SystemExit("YuNet missed a test face: this benchmark needs every face")
    starts = model.predict(images, points=model.point_calibrations_["yunet"].apply(points))
    refiners = {"float32": Refiner(FLOAT_MODELS), "int8 (default)": Refiner(INT8_MODELS)}
    refiners.update({models: Refiner(models.split(",")) for models in args.models})
    timings = measure(refiners, images, starts, args.repeats)
    accuracy = {name: float(cascade.nme(refiner.predict(images, starts), test.shapes).mean())
                for name, refiner in refiners.items()}
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    command = "python -m benchmarks.refiner_speed " + " ".join(argv if argv is not None else sys.argv[1:])
    parts = list(dict.fromkeys(part for timing in timings.values() for part in timing))
    lines = [f"{datetime.date.today()}, {machine}. Command: `{command}`", "",
             "| part (us per face, one thread) | " + " | ".join(refiners) + " |",
             "|---|" + "---|" * len(refiners)]
    lines += [f"| {part} | " + " | ".join(f"{timings[name].get(part, float('nan')):.0f}" for name in refiners) + " |"
              for part in parts]
    lines.append("| faces/s, Refiner.predict | " + " | ".join(
        f"{1e6 / timings[name]['Refiner.predict, all stages']:,.0f}" for name in refiners) + " |")
    lines.append("| NME inter-ocular (%), from ert-68 at "
                 f"{100 * cascade.nme(starts, test.shapes).mean():.2f} | "
                 + " | ".join(f"{100 * accuracy[name]:.2f}" for name in refiners) + " |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "refiner_speed.md").write_text("\n".join(lines) + "\n")
    (out / "refiner_speed.json").write_text(json.dumps({"date": datetime.date.today().isoformat(), "machine": machine,
                                                        "command": command, "us_per_face": timings,
                                                        "nme": accuracy}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

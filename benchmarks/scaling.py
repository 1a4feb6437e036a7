"""How ERT's costs grow: predict time against landmarks and batch size, training time against faces.

    python -m benchmarks.scaling [--parts landmarks,batch,training,memory] [--model ERT.npz]
                                 [--data ../shared/data/300w] [--out benchmarks/results]

A reduced configuration (10 stages x 100 trees, 5 initialisations) keeps the
whole run to minutes; growth rates, not absolute speeds, are the point here
(``benchmarks.run`` measures the full models). All timings on one thread.

- landmarks: 5, 29 and 68 points (subsets of the 68), the same faces and boxes;
- batch size: 1 to 1,024 faces per ``predict`` call (test faces repeated), with
  the 68-point model of the landmarks part or the saved model given by ``--model``;
- training faces: 250 to 2,012 training faces (each with its mirror);
- memory: the peak memory a fit adds, against training faces and initialisations per face
  (the images are decoded before; not a default part).

Writes ``scaling.json`` and ``scaling.md`` (the parts run) to ``--out``.
"""
import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import cascade
from cascade.schemes import IBUG68

from . import SCRATCH
from .timing import median_seconds, peak_growth_mib

CONFIG = dict(n_stages=10, n_trees=100, n_init=5, random_state=0)
SUBSETS = {
    5: [36, 45, 30, 48, 54],
    29: [0, 8, 16, 17, 19, 21, 22, 24, 26, 27, 30, 31, 33, 35, 36, 37, 39, 41, 42, 44, 45, 46,
         48, 51, 54, 57, 62, 66, 28],
    68: list(range(68)),
}


def fit_memory(data, n_faces, n_init):
    """The peak memory (MiB) that fitting the reduced ERT on the first ``n_faces`` training
    faces with ``n_init`` initialisations adds to a process that holds the decoded images."""
    data = Path(data)
    faces = cascade.load_faces(data / "lfpw" / "trainset", data / "helen" / "trainset", data / "afw",
                               lazy=True).subset(slice(0, n_faces))
    images = faces.images.load()             # decoded before, so that the fit's own memory is measured
    model = cascade.ERT(**{**CONFIG, "n_init": n_init}, n_jobs=1)
    return peak_growth_mib(lambda: model.fit(images, faces.shapes, np.round(faces.face_boxes())))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "300w")
    parser.add_argument("--out", default=SCRATCH / "scaling", help="benchmarks/results to publish")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parts", default="landmarks,batch,training", type=lambda s: s.split(","))
    parser.add_argument("--model", help="saved ERT for the batch part (default: the 68-point one trained here)")
    args = parser.parse_args(argv)
    if "batch" in args.parts and "landmarks" not in args.parts and not args.model:
        parser.error("the batch part needs --model, or the landmarks part to train one")
    threadpool_limits(1)
    data = Path(args.data)
    # The memory part's children decode their own faces: here, only the other parts need pixels.
    decode = bool(set(args.parts) - {"memory"})
    train = cascade.load_faces(data / "lfpw" / "trainset", data / "helen" / "trainset", data / "afw",
                               lazy=not decode)
    test = cascade.load_faces(data / "lfpw" / "testset", lazy=not decode)
    train_boxes, test_boxes = np.round(train.face_boxes()), np.round(test.face_boxes())
    test_images = list(test.images) if decode else []
    results = {"config": CONFIG, "landmarks": [], "batch": [], "training": [], "memory": []}
    full = cascade.ERT.load(args.model) if args.model else None

    for n_points, indices in SUBSETS.items() if "landmarks" in args.parts else ():
        assert len(set(indices)) == n_points
        model = cascade.ERT(**CONFIG, scheme=IBUG68.subset(indices), n_jobs=1)
        model.fit(train.images, train.shapes[:, indices], train_boxes)
        seconds = median_seconds(lambda: model.predict(test_images, test_boxes), args.repeats)
        error = cascade.nme(model.predict(test_images, test_boxes), test.shapes[:, indices], "box-size").mean()
        results["landmarks"].append({"n_landmarks": n_points, "faces_per_second": len(test_images) / seconds,
                                     "nme_box_size": float(error)})
        print(results["landmarks"][-1], flush=True)
        if n_points == 68 and full is None:
            full = model

    results["batch_model"] = args.model or "the 68-point model above"
    for batch in (1, 4, 16, 64, 256, 1024) if "batch" in args.parts else ():
        index = np.arange(batch) % len(test_images)
        images, boxes = [test_images[i] for i in index], test_boxes[index]
        full.n_jobs = 1
        seconds = median_seconds(lambda: full.predict(images, boxes), args.repeats)
        results["batch"].append({"batch": batch, "faces_per_second": batch / seconds})
        print(results["batch"][-1], flush=True)

    for n_faces in (250, 500, 1000, len(train)) if "training" in args.parts else ():
        subset = train.subset(slice(0, n_faces))
        started = time.perf_counter()
        cascade.ERT(**CONFIG, n_jobs=1).fit(subset.images, subset.shapes, train_boxes[:n_faces])
        results["training"].append({"n_faces": n_faces, "seconds": time.perf_counter() - started})
        print(results["training"][-1], flush=True)

    for n_faces, n_init in ([(250, 5), (500, 5), (1000, 5), (len(train), 5), (500, 1), (500, 10), (500, 20)]
                            if "memory" in args.parts else ()):
        # A fresh process each: memory freed by an earlier fit would hide a later one's growth.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            growth = pool.submit(fit_memory, str(data), n_faces, n_init).result()
        results["memory"].append({"n_faces": n_faces, "n_init": n_init, "peak_growth_mib": growth})
        print(results["memory"][-1], flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"scaling-{'-'.join(args.parts)}.json").write_text(json.dumps(results, indent=1))
    lines = [f"One thread. Models trained here: reduced ERT ({CONFIG['n_stages']} stages x "
             f"{CONFIG['n_trees']} trees, {CONFIG['n_init']} initialisations)."]
    if results["landmarks"]:
        lines += ["", "| landmarks | faces/s | NME box-size (%) |", "|---|---|---|"]
        lines += [f"| {r['n_landmarks']} | {r['faces_per_second']:,.0f} | {100 * r['nme_box_size']:.2f} |"
                  for r in results["landmarks"]]
    if results["batch"]:
        lines += ["", f"Batch model: {results['batch_model']}.", "",
                  "| faces per predict call | faces/s |", "|---|---|"]
        lines += [f"| {r['batch']} | {r['faces_per_second']:,.0f} |" for r in results["batch"]]
    if results["training"]:
        lines += ["", "| training faces (+ mirrors) | training time (s) | s per face |", "|---|---|---|"]
        lines += [f"| {r['n_faces']} | {r['seconds']:.1f} | {r['seconds'] / r['n_faces']:.3f} |"
                  for r in results["training"]]
    if results["memory"]:
        lines += ["", "| training faces (+ mirrors) | initialisations | peak memory growth (MiB) |",
                  "|---|---|---|"]
        lines += [f"| {r['n_faces']} | {r['n_init']} | {r['peak_growth_mib']:.0f} |" for r in results["memory"]]
    (out / f"scaling-{'-'.join(args.parts)}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

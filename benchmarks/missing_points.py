"""Training on incomplete annotations: missing points left out, or filled by pseudo-labels.

    python -m benchmarks.missing_points [--method ERT] [--data ../shared/data/300w]
                                        [--out benchmarks/results]

Half the training faces (``lfpw/trainset``, ``helen/trainset``, ``afw``; chosen with seed 0)
lose 40 % of their 68 points (28): half of those faces lose whole regions, as occlusion
does (the jaw, an eye, the mouth..., groups drawn in random order until 28 points are
gone, the last group cut short), the other half 28 points at random. Four models of the
same kind and seed are trained and scored on ``lfpw/testset`` (GT tight boxes, rounded
as the suite's):

  (a) the complete half only;  (b) every face, the missing points NaN (``missing="ignore"``);
  (c) every face, pseudo-labelled (``missing="pseudo-label"``);  (d) every face complete (the bound).

Every face's box is the tight box of its complete annotation in all four (a dataset's face
box, which an annotation with missing points does not give). The method is a reduced ERT
(10 stages x 100 trees, 5 initialisations) or ``--method LBF`` (the fast preset), to keep the
run to minutes. Writes ``missing_points.json`` and ``.md`` to ``--out``.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

import cascade
from cascade.schemes import IBUG68

from . import SCRATCH

HIDDEN_SHARE = 0.4
METHODS = {"ERT": lambda: cascade.ERT(n_stages=10, n_trees=100, n_init=5, random_state=0, n_jobs=2),
           "LBF": lambda: cascade.LBF(preset="fast", random_state=0, n_jobs=2),
           "ASM": lambda: cascade.ASM(n_jobs=2)}


def hide_points(shapes, rng):
    """A copy of ``shapes`` with 40 % of the points of half the faces set to NaN (the module's
    docstring), and the indices of those faces."""
    n_faces, n_points = shapes.shape[:2]
    n_hidden = int(np.ceil(HIDDEN_SHARE * n_points))
    faces = np.sort(rng.choice(n_faces, n_faces // 2, replace=False))
    hidden = shapes.copy()
    groups = list(IBUG68.groups.values())
    for k, face in enumerate(faces):
        if k % 2 == 0:          # occlusion: whole regions
            points = np.concatenate([groups[g] for g in rng.permutation(len(groups))])[:n_hidden]
        else:
            points = rng.choice(n_points, n_hidden, replace=False)
        hidden[face, points] = np.nan
    return hidden, faces


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "300w")
    parser.add_argument("--method", default="ERT", choices=sorted(METHODS))
    parser.add_argument("--out", default=SCRATCH / "missing-points", help="benchmarks/results to publish")
    args = parser.parse_args(argv)
    data = Path(args.data)
    train = cascade.load_faces(data / "lfpw" / "trainset", data / "helen" / "trainset", data / "afw")
    test = cascade.load_faces(data / "lfpw" / "testset")
    images, boxes = list(train.images), train.face_boxes()
    test_boxes = np.round(test.face_boxes())
    hidden, incomplete = hide_points(train.shapes, np.random.default_rng(0))
    complete = np.setdiff1d(np.arange(len(train)), incomplete)
    conditions = {
        "(a) the complete half only": ([images[i] for i in complete], train.shapes[complete], boxes[complete], {}),
        "(b) all faces, missing points ignored": (images, hidden, boxes, {"missing": "ignore"}),
        "(c) all faces, pseudo-labels": (images, hidden, boxes, {"missing": "pseudo-label"}),
        "(d) all faces complete (bound)": (images, train.shapes, boxes, {}),
    }
    results = {}
    for name, (fit_images, shapes, fit_boxes, options) in conditions.items():
        started = time.perf_counter()
        model = METHODS[args.method]().fit(fit_images, shapes, fit_boxes, **options)
        seconds = time.perf_counter() - started
        error = float(np.mean(cascade.nme(model.predict(test.images, test_boxes), test.shapes)))
        results[name] = {"nme": error, "training_seconds": seconds}
        if hasattr(model, "pseudo_labelled_"):
            filled = model.pseudo_labelled_
            pseudo = model.pseudo_labels_[filled]
            results[name]["pseudo_label_nme_px"] = float(np.mean(np.linalg.norm(
                pseudo - train.shapes[filled], axis=-1)))
        print(name, results[name], flush=True)
    a, d = (results[key]["nme"] for key in ("(a) the complete half only", "(d) all faces complete (bound)"))
    lines = [f"{args.method}: {len(train)} training faces (+ mirrors), {len(incomplete)} of them with "
             f"{int(np.ceil(HIDDEN_SHARE * 68))} of 68 points hidden; lfpw/testset, GT tight boxes.", "",
             "| training | NME inter-ocular (%) | gap to (d) closed | training (s) |", "|---|---|---|---|"]
    for name, result in results.items():
        closed = (a - result["nme"]) / (a - d) if a != d else float("nan")
        lines.append(f"| {name} | {100 * result['nme']:.2f} | {100 * closed:.0f} % "
                     f"| {result['training_seconds']:.0f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"missing_points-{args.method.lower()}"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

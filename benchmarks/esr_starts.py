"""ESR's test-time starts: random training shapes (seed luck) against starts spread over the shape space.

    python -m benchmarks.esr_starts [--parts validation,seeds] [--seeds 0,1,2] [--cache DIR]
                                    [--data ../shared/data/300w] [--out benchmarks/results]

- validation: ESR (the paper's defaults, seed 0) trained on the training folders less the
  last 300 faces of ``helen/trainset``, which score each way of choosing the 5 starts
  (GT tight boxes): random training shapes (5 draws), the spread starts at several
  scales, the mean shape alone. What the library does by default was chosen here.
- seeds: ESR trained on all the training folders with 3 seeds, scored on ``lfpw/testset``
  with the starts each seed drew (before) and with the spread starts (after): the mean
  and the spread over the seeds.

Models are cached in ``--cache``. Writes ``esr_starts.json`` and ``esr_starts.md`` to ``--out``.
"""
import argparse
import json
from pathlib import Path

import numpy as np

import cascade
from cascade.esr import SPREAD_SCALE, spread_starts
from cascade.shapes import flip_boxes, flip_shapes, to_unit

from . import SCRATCH

VALIDATION_FACES = 300
SCALES = (0.5, 1.0, 1.5, 2.0)


def training_targets(faces, boxes, scheme):
    """The unit-frame shapes ESR's fit keeps (each face and its mirror), missing points the mean's."""
    widths = np.array([image.shape[1] for image in faces.images], np.float64)
    shapes = np.concatenate([faces.shapes, flip_shapes(faces.shapes, widths, scheme)])
    unit = to_unit(shapes, np.concatenate([boxes, flip_boxes(boxes, widths)]))
    return np.where(np.isnan(unit), np.nanmean(unit, axis=0), unit)


def fitted(path, faces, boxes, seed):
    if Path(path).exists():
        return cascade.ESR.load(path)
    model = cascade.ESR(random_state=seed, n_jobs=2, test_starts="random").fit(faces.images, faces.shapes, boxes)
    model.save(path)
    return model


def nme_with_starts(model, starts, faces, boxes):
    model.initial_shapes_ = np.asarray(starts, np.float32)
    return float(np.mean(cascade.nme(model.predict(faces.images, boxes), faces.shapes)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "300w")
    parser.add_argument("--cache", default=SCRATCH / "esr-starts-models")
    parser.add_argument("--parts", default="validation,seeds", type=lambda s: s.split(","))
    parser.add_argument("--seeds", default="0,1,2", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--out", default=SCRATCH / "esr-starts", help="benchmarks/results to publish")
    args = parser.parse_args(argv)
    data, cache = Path(args.data), Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    train = cascade.load_faces(data / "lfpw" / "trainset", data / "helen" / "trainset", data / "afw")
    results, lines = {"spread_scale": SPREAD_SCALE}, []

    if "validation" in args.parts:
        # load_faces keeps the folders' order: lfpw/trainset's faces, then helen/trainset's.
        n_lfpw, n_helen = (len(cascade.load_faces(data / folder / "trainset", lazy=True))
                           for folder in ("lfpw", "helen"))
        held_out = np.arange(n_lfpw + n_helen - VALIDATION_FACES, n_lfpw + n_helen)
        kept = np.setdiff1d(np.arange(len(train)), held_out)
        fit_faces, score_faces = train.subset(kept), train.subset(held_out)
        fit_boxes, score_boxes = np.round(fit_faces.face_boxes()), np.round(score_faces.face_boxes())
        model = fitted(cache / "esr-validation-seed0.npz", fit_faces, fit_boxes, 0)
        targets = training_targets(fit_faces, fit_boxes, model.scheme_)
        rows = {}
        rng = np.random.default_rng(0)
        rows["random training shapes (5 draws)"] = [
            nme_with_starts(model, targets[rng.choice(len(targets), model.n_test_init, replace=False)],
                            score_faces, score_boxes) for _ in range(5)]
        for scale in SCALES:
            rows[f"spread, {scale} std"] = [nme_with_starts(model, spread_starts(targets, model.n_test_init, scale),
                                                            score_faces, score_boxes)]
        rows["mean shape only (x5)"] = [nme_with_starts(model, [targets.mean(axis=0)] * model.n_test_init,
                                                        score_faces, score_boxes)]
        results["validation"] = rows
        lines += [f"Validation: ESR(random_state=0) trained on {len(fit_faces)} training faces (+ mirrors), "
                  f"scored on the last {VALIDATION_FACES} faces of helen/trainset, GT tight boxes.", "",
                  "| starts | NME inter-ocular (%) |", "|---|---|"]
        lines += [f"| {name} | " + (f"{100 * np.mean(v):.2f} (draws: {', '.join(f'{100 * x:.2f}' for x in v)})"
                                     if len(v) > 1 else f"{100 * v[0]:.2f}") + " |" for name, v in rows.items()]

    if "seeds" in args.parts:
        test = cascade.load_faces(data / "lfpw" / "testset")
        train_boxes, test_boxes = np.round(train.face_boxes()), np.round(test.face_boxes())
        targets = None
        before, after = [], []
        for seed in args.seeds:
            model = fitted(cache / f"esr-seed{seed}.npz", train, train_boxes, seed)
            if targets is None:
                targets = training_targets(train, train_boxes, model.scheme_)
            drawn = model.initial_shapes_.copy()
            before.append(nme_with_starts(model, drawn, test, test_boxes))
            after.append(nme_with_starts(model, spread_starts(targets, model.n_test_init, SPREAD_SCALE),
                                         test, test_boxes))
            print(f"seed {seed}: before {100 * before[-1]:.2f} %, after {100 * after[-1]:.2f} %", flush=True)
        results["seeds"] = {"seeds": args.seeds, "before": before, "after": after}
        lines += ["", f"lfpw/testset, ESR trained on all {len(train)} training faces (+ mirrors) with seeds "
                  f"{', '.join(map(str, args.seeds))}, GT tight boxes (rounded, as the suite's).", "",
                  "| starts | NME per seed (%) | mean (%) | spread, max - min (points) | std (points) |",
                  "|---|---|---|---|---|"]
        for name, values in (("random training shapes, drawn by the seed (before)", before),
                             (f"spread, {SPREAD_SCALE} std (after)", after)):
            values = 100 * np.array(values)
            lines.append(f"| {name} | {', '.join(f'{v:.2f}' for v in values)} | {values.mean():.2f} | "
                         f"{np.ptp(values):.2f} | {values.std():.2f} |")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "esr_starts.json").write_text(json.dumps(results, indent=1))
    (out / "esr_starts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

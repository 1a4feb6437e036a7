"""The rank and bits of compressed leaves, chosen on the training folders only, by two-fold validation.

    python -m benchmarks.leaf_rank [--starts points|boxes] [--estimators LBF ERT] [--bits-rank default]
                                   [--data ../shared/data/300w] [--work DIR] [--out DIR]

Each fold trains a model on two training folders and scores the third's faces (``helen/trainset``
from ``lfpw/trainset`` + ``afw``, and ``lfpw/trainset`` from ``helen/trainset`` + ``afw``), in one of
two recipes: ``--starts points``, the bundled one (:func:`cascade.training.train_landmarker`:
five-point starts that err as YuNet's, int16 leaves), scored from YuNet's calibrated points as the
pipeline starts them; ``--starts boxes``, the estimator's own ``fit`` from tight boxes (float
leaves), as the benchmark suite trains it, scored from the tight boxes of the same faces. Each face's
cost of compression is its NME with the leaves compressed (:meth:`cascade.forest.ForestCascade.compress`)
minus its NME with the full leaves: a paired difference, whose mean over the two folds' faces has a
standard error far smaller than that of either NME alone.

The rule, fixed before its first run: an option passes when the mean paired increase plus one
standard error is at most ``--limit`` (0.02 NME points, the issue's target); the chosen rank is the
smallest from which every larger rank passes, at 16 bits; then, at that rank, the chosen bits are the
fewest from which every larger number passes. When even the largest fails, it is chosen and the
output says so. The defaults (:data:`cascade.forest.LEAF_RANKS`, :data:`cascade.forest.LEAF_BITS`)
serve both recipes: each is the larger of the two runs' choices. A run sweeps the bits at its own
chosen rank, or with ``--bits-rank default`` at the default rank, the one the defaults' bits serve.
``lfpw/testset`` is never read. Trained models are kept in ``--work``, so a second run only scores.
"""
import argparse
import json
from pathlib import Path

import numpy as np

import cascade
from cascade.detect import YuNetDetector, detect_faces
from cascade.forest import LEAF_RANKS
from cascade.shapes import tight_boxes
from cascade.training import train_landmarker

from . import SCRATCH
from .run import DEFAULT_DATA

RANKS = (16, 24, 32, 40, 48, 56, 64, 80, 96)
BITS = (8, 9, 10, 11, 12, 14, 16)
ESTIMATORS = {"LBF": lambda: cascade.LBF(preset="fast", n_jobs=2, random_state=0),
              "ERT": lambda: cascade.ERT(n_jobs=2, random_state=0)}
#: Each fold: the folder scored, and the folders its model trains on.
FOLDS = (("helen/trainset", ("lfpw/trainset", "afw")),
         ("lfpw/trainset", ("helen/trainset", "afw")))


def validation_faces(folder, starts="points"):
    """A folder's images, true shapes and ``predict``'s start arguments, for the faces YuNet finds:
    YuNet's points (``starts="points"``) or the tight boxes of the true shapes (``"boxes"``)."""
    faces = cascade.load_faces(folder, lazy=True)
    images, truth = list(faces.images), faces.shapes
    _, detected = detect_faces(YuNetDetector(), images, truth, n_jobs=2)
    found = np.flatnonzero(~np.isnan(detected).any(axis=(1, 2)))
    start = ({"points": detected[found], "detector": "yunet"} if starts == "points"
             else {"boxes": tight_boxes(truth[found])})
    return [images[i] for i in found], truth[found], start


def summary(increase):
    """The mean paired increase and its standard error."""
    return {"mean": float(increase.mean()), "se": float(increase.std(ddof=1) / np.sqrt(len(increase)))}


def bound(increase):
    """The mean paired increase plus one standard error."""
    row = summary(increase)
    return row["mean"] + row["se"]


def smallest_passing(options, increases, limit):
    """The smallest option from which every larger one passes (``bound <= limit``), and whether one did."""
    passing = [bound(increases[option]) <= limit for option in options]
    for k, option in enumerate(options):
        if all(passing[k:]):
            return option, True
    return options[-1], False


def fold_models(tag, make, folds, data, work, starts="points"):
    """Each fold's ``(model, validation faces)``: ``make()`` trained on the fold's training folders,
    kept in ``work`` as ``{tag}-without-{scored folder}.npz`` (``{tag}-boxes-...`` for box starts)
    and read from there when present. ``starts="points"``: the bundled recipe (int16 leaves);
    ``"boxes"``: the estimator's own ``fit`` from tight boxes (float leaves), as the suite trains it."""
    models = []
    for scored, trained, faces in folds:
        path = work / f"{tag}{'' if starts == 'points' else '-boxes'}-without-{scored.replace('/', '-')}.npz"
        if not path.exists():
            train = cascade.load_faces(*(data / folder for folder in trained))
            if starts == "points":
                model = train_landmarker(make(), list(train.images), train.shapes, point_share=1,
                                         detectors=["yunet"], int16=True, n_jobs=2)
            else:
                model = make().fit(list(train.images), train.shapes)
            model.save(path)
        models.append((cascade.load_model(path), faces))
    return models


def errors(models, rank=None, bits=16):
    """Each validation face's NME, the folds' ``(model, faces)`` in turn, with the model's leaves
    compressed to ``rank`` and ``bits`` (None: the full leaves)."""
    return np.concatenate([
        cascade.nme((model if rank is None else model.compress(rank, bits)).predict(images, **start), truth)
        for model, (images, truth, start) in models])


def fold_parser(description):
    """The arguments of a choice made on these folds: data, kept models, the limit and the output."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--work", default=str(SCRATCH / "leaf-rank"), help="where the trained models are kept")
    parser.add_argument("--limit", type=float, default=0.0002, help="NME increase (a fraction, not points)")
    parser.add_argument("--out", default=str(SCRATCH / "leaf-rank"), help="benchmarks/results to publish")
    return parser


def main(argv=None):
    parser = fold_parser(__doc__.splitlines()[0])
    parser.add_argument("--starts", choices=("points", "boxes"), default="points",
                        help="the bundled recipe from YuNet's points, or the estimators' own fit from tight boxes")
    parser.add_argument("--estimators", nargs="+", choices=tuple(ESTIMATORS), default=tuple(ESTIMATORS))
    parser.add_argument("--bits-rank", choices=("chosen", "default"), default="chosen",
                        help="sweep the bits at this run's chosen rank or at cascade.forest.LEAF_RANKS")
    args = parser.parse_args(argv)
    data, work, out = Path(args.data), Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    folds = [(scored, trained, validation_faces(data / scored, args.starts)) for scored, trained in FOLDS]
    results = {"validation_faces": {scored: len(faces[1]) for scored, _, faces in folds},
               "limit": args.limit, "starts": args.starts, "estimators": {}}
    for name in args.estimators:
        models = fold_models(name.lower(), ESTIMATORS[name], folds, data, work, args.starts)
        full = errors(models)
        by_rank = {rank: errors(models, rank, 16) - full for rank in RANKS}
        rank, rank_passed = smallest_passing(RANKS, by_rank, args.limit)
        bits_rank = rank if args.bits_rank == "chosen" else LEAF_RANKS[name]
        by_bits = {bits: errors(models, bits_rank, bits) - full for bits in BITS}
        bits, bits_passed = smallest_passing(BITS, by_bits, args.limit)
        results["estimators"][name] = {
            "full": float(full.mean()), "by_rank": {r: summary(d) for r, d in by_rank.items()},
            "chosen": rank, "rank_passed": rank_passed, "bits_rank": bits_rank,
            "by_bits": {b: summary(d) for b, d in by_bits.items()}, "chosen_bits": bits, "bits_passed": bits_passed}
        print(name, json.dumps(results["estimators"][name]), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    stem = "leaf_rank" if args.starts == "points" else "leaf_rank-boxes"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    (out / f"{stem}.md").write_text(table(results))
    print(table(results))


def table(results):
    """The increases, in NME points, as mean +- one standard error."""
    def cell(row):
        return f"{100 * row['mean']:+.3f} ± {100 * row['se']:.3f}"

    faces = sum(results["validation_faces"].values())
    lines = [(f"Paired NME increase over the full leaves (points, mean ± standard error) on {faces} faces "
              f"of two folds; limit {100 * results['limit']:.2f} points."), "",
             "| estimator | full leaves | " + " | ".join(f"rank {r}" for r in RANKS) + " | chosen |",
             "|---" * (len(RANKS) + 3) + "|"]
    for name, row in results["estimators"].items():
        flag = "" if row["rank_passed"] else " (none passed)"
        lines.append(f"| {name} | {100 * row['full']:.3f} % | "
                     + " | ".join(cell(row["by_rank"][r]) for r in RANKS) + f" | {row['chosen']}{flag} |")
    lines += ["", "| estimator (at its rank) | " + " | ".join(f"{b} bits" for b in BITS) + " | chosen |",
              "|---" * (len(BITS) + 2) + "|"]
    for name, row in results["estimators"].items():
        flag = "" if row["bits_passed"] else " (none passed)"
        lines.append(f"| {name} (rank {row['bits_rank']}) | "
                     + " | ".join(cell(row["by_bits"][b]) for b in BITS) + f" | {row['chosen_bits']}{flag} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

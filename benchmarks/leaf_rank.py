"""The rank of compressed leaves, chosen on the training folders only.

    python -m benchmarks.leaf_rank [--data ../shared/data/300w] [--work DIR] [--out DIR]

Models are trained with the bundled recipe (:func:`cascade.training.train_landmarker`: five-point
starts that err as YuNet's, int16 leaves) on ``lfpw/trainset`` and ``afw``, then scored on 300
``helen/trainset`` faces started from YuNet's calibrated points, as the pipeline starts them, with
their leaves compressed to each rank (:meth:`cascade.forest.ForestCascade.compress`). The chosen
rank, :data:`cascade.forest.LEAF_RANKS`, is the smallest whose NME stays within ``--tolerance``
(0.01 points) of the full leaves'; then, at that rank, the bits of precision kept of each
coefficient, :data:`cascade.forest.LEAF_BITS`, the fewest within the same tolerance.
``lfpw/testset`` is never read. Trained models are kept in ``--work``, so a second run only scores.
"""
import argparse
import json
from pathlib import Path

import numpy as np

import cascade
from cascade.detect import YuNetDetector, detect_faces
from cascade.training import train_landmarker

from . import SCRATCH
from .run import DEFAULT_DATA

RANKS = (16, 24, 32, 40, 48, 56, 64, 80, 96)
BITS = (8, 9, 10, 11, 12, 14, 16)
ESTIMATORS = {"LBF": lambda: cascade.LBF(preset="fast", n_jobs=2, random_state=0),
              "ERT": lambda: cascade.ERT(n_jobs=2, random_state=0)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--work", default=str(SCRATCH / "leaf-rank"), help="where the trained models are kept")
    parser.add_argument("--tolerance", type=float, default=0.0001, help="NME (a fraction, not points)")
    parser.add_argument("--out", default=str(SCRATCH / "leaf-rank"), help="benchmarks/results to publish")
    args = parser.parse_args(argv)
    data, work, out = Path(args.data), Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    validation = cascade.load_faces(data / "helen" / "trainset", lazy=True).subset(slice(0, 300))
    images, truth = list(validation.images), validation.shapes
    _, detected = detect_faces(YuNetDetector(), images, truth, n_jobs=2)
    found = np.flatnonzero(~np.isnan(detected).any(axis=(1, 2)))
    images, truth, detected = [images[i] for i in found], truth[found], detected[found]
    results = {"validation_faces": len(found), "tolerance": args.tolerance, "estimators": {}}
    for name, make in ESTIMATORS.items():
        path = work / f"{name.lower()}-validation.npz"
        if not path.exists():
            train = cascade.load_faces(data / "lfpw" / "trainset", data / "afw")
            train_landmarker(make(), list(train.images), train.shapes, point_share=1, detectors=["yunet"],
                             int16=True, n_jobs=2).save(path)
        model = cascade.load_model(path)

        def error(landmarker):
            return float(cascade.nme(landmarker.predict(images, points=detected, detector="yunet"), truth).mean())

        full = error(model)
        by_rank = {rank: error(model.compress(rank)) for rank in RANKS}
        chosen = next(rank for rank in RANKS if by_rank[rank] <= full + args.tolerance)
        by_bits = {bits: error(model.compress(chosen, bits)) for bits in BITS}
        bits = next(bits for bits in BITS if by_bits[bits] <= full + args.tolerance)
        results["estimators"][name] = {"full": full, "by_rank": by_rank, "chosen": chosen,
                                       "by_bits": by_bits, "chosen_bits": bits}
        print(name, json.dumps(results["estimators"][name]), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "leaf_rank.json").write_text(json.dumps(results, indent=1))
    lines = ["| estimator | full leaves | " + " | ".join(f"rank {r}" for r in RANKS) + " | chosen |",
             "|---" * (len(RANKS) + 3) + "|"]
    for name, row in results["estimators"].items():
        lines.append(f"| {name} | {100 * row['full']:.3f} | "
                     + " | ".join(f"{100 * row['by_rank'][r]:.3f}" for r in RANKS) + f" | {row['chosen']} |")
    lines += ["", "| estimator (at its rank) | " + " | ".join(f"{b} bits" for b in BITS) + " | chosen |",
              "|---" * (len(BITS) + 2) + "|"]
    for name, row in results["estimators"].items():
        lines.append(f"| {name} (rank {row['chosen']}) | "
                     + " | ".join(f"{100 * row['by_bits'][b]:.3f}" for b in BITS) + f" | {row['chosen_bits']} |")
    (out / "leaf_rank.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""How many points LBF's fast preset samples per landmark and stage, on the training folders only.

    python -m benchmarks.lbf_points [--data ../shared/data/300w] [--work DIR] [--out DIR]

A face reads 68 x ``points_per_landmark`` pixels a stage, and reading them is most of lbf-68's
time (docs/notes/2026-12-06-benchmark-passes.md, "The embedded runtime"). Each candidate trains a model on each fold of
:mod:`benchmarks.leaf_rank` (the bundled recipe; the preset's 32 points are that script's LBF
models, shared through ``--work``), compressed at the default rank and bits as the bundled file
is. A candidate's cost is each validation face's NME minus its NME with 32 points and full
leaves (the fold's 32-point model, uncompressed); it passes when the mean cost plus one standard
error is at most ``--limit`` (0.02 points), and the chosen number is the smallest from which
every larger one passes, the rule of :mod:`benchmarks.leaf_rank`. Speed: faces/s on one thread
from YuNet's points over both folds' validation faces, the candidates timed in turn (medians of
7 rounds). ``lfpw/testset`` is never read.
"""
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import cascade

from .leaf_rank import FOLDS, errors, fold_models, fold_parser, smallest_passing, summary, validation_faces

POINTS = (16, 20, 24, 28, 32)


def faces_per_second(candidates, rounds=7):
    """Each candidate's faces/s over its folds' faces (one thread), the candidates timed in turn."""
    seconds = {points: [] for points in candidates}
    for _ in range(rounds + 1):                     # the first round warms up
        for points, models in candidates.items():
            started = time.perf_counter()
            for model, (images, _, start) in models:
                model.predict(images, **start)
            seconds[points].append(time.perf_counter() - started)
    n_faces = sum(len(faces[1]) for _, faces in next(iter(candidates.values())))
    return {points: n_faces / float(np.median(times[1:])) for points, times in seconds.items()}


def main(argv=None):
    args = fold_parser(__doc__.splitlines()[0]).parse_args(argv)
    data, work, out = Path(args.data), Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    folds = [(scored, trained, validation_faces(data / scored)) for scored, trained in FOLDS]
    full = {}
    for points in POINTS:
        tag = "lbf" if points == 32 else f"lbf-{points}-points"
        make = partial(cascade.LBF, preset="fast", points_per_landmark=points, n_jobs=2, random_state=0)
        full[points] = fold_models(tag, make, folds, data, work)
    compressed = {points: [(model.compress().set_params(n_jobs=1), faces) for model, faces in models]
                  for points, models in full.items()}
    reference = errors(full[32])
    costs = {points: errors(models) - reference for points, models in compressed.items()}
    chosen, passed = smallest_passing(POINTS, costs, args.limit)
    with threadpool_limits(1):
        speed = faces_per_second(compressed)
    results = {"validation_faces": sum(len(faces[1]) for _, _, faces in folds), "limit": args.limit,
               "reference_nme": float(reference.mean()), "chosen": chosen, "passed": passed,
               "by_points": {points: {**summary(costs[points]), "faces_per_second": speed[points]}
                             for points in POINTS}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "lbf_points.json").write_text(json.dumps(results, indent=1))
    (out / "lbf_points.md").write_text(table(results))
    print(table(results))


def table(results):
    lines = [(f"LBF fast, compressed at the default rank and bits, on {results['validation_faces']} validation "
              f"faces of two folds from YuNet's points: NME increase over 32 points with full leaves "
              f"({100 * results['reference_nme']:.3f} %), points, mean ± standard error; limit "
              f"{100 * results['limit']:.2f} points."), "",
             "| points per landmark | reads a face | NME increase | faces/s, 1 thread |", "|---|---|---|---|"]
    for points, row in results["by_points"].items():
        lines.append(f"| {points} | {5 * 68 * int(points):,} | {100 * row['mean']:+.3f} ± {100 * row['se']:.3f} "
                     f"| {row['faces_per_second']:,.0f} |")
    flag = "" if results["passed"] else " (none passed)"
    lines += ["", f"Chosen: {results['chosen']}{flag}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

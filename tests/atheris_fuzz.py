#!/usr/bin/env python3
"""Coverage-guided fuzzing of the model loaders and the pixel sampler with atheris.

    pip install atheris
    python tests/atheris_fuzz.py seeds                  # write the loader's seed models
    python tests/atheris_fuzz.py loader  tests/fuzz_corpus/loader  -max_total_time=300
    python tests/atheris_fuzz.py sampler tests/fuzz_corpus/sampler -max_total_time=300

The targets are in ``fuzz_targets.py``; any exception other than the clear refusals they
allow, or a failed check, stops the run with the input saved as ``crash-*``. libFuzzer
adds the inputs that reach new code to the corpus folder; ``tests/test_fuzz_compiled.py``
replays that folder in every test run (and under AddressSanitizer in ``.ci/asan``).
Keep the committed corpus small: merge a run's finds into a fresh folder with
``-merge=1 NEW OLD``.
"""
import os
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["cascade", "fuzz_targets"]):
    import fuzz_targets

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"


def write_seeds():
    """Tiny models of every estimator on ten training faces, saved uncompressed (so that
    mutations reach the values), and a dlib-format model, each behind its loader's byte."""
    import numpy as np
    from test_dlib_format import tiny_dlib_model

    import cascade
    from cascade import ASM, ERT, ESR, LBF
    data = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "300w" / "lfpw" / "trainset"
    faces = cascade.load_faces(data, lazy=True).subset(slice(0, 10))
    images = list(faces.images)
    # Five points (eye corners, nose tip, mouth corners) keep the regressors' files small;
    # ASM keeps the 68 points (the seed files of the original corpus).
    five = dict(random_state=0, n_init=1)
    tiny = {ERT: dict(n_stages=1, n_trees=2, tree_depth=2, feature_pool_size=8, **five),
            LBF: dict(n_stages=1, n_trees=1, tree_depth=2, points_per_landmark=4, n_candidate_splits=4,
                      **five),
            ESR: dict(n_stages=1, n_ferns=2, fern_depth=2, feature_pool_size=8, **five),
            ASM: dict(n_levels=1, face_size=32, max_iterations=1)}
    folder = CORPUS / "loader"
    folder.mkdir(parents=True, exist_ok=True)
    for estimator, params in tiny.items():
        path = folder / f"seed-{estimator.__name__}"
        shapes = faces.shapes if estimator is ASM else faces.shapes[:, [36, 45, 30, 48, 54]]
        estimator(**params).fit(images, shapes).save(path.with_suffix(".npz"), compress=False)
        loader = fuzz_targets.LOADERS.index(estimator.load)
        path.write_bytes(bytes([loader]) + path.with_suffix(".npz").read_bytes())
        path.with_suffix(".npz").unlink()
    _, dlib_bytes = tiny_dlib_model(np.random.default_rng(0))
    (folder / "seed-dlib").write_bytes(bytes([fuzz_targets.LOADERS.index(ERT.from_dlib)]) + dlib_bytes)


def main():
    if sys.argv[1:2] == ["seeds"]:
        write_seeds()
        return
    # libFuzzer re-runs this script for -merge without the target's name: it travels in
    # the environment instead.
    if sys.argv[1] in fuzz_targets.TARGETS:
        os.environ["CASCADE_FUZZ_TARGET"] = sys.argv.pop(1)
    target = fuzz_targets.TARGETS[os.environ["CASCADE_FUZZ_TARGET"]]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""LBF: regressing local binary features (Ren, Cao, Wei & Sun, CVPR 2014).

Each of ``n_stages`` stages learns, for every landmark, a random forest of
``n_trees`` regression trees on pixel differences read inside a disc around that
landmark (radius shrinking stage by stage from ``radius_start`` to
``radius_end``, in the unit frame of the box), each tree regressing that
landmark's own offset. The leaves a face reaches, one per tree, are the active
bits of its binary feature vector; one global linear regression, L2-regularised,
maps those bits of all landmarks to the update of the whole shape. Targets and
updates are in the mean shape's frame (the similarity from the mean to the
current shape undone), as in the paper.

At prediction time the regression is a gather-add: each active bit selects one
weight row. A forest's tree with its weight rows in place of leaf values is a
tree of the shared model of :mod:`cascade.forest`, so the compiled loop that
predicts ERT predicts LBF.

The regression is solved exactly, from its normal equations, by a Cholesky
factorisation (see :func:`_global_regression`).
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .extras import require
from .forest import ForestCascade
from .forest_training import MAX_STAGE_POINTS, check_tree_params
from .trees import TreeGrower, leaves_of, sample_thresholds
from .validation import check_real

#: Passes of the global regression over missing targets (:func:`_global_regression`): each
#: shrinks the distance to the least-squares answer over the known targets by about the share
#: of targets missing.
MISSING_TARGET_PASSES = 5
#: The two documented settings; any parameter given explicitly overrides its preset value.
#: Measured on lfpw/testset, GT boxes (BENCHMARKS.md, "Every method, from tight boxes"): fast
#: 3.66 % inter-ocular NME at ~5,000 faces/s on one thread, accurate 3.41 % at ~1,900. ``alpha`` was chosen on a
#: validation split (train lfpw/trainset + afw, score helen/trainset).
PRESETS = {
    # After LBF-fast: 4 trees per landmark, so that a face costs 1,360 tree walks and
    # weight rows (the accurate preset: 4,080).
    "fast": dict(n_stages=5, n_trees=4, tree_depth=5, n_init=8, points_per_landmark=32,
                 n_candidate_splits=200, radius_start=0.3, radius_end=0.08, sample_fraction=0.5,
                 alpha=0.1),
    "accurate": dict(n_stages=6, n_trees=10, tree_depth=5, n_init=10, points_per_landmark=50,
                     n_candidate_splits=300, radius_start=0.3, radius_end=0.06, sample_fraction=0.5,
                     alpha=0.1),
}


class LBF(ForestCascade):
    """Local binary features face alignment.

    Parameters left at ``None`` take their value from ``preset``.

    Parameters
    ----------
    preset : "accurate" (default) or "fast"; see ``cascade.lbf.PRESETS``
    n_stages : cascade stages
    n_trees : trees per landmark per stage
    tree_depth : depth of every tree (a landmark's binary code has
        ``n_trees * 2**tree_depth`` bits, ``n_trees`` of them set)
    n_init : initial shapes per training face (the mean shape, then other faces' shapes)
    points_per_landmark : shape-indexed points drawn in each landmark's disc per stage
    n_candidate_splits : random (pair, threshold) candidates tried per node
    radius_start, radius_end : disc radius at the first and last stage, in the
        unit frame (box width 1); geometric in between
    sample_fraction : share of the training samples each tree is grown on
        (drawn without replacement, so the trees of a forest differ)
    alpha : L2 penalty of the global regression, per training sample: it
        minimises ``mean ||x W - y||^2 + alpha ||W||^2``
    mirror : also train on the mirror image of every face (True)
    scheme : the landmark scheme (:class:`cascade.schemes.Scheme` or a registered name): the
        mirror map for ``mirror``, the five points for five-point starts; None: the built-in
        scheme of the training shapes' point count (68: iBUG)
    outside : what a point off the image reads: "clamp" (nearest border pixel) or "zero"
    random_state : seed (int) or ``numpy.random.Generator``; same seed, same model
    n_jobs : threads for training and prediction (1; -1 for all cores)
    verbose : when > 0, a progress bar of the stages while fitting (and their residuals logged at INFO)

    Missing (NaN) training points: a landmark's forest grows on the samples that know it, and
    the global regression fits the known target coordinates only (:func:`_global_regression`).
    """

    _MEAN_FRAME_UPDATES = True

    def __init__(self, preset="accurate", n_stages=None, n_trees=None, tree_depth=None, n_init=None,
                 points_per_landmark=None, n_candidate_splits=None, radius_start=None,
                 radius_end=None, sample_fraction=None, alpha=None, mirror=True,
                 scheme=None, outside="clamp", random_state=None, n_jobs=1, verbose=0):
        self.preset = preset
        self.n_stages = n_stages
        self.n_trees = n_trees
        self.tree_depth = tree_depth
        self.n_init = n_init
        self.points_per_landmark = points_per_landmark
        self.n_candidate_splits = n_candidate_splits
        self.radius_start = radius_start
        self.radius_end = radius_end
        self.sample_fraction = sample_fraction
        self.alpha = alpha
        self.mirror = mirror
        self.scheme = scheme
        self.outside = outside
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def settings(self):
        """The preset's values with every explicitly given parameter in their place."""
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        return {name: value if getattr(self, name) is None else getattr(self, name)
                for name, value in PRESETS[self.preset].items()}

    # -- training ---------------------------------------------------------------------

    def _fit_stage(self, stage, samples, config, rng):
        """Forests, binary features and global regression of one stage; moves the samples on."""
        require("scipy", "fitting an LBF", "train")        # before the first stage's trees, not after them
        n_landmarks = samples.mean.shape[0]
        n_points = config["points_per_landmark"]
        if n_landmarks * n_points > MAX_STAGE_POINTS:
            raise ValueError(f"{n_landmarks} landmarks x points_per_landmark={n_points} exceed the "
                             f"{MAX_STAGE_POINTS:,} points a stage may have")
        radius = np.geomspace(config["radius_start"], config["radius_end"], config["n_stages"])[stage]
        anchors = np.repeat(np.arange(n_landmarks, dtype=np.int32), n_points)
        offsets = _disc_points(rng, radius, n_landmarks * n_points)
        pixels = samples.pixels(anchors, offsets)
        residuals, to_current = samples.mean_frame_residuals()

        seeds = rng.integers(2 ** 63, size=n_landmarks)
        known = None if samples.present is None else samples.present[:, ::2].astype(bool)     # (n, L)
        with ThreadPoolExecutor(samples.n_jobs) as pool:
            forests = list(pool.map(
                lambda landmark: self._fit_forest(pixels[:, landmark * n_points:(landmark + 1) * n_points],
                                                  residuals[:, 2 * landmark:2 * landmark + 2],
                                                  None if known is None else known[:, landmark], config,
                                                  np.random.default_rng(seeds[landmark])),
                range(n_landmarks)))
        split_u, split_v, split_threshold, leaf_of = (np.concatenate(part) for part in zip(*forests))
        # Forest l's points are l's block of the stage's pool.
        shift = np.repeat(np.arange(n_landmarks) * n_points, config["n_trees"])[:, None]
        split_u, split_v = (split_u + shift).astype(np.int32), (split_v + shift).astype(np.int32)

        n_leaves = 2 ** config["tree_depth"]
        features = _binary_features(leaf_of, n_leaves)
        weights = _global_regression(leaf_of, features, residuals, config["alpha"], samples.n_jobs, samples.present)
        samples.move(features @ weights, to_current)
        leaf_values = weights.reshape(len(split_u), n_leaves, -1).astype(np.float32)
        return anchors, offsets, split_u, split_v, split_threshold, leaf_values

    def _finish_fit(self, samples, config, rng):
        self._drop_unused_points()

    def _drop_unused_points(self):
        """Keep only the pool points some split reads, renumbering the splits: fewer pixel reads.

        Every stage keeps as many points as the stage that reads the most, its
        first unread points filling in (the arrays are one block).
        """
        n_stages, n_points = self.anchors_.shape
        used = np.zeros((n_stages, n_points), bool)
        for stage in range(n_stages):
            used[stage, self.split_u_[stage].ravel()] = used[stage, self.split_v_[stage].ravel()] = True
        n_kept = used.sum(axis=1).max()
        keep = np.argsort(~used, axis=1, kind="stable")[:, :n_kept]        # read points first, in order
        new_index = np.full((n_stages, n_points), -1, np.int32)
        np.put_along_axis(new_index, keep, np.arange(n_kept, dtype=np.int32)[None].repeat(n_stages, 0), 1)
        stage_of = np.arange(n_stages)[:, None, None]
        self.split_u_ = np.ascontiguousarray(new_index[stage_of, self.split_u_])
        self.split_v_ = np.ascontiguousarray(new_index[stage_of, self.split_v_])
        self.anchors_ = np.ascontiguousarray(np.take_along_axis(self.anchors_, keep, 1))
        self.offsets_ = np.ascontiguousarray(np.take_along_axis(self.offsets_, keep[:, :, None], 1),
                                             dtype=np.float32)

    def _fit_forest(self, pixels, residuals, known, config, rng):
        """One landmark's random forest, grown on the samples where the landmark is ``known`` (a mask;
        None: all); returns its split arrays and every sample's leaves."""
        pixels = np.ascontiguousarray(pixels)
        residuals = np.ascontiguousarray(residuals)
        n_samples, n_points = pixels.shape
        growable = np.arange(n_samples) if known is None else np.flatnonzero(known)
        if len(growable) < 2:
            raise ValueError("a landmark is known in fewer than 2 training samples")
        n_splits = 2 ** config["tree_depth"] - 1
        n_grow = max(2, int(round(config["sample_fraction"] * len(growable))))
        n_trees, n_candidates = config["n_trees"], config["n_candidate_splits"]
        split_u = np.empty((n_trees, n_splits), np.int64)
        split_v = np.empty_like(split_u)
        split_threshold = np.empty((n_trees, n_splits), np.float32)
        leaf_of = np.empty((n_trees, n_samples), np.int32)
        for tree in range(n_trees):
            grown_on = growable[np.sort(rng.choice(len(growable), size=min(n_grow, len(growable)), replace=False))]
            grower = TreeGrower(pixels[grown_on], residuals[grown_on])
            u = rng.integers(0, n_points, (n_splits, n_candidates))
            v = (u + rng.integers(1, n_points, (n_splits, n_candidates))) % n_points   # v != u
            grown = grower.grow(u, v, sample_thresholds(grower.pixels, rng))
            split_u[tree], split_v[tree] = grown.split_u, grown.split_v
            split_threshold[tree] = grown.split_threshold
            leaf_of[tree] = leaves_of(pixels, grown.split_u, grown.split_v, grown.split_threshold)
        return split_u, split_v, split_threshold, leaf_of

    def _check_params(self):
        """Check the resolved settings; returns them."""
        config = self.settings()
        check_tree_params(config, ("n_stages", "n_trees", "tree_depth", "n_init", "points_per_landmark",
                                   "n_candidate_splits"), "points_per_landmark", "tree_depth", self.outside)
        for name in ("radius_start", "radius_end", "alpha"):
            check_real(config[name], name)
        check_real(config["sample_fraction"], "sample_fraction", high=1)
        return config

    def _array_params(self, n_stages, n_trees, n_points, tree_depth, n_landmarks):
        config = self.settings()
        return {"n_stages": (config["n_stages"], n_stages),
                "n_trees": (config["n_trees"] * n_landmarks, n_trees),
                "tree_depth": (config["tree_depth"], tree_depth)}


def _disc_points(rng, radius, n):
    """``n`` points uniform in the disc of ``radius`` about the origin, ``(n, 2)``."""
    angle = rng.uniform(0, 2 * np.pi, n)
    distance = radius * np.sqrt(rng.uniform(0, 1, n))
    return np.stack([distance * np.cos(angle), distance * np.sin(angle)], axis=1)


def _binary_features(leaf_of, n_leaves):
    """The sparse ``(n_samples, n_trees * n_leaves)`` 0/1 matrix of the leaves reached."""
    n_trees, n_samples = leaf_of.shape
    columns = (leaf_of + (np.arange(n_trees) * n_leaves)[:, None]).T.ravel()
    rows = np.arange(n_samples + 1) * n_trees
    csr_matrix = require("scipy.sparse", "fitting an LBF", "train").csr_matrix   # predicting never imports SciPy
    return csr_matrix((np.ones(len(columns)), columns, rows), shape=(n_samples, n_trees * n_leaves))


def _global_regression(leaf_of, features, targets, alpha, n_jobs, present=None):
    """Weights ``W`` minimising ``mean ||x W - y||^2 + alpha ||W||^2``, ``(n_features, D)``.

    Where ``present`` ``(n, D)`` marks target coordinates missing (0), the squares run over the
    known ones only: the missing ones are filled with the model's own predictions and the
    system solved again (EM for missing responses, each pass a pair of triangular solves with the
    same factorisation), ``MISSING_TARGET_PASSES`` times, so they pull the weights nowhere
    instead of towards no movement.

    ``x`` is the binary feature vector of the leaves ``leaf_of`` ``(n_trees, n)``
    reaches, the rows of ``features`` (:func:`_binary_features`). Solved exactly from the normal
    equations ``(X'X + alpha n I) W = X'Y``
    by LAPACK's Cholesky factorisation (``scipy.linalg.cho_factor``), all outputs
    sharing one factorisation. ``X'X`` is never formed from ``X``: its block for
    trees ``a, b`` is the table of how many samples reach leaf ``i`` of ``a`` and
    ``j`` of ``b``, counted with ``numpy.bincount``, ``n`` steps per pair of trees.
    """
    n_trees, n_samples = leaf_of.shape
    n_features = features.shape[1]
    n_leaves = n_features // n_trees
    gram = np.zeros((n_features, n_features))
    leaf_of = leaf_of.astype(np.intp)

    def count_row(a):
        # Upper triangle only (the factorisation reads no more): trees b >= a against tree a.
        codes = (leaf_of[a] * n_leaves)[None] + leaf_of[a:]
        codes += (np.arange(n_trees - a) * n_leaves ** 2)[:, None]
        tables = np.bincount(codes.ravel(), minlength=(n_trees - a) * n_leaves ** 2)
        gram[a * n_leaves:(a + 1) * n_leaves, a * n_leaves:] = (
            tables.reshape(n_trees - a, n_leaves, n_leaves).transpose(1, 0, 2).reshape(n_leaves, -1))

    with ThreadPoolExecutor(n_jobs) as pool:
        list(pool.map(count_row, range(n_trees)))
    gram[np.diag_indices(n_features)] += alpha * n_samples
    right = np.asarray(features.T @ targets.astype(np.float64))
    # LAPACK works in column order: the transpose (a view) holds the lower triangle in
    # that order, so the factorisation happens in place instead of on a copy.
    linalg = require("scipy.linalg", "fitting an LBF", "train")
    cho_factor, cho_solve = linalg.cho_factor, linalg.cho_solve
    factor = cho_factor(gram.T, lower=True, overwrite_a=True, check_finite=False)
    weights = cho_solve(factor, right, overwrite_b=True, check_finite=False)
    if present is not None:
        known = present.astype(bool)
        for _ in range(MISSING_TARGET_PASSES):
            filled = np.where(known, targets, features @ weights)
            weights = cho_solve(factor, np.asarray(features.T @ filled), overwrite_b=True, check_finite=False)
    return weights

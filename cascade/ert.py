"""ERT: the ensemble of regression trees cascade (Kazemi & Sullivan, CVPR 2014).

Each of ``n_stages`` stages holds a pool of ``feature_pool_size`` shape-indexed
points (see :mod:`cascade.features`) and ``n_trees`` gradient-boosted regression
trees whose splits compare two of those pixels and whose leaves add a shape
update in the unit frame of the face box. Training follows the paper: initial
shapes taken from other training faces (``n_init`` per face, the first being the
mean shape), split pairs drawn with an exponential prior on their distance,
``n_candidate_splits`` random candidates per node, leaves holding the mean
residual times ``shrinkage``. One change from dlib: candidate thresholds are
drawn at the data (``split_thresholds="data"``) rather than from a fixed range.

The fitted model is the eight flat arrays of :mod:`cascade.forest`.
"""
import numpy as np

from .dlib_format import read_shape_predictor
from .forest import ForestCascade
from .forest_training import check_tree_params, feature_pool
from .trees import BoostedResiduals, PairSampler, TreeGrower, sample_thresholds
from .validation import check_real

#: Split thresholds are drawn uniformly from this range of grey-level differences (as dlib).
THRESHOLD_RANGE = 64.0
#: The parameters that must be positive integers.
TREE_INTEGERS = ("n_stages", "n_trees", "tree_depth", "n_init", "feature_pool_size", "n_candidate_splits")


class ERT(ForestCascade):
    """Ensemble of regression trees face alignment; defaults are the paper's.

    Parameters
    ----------
    n_stages : cascade stages (10)
    n_trees : trees per stage (500)
    tree_depth : depth of every tree (4: 15 splits, 16 leaves)
    shrinkage : learning rate applied to every leaf (0.1)
    n_init : initial shapes per training face (20)
    feature_pool_size : shape-indexed points per stage (400)
    n_candidate_splits : random split candidates tried per node (20)
    distance_prior : length scale of the exponential prior on the distance of a
        split's two points, in the unit frame (0.1; pairs ``d`` apart are drawn
        with weight ``exp(-d / distance_prior)``)
    feature_pool_padding : how far beyond the mean shape's box the points may
        lie, in the unit frame (0.0)
    split_thresholds : how candidate thresholds are drawn: "data" (default), the
        pixel difference of a random training sample in the node, so that every
        candidate splits it; or "uniform", uniform in [-64, 64] grey levels as dlib
    mirror : also train on the mirror image of every face (True)
    scheme : the landmark scheme (:class:`cascade.schemes.Scheme` or a registered name): the
        mirror map for ``mirror``, the five points for five-point starts; None: the built-in
        scheme of the training shapes' point count (68: iBUG)
    outside : what a feature point off the image reads: "clamp" (the nearest
        border pixel) or "zero" (0, dlib's convention; models from
        :meth:`from_dlib` use it)
    random_state : seed (int) or ``numpy.random.Generator``; same seed, same model
    n_jobs : threads for training and prediction (1; -1 for all cores)
    verbose : when > 0, a progress bar of the stages while fitting (and their residuals logged at INFO)

    Missing (NaN) training points: their residuals are held at zero and counted for no sample,
    so they choose no split (a split's gain and a leaf's value for a coordinate are over the
    samples that know it), and no training start is drawn from a face with gaps.
    """

    def __init__(self, n_stages=10, n_trees=500, tree_depth=4, shrinkage=0.1, n_init=20,
                 feature_pool_size=400, n_candidate_splits=20, distance_prior=0.1,
                 feature_pool_padding=0.0, split_thresholds="data", mirror=True,
                 scheme=None, outside="clamp",
                 random_state=None, n_jobs=1, verbose=0):
        self.n_stages = n_stages
        self.n_trees = n_trees
        self.tree_depth = tree_depth
        self.shrinkage = shrinkage
        self.n_init = n_init
        self.feature_pool_size = feature_pool_size
        self.n_candidate_splits = n_candidate_splits
        self.distance_prior = distance_prior
        self.feature_pool_padding = feature_pool_padding
        self.split_thresholds = split_thresholds
        self.mirror = mirror
        self.scheme = scheme
        self.outside = outside
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- training ---------------------------------------------------------------------

    def _fit_stage(self, stage, samples, config, rng):
        """One cascade stage of boosted trees; moves the samples on by the stage's prediction."""
        n_splits = 2 ** self.tree_depth - 1
        anchors, offsets, positions = feature_pool(samples.mean, self.feature_pool_size,
                                                   self.feature_pool_padding, rng)
        pixels = samples.pixels(anchors, offsets)
        residuals = BoostedResiduals(samples.residuals(), samples.present)

        grower = TreeGrower(pixels, residuals.values, samples.n_jobs, samples.present)
        pairs = PairSampler(positions, self.distance_prior)
        split_u = np.empty((self.n_trees, n_splits), np.int32)
        split_v = np.empty_like(split_u)
        split_threshold = np.empty((self.n_trees, n_splits), np.float32)
        leaf_values = np.empty((self.n_trees, n_splits + 1, residuals.values.shape[1]), np.float32)
        try:
            for tree in range(self.n_trees):
                candidate_u, candidate_v = pairs.draw(rng, (n_splits, self.n_candidate_splits))
                if self.split_thresholds == "data":
                    candidate_threshold = sample_thresholds(grower.pixels, rng)
                else:
                    candidate_threshold = rng.uniform(-THRESHOLD_RANGE, THRESHOLD_RANGE,
                                                      (n_splits, self.n_candidate_splits))
                grown = grower.grow(candidate_u, candidate_v, candidate_threshold)
                counts = grown.leaf_counts.reshape(n_splits + 1, -1)       # per coordinate if points are missing
                leaf_values[tree] = self.shrinkage * grown.leaf_sums / np.maximum(counts, 1)
                residuals.subtract(grown.leaf_of, leaf_values[tree])
                split_u[tree], split_v[tree] = grown.split_u, grown.split_v
                split_threshold[tree] = grown.split_threshold
        finally:
            grower.close()
        samples.move(residuals.update())
        return anchors, offsets, split_u, split_v, split_threshold, leaf_values

    def _check_params(self):
        """Check the parameters; returns them."""
        params = self.get_params()
        check_tree_params(params, TREE_INTEGERS, "feature_pool_size", "tree_depth", self.outside)
        check_real(self.shrinkage, "shrinkage", high=1)
        check_real(self.distance_prior, "distance_prior")
        if self.split_thresholds not in ("data", "uniform"):
            raise ValueError(f"split_thresholds must be 'data' or 'uniform', got {self.split_thresholds!r}")
        check_real(self.feature_pool_padding, "feature_pool_padding", include_low=True)
        return params

    # -- models from elsewhere ----------------------------------------------------------

    @classmethod
    def from_dlib(cls, path):
        """An ERT holding the model of a dlib ``shape_predictor`` file (e.g. dlib's 68-point model).

        Boxes mean the same as dlib's rectangles (``right = left + width - 1``), and
        pixels off the image read 0 as in dlib, so on grey images the predictions
        are dlib's. On colour images dlib averages the channels while cascade uses
        BT.601 luma, so pass ``cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)`` to match dlib.
        """
        arrays = read_shape_predictor(path)
        n_stages, n_trees, n_splits = arrays["split_u_"].shape
        params = dict(n_stages=n_stages, n_trees=n_trees, tree_depth=int(np.log2(n_splits + 1)),
                      feature_pool_size=arrays["anchors_"].shape[1], outside="zero")
        return cls._from_arrays(params, arrays, path)

    def _array_params(self, n_stages, n_trees, n_points, tree_depth, n_landmarks):
        return {"n_stages": (self.n_stages, n_stages), "n_trees": (self.n_trees, n_trees),
                "feature_pool_size": (self.feature_pool_size, n_points),
                "tree_depth": (self.tree_depth, tree_depth)}


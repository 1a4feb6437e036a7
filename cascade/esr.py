"""ESR: explicit shape regression (Cao, Wei, Wen & Sun, CVPR 2012).

The boosted form of cascaded pose regression (Dollar, Welinder & Perona 2010),
with two levels of boosting. Each of ``n_stages`` outer stages draws a pool of
``feature_pool_size`` shape-indexed points (uniform over the mean shape's box,
each in the local coordinates of its nearest landmark) and boosts ``n_ferns``
random ferns on the pixel differences of that pool. A fern of depth ``F`` holds
``F`` pixel-difference tests; the ``2**F`` outcomes are its bins, and a bin adds
the mean residual of its training samples, shrunk towards zero by
``shrinkage`` (``beta``): ``sum / (count + beta)``. Each test's pixel pair is
chosen by correlation: the residuals are projected on a random direction and the
pair whose difference correlates best with the projection is taken, computed
from the pixels' covariances without forming any pair's feature (the paper's
section 2.3). Targets and updates are in the mean shape's frame. At test time
the cascade runs from ``n_test_init`` starts and the coordinate-wise median of
the results is returned. The paper draws the starts from the training shapes at
random, which makes the accuracy a matter of seed luck; by default here they are
spread over the training shapes' space (:func:`spread_starts`): the mean shape,
then the mean moved ``SPREAD_SCALE`` standard deviations either way along the
first principal components, chosen on a validation split of the training
folders (``benchmarks/esr_starts.py``).

The thresholds: the paper draws them at random; here a test's threshold is the
pixel difference of a random training sample (less 0.5), so that every test
splits the data.

A fern is a complete tree whose nodes on one level share their test, so the
fitted model is the eight flat arrays of :mod:`cascade.forest` plus the start
shapes ``initial_shapes_`` ``(n_test_init, L, 2)``, and the compiled loop that
predicts ERT and LBF predicts ESR.
"""
import numpy as np

from .forest import ForestCascade
from .forest_training import check_tree_params, feature_pool
from .trees import BoostedResiduals, leaf_sums, leaves_of
from .validation import check_real

#: How far the spread starts lie from the mean shape, in standard deviations along each
#: principal component (``benchmarks/esr_starts.py`` chose it on a validation split).
SPREAD_SCALE = 1.0
#: How the test-time starts are chosen (``test_starts``).
TEST_STARTS = ("spread", "random")
#: The parameters that must be positive integers.
FERN_INTEGERS = ("n_stages", "n_ferns", "fern_depth", "n_init", "n_test_init", "feature_pool_size")


class ESR(ForestCascade):
    """Explicit shape regression with random ferns; defaults are the paper's.

    Parameters
    ----------
    n_stages : outer stages, each with its own feature pool (10)
    n_ferns : ferns boosted per stage (500)
    fern_depth : pixel-difference tests per fern (5: 32 bins)
    shrinkage : ``beta``, the count a bin's mean is shrunk by: a bin adds
        ``sum / (count + beta)`` of its residuals (1000)
    n_init : initial shapes per training face, the mean and other faces' shapes (20)
    n_test_init : starts per face at prediction; the median of the results is returned (5)
    test_starts : how they are chosen from the training shapes: "spread" (the mean shape and
        shapes spread along the principal components, :func:`spread_starts`: the same training
        faces give the same starts whatever the seed) or "random" (random training shapes, as
        the paper)
    feature_pool_size : shape-indexed points per stage (400)
    feature_pool_padding : how far beyond the mean shape's box the points may
        lie, in the unit frame (0.0)
    mirror : also train on the mirror image of every face (True)
    scheme : the landmark scheme (:class:`cascade.schemes.Scheme` or a registered name): the
        mirror map for ``mirror``, the five points for five-point starts; None: the built-in
        scheme of the training shapes' point count (68: iBUG)
    outside : what a feature point off the image reads: "clamp" (the nearest
        border pixel) or "zero"
    random_state : seed (int) or ``numpy.random.Generator``; same seed, same model
    n_jobs : threads for pixel sampling and prediction (1; -1 for all cores)
    verbose : when > 0, a progress bar of the stages while fitting (and their residuals logged at INFO)

    Missing (NaN) training points: their residuals are held at zero, so they choose no pixel
    pair, and a bin's value for a coordinate averages the samples that know it.
    """

    _MEAN_FRAME_UPDATES = True
    _ARRAYS = {**ForestCascade._ARRAYS, "initial_shapes_": (["float32"], 3)}

    def __init__(self, n_stages=10, n_ferns=500, fern_depth=5, shrinkage=1000.0, n_init=20,
                 n_test_init=5, test_starts="spread", feature_pool_size=400, feature_pool_padding=0.0,
                 mirror=True, scheme=None, outside="clamp", random_state=None, n_jobs=1, verbose=0):
        self.n_stages = n_stages
        self.n_ferns = n_ferns
        self.fern_depth = fern_depth
        self.shrinkage = shrinkage
        self.n_init = n_init
        self.n_test_init = n_test_init
        self.test_starts = test_starts
        self.feature_pool_size = feature_pool_size
        self.feature_pool_padding = feature_pool_padding
        self.mirror = mirror
        self.scheme = scheme
        self.outside = outside
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- training ---------------------------------------------------------------------

    def _fit_stage(self, stage, samples, config, rng):
        """Boost one stage's ferns on every sample; moves the samples on by their prediction."""
        depth, n_bins = self.fern_depth, 2 ** self.fern_depth
        anchors, offsets, _ = feature_pool(samples.mean, self.feature_pool_size, self.feature_pool_padding, rng)
        pixels = samples.pixels(anchors, offsets)
        start_residuals, to_current = samples.mean_frame_residuals()
        residuals = BoostedResiduals(start_residuals, samples.present)
        selector = CorrelationSelector(pixels)

        split_u = np.empty((self.n_ferns, n_bins - 1), np.int32)
        split_v = np.empty_like(split_u)
        split_threshold = np.empty((self.n_ferns, n_bins - 1), np.float32)
        leaf_values = np.empty((self.n_ferns, n_bins, residuals.values.shape[1]), np.float32)
        for fern in range(self.n_ferns):
            directions = rng.normal(size=(residuals.values.shape[1], depth)).astype(np.float32)
            u, v = selector.select(residuals.values, directions)
            sample = rng.integers(0, len(pixels), depth)
            threshold = pixels[sample, u].astype(np.float32) - pixels[sample, v] - 0.5
            split_u[fern], split_v[fern], split_threshold[fern] = fern_as_tree(u, v, threshold)
            leaf_of = leaves_of(pixels, split_u[fern], split_v[fern], split_threshold[fern])
            sums = leaf_sums(residuals.values, leaf_of, n_bins)
            # An empty bin (sum 0) adds nothing, whatever the shrinkage, even 0.
            leaf_values[fern] = sums / np.maximum(residuals.counts(leaf_of, n_bins) + self.shrinkage, 1.0)
            residuals.subtract(leaf_of, leaf_values[fern])
        samples.move(residuals.update(), to_current)
        return anchors, offsets, split_u, split_v, split_threshold, leaf_values

    def _finish_fit(self, samples, config, rng):
        shapes = samples.face_targets[samples.start_faces]      # as the training starts: no patchworks
        if self.test_starts == "spread":
            self.initial_shapes_ = spread_starts(shapes, self.n_test_init).astype(np.float32)
            return
        faces = rng.choice(len(shapes), size=self.n_test_init, replace=self.n_test_init > len(shapes))
        self.initial_shapes_ = shapes[faces].astype(np.float32)

    def _check_params(self):
        """Check the parameters; returns them."""
        params = self.get_params()
        check_tree_params(params, FERN_INTEGERS, "feature_pool_size", "fern_depth", self.outside)
        check_real(self.shrinkage, "shrinkage", include_low=True)
        check_real(self.feature_pool_padding, "feature_pool_padding", include_low=True)
        if self.test_starts not in TEST_STARTS:
            raise ValueError(f"test_starts must be one of {TEST_STARTS}, got {self.test_starts!r}")
        return params

    def _array_params(self, n_stages, n_trees, n_points, tree_depth, n_landmarks):
        return {"n_stages": (self.n_stages, n_stages), "n_ferns": (self.n_ferns, n_trees),
                "feature_pool_size": (self.feature_pool_size, n_points),
                "fern_depth": (self.fern_depth, tree_depth),
                "n_test_init": (self.n_test_init, len(self.initial_shapes_))}

    def _check_arrays(self):
        super()._check_arrays()
        expected = (self.n_test_init, *self.mean_shape_.shape)
        if self.initial_shapes_.shape != expected:
            raise ValueError(f"initial_shapes_ has shape {self.initial_shapes_.shape}, expected {expected}")


def spread_starts(shapes, n_starts, scale=SPREAD_SCALE):
    """``(n_starts, L, 2)`` starts spread over the space of ``shapes`` ``(n, L, 2)`` (complete, one frame).

    The mean shape first, then the mean moved ``scale`` standard deviations along the first
    principal component, the other way, along the second, the other way...: a deterministic
    choice that covers the shapes' main modes (pose, then expression) symmetrically.
    """
    flat = np.asarray(shapes, np.float64).reshape(len(shapes), -1)
    mean = flat.mean(axis=0)
    _, singular, components = np.linalg.svd(flat - mean, full_matrices=False)
    deviations = scale * singular / np.sqrt(max(len(flat) - 1, 1))
    starts = [mean]
    for k in range(n_starts - 1):
        component, sign = divmod(k, 2)
        component %= len(components)
        starts.append(mean + (-1) ** sign * deviations[component] * components[component])
    return np.array(starts).reshape(n_starts, *np.shape(shapes)[1:])


def fern_as_tree(u, v, threshold):
    """A fern's ``F`` tests as the ``2**F - 1`` split nodes of a complete tree, heap order.

    Every node of level ``l`` holds test ``l``, so the leaf a sample reaches is the
    fern's bin: its ``F`` outcomes read as bits, the first test the highest.
    """
    level = np.repeat(np.arange(len(u)), 2 ** np.arange(len(u)))
    return u[level], v[level], threshold[level]


class CorrelationSelector:
    """Chooses a fern's pixel pairs by correlation with projected residuals (Cao et al. 2.3).

    For a projection ``y`` of the residuals, the correlation of ``y`` with the
    difference of pixels ``m`` and ``n`` is
    ``(cov(y, p_m) - cov(y, p_n)) / (std(y) * std(p_m - p_n))``; ``std(y)`` is the
    same for every pair, and ``std(p_m - p_n)`` comes from the pixels' covariance,
    computed once per stage. So one pass over the samples per fern (``cov(y, p)``
    for every pixel) is all a choice among ``P**2`` pairs costs.
    """

    def __init__(self, pixels):
        self.centred = pixels.astype(np.float32)
        self.centred -= self.centred.mean(axis=0)
        covariance = (self.centred.T @ self.centred).astype(np.float64)
        variance = np.diag(covariance)
        pair_variance = variance[:, None] + variance[None] - 2 * covariance
        # A pair whose difference never varies (the same pixel, or two constant ones) carries
        # nothing: weight 0, so it is never preferred.
        self.inverse_std = np.where(pair_variance > 1e-6 * max(variance.max(), 1.0),
                                    1.0 / np.sqrt(np.maximum(pair_variance, 1e-12)), 0.0)

    def select(self, residuals, directions):
        """The pair ``(u[f], v[f])`` best correlated with ``residuals @ directions[:, f]``, for each f."""
        covariance = self.centred.T @ (residuals @ directions)          # (P, F), up to a constant
        u = np.empty(directions.shape[1], np.intp)
        v = np.empty_like(u)
        for f, column in enumerate(covariance.T.astype(np.float64)):
            score = (column[:, None] - column[None, :]) * self.inverse_std
            u[f], v[f] = np.unravel_index(np.argmax(score), score.shape)
        return u, v

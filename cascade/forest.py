"""What ERT, LBF and ESR share: a cascade of pixel-difference trees whose leaves add to the shape.

All three fit the same model, eight flat arrays per cascade of
``n_stages`` stages with ``K`` trees each:

- ``mean_shape_`` ``(L, 2)``: the start shape, in the unit frame of the box;
- ``anchors_`` ``(n_stages, P)`` and ``offsets_`` ``(n_stages, P, 2)``: each stage's
  shape-indexed points (see :mod:`cascade.features`);
- ``split_u_``, ``split_v_``, ``split_threshold_`` ``(n_stages, K, 2**depth - 1)``:
  split nodes in heap order, a face going left when ``pixel[u] - pixel[v] > threshold``;
- ``leaf_values_`` ``(n_stages, K, 2**depth, 2L)``: what each leaf adds to the
  shape (float32, or int16 times ``leaf_scale_[stage]``); in a compressed model
  (:meth:`ForestCascade.compress`) ``(n_stages, K, 2**depth, R)``, the leaf's
  coefficients on its stage's ``R`` basis vectors ``leaf_basis_`` ``(n_stages, R, 2L)``.

ERT's leaves are boosted regression-tree means; an LBF leaf holds the row of the
stage's global linear regression that its binary feature selects; an ESR fern is
a tree whose nodes on one level share their test. Either way prediction is the
one compiled loop in ``ext/forest.pyx``. A model may also hold start shapes,
``initial_shapes_`` ``(R, L, 2)`` (ESR): prediction then runs from each of them
instead of the mean shape and returns the coordinate-wise median.

This module is the fitted model and its prediction; the training loop and its
samples are :mod:`cascade.forest_training` (as dlib splits ``shape_predictor``
from its trainer), and a NumPy twin of the prediction, the tests' oracle, is
``tests/reference.py``.
"""
import numpy as np

from ._ext import forest as _forest
from .base import BaseCascade
from .forest_training import train_stages
from .io import cache_aligned
from .validation import as_real_array, check_boxes, check_image, check_images


#: The rank :meth:`ForestCascade.compress` gives each estimator's leaves by default, chosen by
#: two-fold validation on the training folders (the test folder is never read): models trained
#: on two of helen/trainset, lfpw/trainset and afw score the third train folder's faces, both as
#: the bundled models are trained and started (five-point starts, YuNet's points) and as the
#: estimator's own ``fit`` trains them (tight boxes); a rank passes when the faces' mean paired
#: NME increase over the full leaves, plus one standard error, is at most 0.02 points, and the
#: default is the smallest rank from which every larger one passes in both.
#: ``python -m benchmarks.leaf_rank [--starts boxes]`` makes the choice again.
LEAF_RANKS = {"LBF": 32, "ERT": 48}
#: The bits of precision :meth:`ForestCascade.compress` keeps of each coefficient by default, chosen
#: by the same rule at the default rank in both runs (``--bits-rank default``), the larger of the
#: two. A coefficient is stored as an int16 holding a whole number of that many bits: small numbers
#: the model file's deflate packs, and the compiled loop sums in int16 many trees at a time.
LEAF_BITS = {"LBF": 8, "ERT": 10}


class ForestCascade(BaseCascade):
    """Base of the tree cascades: the fitted arrays, prediction, quantisation and model checks.

    A subclass trains one stage at a time (``_fit_stage``, see
    :func:`cascade.forest_training.train_stages`) and says, in ``_array_params``,
    which of its parameters the arrays' sizes fix. ``_MEAN_FRAME_UPDATES`` says
    whether a stage's summed leaves are an update in the mean shape's frame, to
    be turned by the similarity from the mean shape to the current shape before
    being added (LBF), or an update in the box's unit frame (ERT, as dlib).
    """

    _MEAN_FRAME_UPDATES = False

    _ARRAYS = {
        "mean_shape_": (["float32"], 2),
        "anchors_": (["int32"], 2),
        "offsets_": (["float32"], 3),
        "split_u_": (["int32"], 3),
        "split_v_": (["int32"], 3),
        "split_threshold_": (["float32"], 3),
        "leaf_values_": (["float32", "int16"], 4),
        "leaf_scale_": (["float64"], 1),
    }
    _OPTIONAL_ARRAYS = {"leaf_basis_": (["float32"], 3)}
    #: The arrays the compiled loop reads, in the order it takes them.
    _COMPILED = ("mean_shape_", "anchors_", "offsets_", "split_u_", "split_v_", "split_threshold_",
                 "leaf_values_", "leaf_scale_", "leaf_basis_")

    def _fit(self, images, shapes, boxes, rolls, mean):
        train_stages(self, images, shapes, boxes, rolls, mean)

    def _predict(self, images, boxes, rolls=None):
        out = np.empty((len(images), len(self.mean_shape_), 2))

        def run(chunk):
            self._run(images[chunk], boxes[chunk], None if rolls is None else rolls[chunk], out[chunk])

        self._map_faces(run, len(images))
        return out

    def _run(self, images, boxes, rolls, out, phase_seconds=None):
        starts = getattr(self, "initial_shapes_", None)
        if starts is not None:
            every = np.empty((len(images) * len(starts), *out.shape[1:]))
            every_image, every_box, start_shapes = every_start(images, boxes, starts)
            self._run_compiled(every_image, every_box, start_shapes, every, phase_seconds,
                               None if rolls is None else np.repeat(rolls, len(starts)))
            out[:] = median_over_starts(every, len(images))
        else:
            self._run_compiled(images, boxes, None, out, phase_seconds, rolls)

    def _run_compiled(self, images, boxes, start_shapes, out, phase_seconds, rolls):
        self._checked_model().predict(images, boxes, out, self.outside == "zero", phase_seconds, start_shapes,
                                      None if rolls is None else np.ascontiguousarray(rolls, dtype=np.float64))

    def _predict_one_on_points(self, image, points):
        if getattr(self, "initial_shapes_", None) is not None:         # several starts: the general path
            return None
        out = np.empty((1, len(self.mean_shape_), 2))
        finite = self._checked_model().predict_on_points(check_image(image), as_real_array(points, "points"),
                                                         self._mean_points(), out, self.outside == "zero")
        return out[0] if finite else self._finite(out)[0]

    def _checked_model(self):
        """The compiled loop's :class:`~cascade._ext.forest.CheckedModel` of the fitted arrays: checked
        once, then reused while the model holds the same (now read-only) arrays."""
        attributes = self.__dict__
        arrays = [attributes.get(name) for name in self._COMPILED]
        checked = attributes.get("_checked")
        if checked is None or not checked.holds(arrays):
            checked = _forest.CheckedModel(*arrays, mean_frame_updates=self._MEAN_FRAME_UPDATES)
            self._checked = checked            # threads racing here build equal ones: harmless
        return checked

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_checked", None)           # compiled, and rebuilt on the next prediction
        return state

    def __setstate__(self, state):
        # Unpickled (or deep-copied) arrays start where NumPy puts them: back on a cache line, as a
        # loaded or fitted model's are, so that the loop's row prefetch covers each row.
        self.__dict__.update({name: cache_aligned(value) if name in self._COMPILED and value is not None else value
                              for name, value in state.items()})

    def profile(self, images, boxes):
        """Seconds spent per phase predicting these faces on one thread.

        Returns ``{"sampling": s, "walking": s, "adding": s}``: reading the
        shape-indexed pixels, walking the trees, adding the reached leaves (for
        LBF, the global regression's gather-add).
        """
        self._check_fitted()
        images = check_images(images)
        boxes = check_boxes(boxes, len(images), [im.shape[:2] for im in images])
        seconds = np.zeros(3)
        self._run(images, boxes, None, np.empty((len(images), len(self.mean_shape_), 2)), seconds)
        return dict(zip(("sampling", "walking", "adding"), seconds.tolist()))

    def quantize(self):
        """A copy whose leaf values (or coefficients) are int16 with one scale per stage (about
        half the size)."""
        self._check_fitted()
        return self._with_leaves(self._scaled_leaves(), getattr(self, "leaf_basis_", None), "quantize")

    def compress(self, rank=None, bits=None):
        """A copy whose leaves are stored in a basis of ``rank`` vectors per stage (the leading right
        singular vectors of the stage's table of leaves), each leaf its ``rank`` int16 coefficients
        rounded to ``bits`` bits of precision (8 to 16): a tree then adds ``rank`` values instead of
        2L, a stage ends with one projection, and the file shrinks about 2L / rank times, and
        further with fewer bits. Lossy: BENCHMARKS.md ("Start-up, memory and the cost of one call")
        measures the cost per model. ``rank`` and ``bits`` default to the estimator's
        :data:`LEAF_RANKS` and :data:`LEAF_BITS` (16). A compressed model compresses again from its
        full leaves."""
        self._check_fitted()
        kind = type(self).__name__
        if rank is None:
            if kind not in LEAF_RANKS:
                raise ValueError(f"no default leaf rank for {kind}: give rank=")
            rank = LEAF_RANKS[kind]
        bits = LEAF_BITS.get(kind, 16) if bits is None else bits
        if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 8 <= bits <= 16:
            raise ValueError(f"bits must be an integer from 8 to 16, got {bits!r}")
        leaves = self._scaled_leaves()
        if getattr(self, "leaf_basis_", None) is not None:
            leaves = np.einsum("tklr,trd->tkld", leaves, self.leaf_basis_.astype(np.float64))
        width = leaves.shape[-1]
        if not isinstance(rank, (int, np.integer)) or isinstance(rank, bool) or not 1 <= rank <= width:
            raise ValueError(f"rank must be an integer from 1 to {width}, got {rank!r}")
        coefficients, basis = np.empty((*leaves.shape[:3], rank)), np.empty((len(leaves), rank, width))
        for stage, table in enumerate(leaves):
            u, singular, vt = np.linalg.svd(table.reshape(-1, width), full_matrices=False)
            # Each component's coefficients span [-1, 1] and its basis vector carries the scale, so
            # that the int16 rounding of the small components is as fine as of the large ones.
            peak = np.abs(u[:, :rank]).max(axis=0)
            peak[peak == 0] = 1.0
            coefficients[stage] = (u[:, :rank] / peak).reshape(*table.shape[:2], rank)
            basis[stage] = vt[:rank] * (singular[:rank] * peak)[:, None]
        return self._with_leaves(coefficients, basis.astype(np.float32), "compress", bits)

    def _scaled_leaves(self):
        """``leaf_values_`` as float64, int16 ones times their stage's scale."""
        leaves = self.leaf_values_.astype(np.float64)
        if self.leaf_values_.dtype == np.int16:
            leaves *= self.leaf_scale_[:, None, None, None]
        return leaves

    def _with_leaves(self, leaves, basis, source, bits=16):
        """A copy of this model with ``leaves`` (float64) stored as int16 integers of ``bits`` bits
        (-2^(bits - 1) to 2^(bits - 1) - 1), one scale per stage, and ``basis`` (None:
        uncompressed). Fewer bits, smaller numbers: the loop sums more trees' rows in int16."""
        peak = np.abs(leaves).reshape(len(leaves), -1).max(axis=1)
        scale = np.where(peak > 0, peak / 32767.0, 1.0) * 2 ** (16 - bits)
        limit = 2 ** (bits - 1)
        levels = np.clip(np.round(leaves / scale[:, None, None, None]), -limit, limit - 1)
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        arrays.update(leaf_values_=levels.astype(np.int16), leaf_scale_=scale)
        if basis is not None:
            arrays["leaf_basis_"] = basis
        copy = type(self)._from_arrays(self.get_params(), arrays, source)
        copy.__dict__.update(self._fitted_extras())
        return copy

    def _array_params(self, n_stages, n_trees, n_points, tree_depth, n_landmarks):
        """The parameters the arrays' sizes fix, as ``{name: (value given, value in the arrays)}``."""
        raise NotImplementedError

    def _check_arrays(self):
        """Parameters, shapes and indices of the fitted arrays, so the compiled loop can trust them."""
        self._check_params()
        n_landmarks = self.mean_shape_.shape[0]
        n_stages, n_points = self.anchors_.shape
        _, n_trees, n_splits = self.split_u_.shape
        expected = {
            "mean_shape_": (n_landmarks, 2), "anchors_": (n_stages, n_points),
            "offsets_": (n_stages, n_points, 2), "split_u_": (n_stages, n_trees, n_splits),
            "split_v_": (n_stages, n_trees, n_splits), "split_threshold_": (n_stages, n_trees, n_splits),
            "leaf_values_": (n_stages, n_trees, n_splits + 1, 2 * n_landmarks), "leaf_scale_": (n_stages,),
        }
        basis = getattr(self, "leaf_basis_", None)
        if basis is not None:
            if basis.ndim != 3 or basis.shape[0] != n_stages or basis.shape[2] != 2 * n_landmarks or not basis.shape[1]:
                raise ValueError(f"leaf_basis_ has shape {basis.shape}, expected ({n_stages}, R, {2 * n_landmarks})")
            expected["leaf_values_"] = (n_stages, n_trees, n_splits + 1, basis.shape[1])
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")
        if n_landmarks < 1 or n_points < 2 or n_splits < 1 or n_splits & (n_splits + 1):
            raise ValueError("model arrays do not describe complete trees over at least 2 points")
        for name, size in (("anchors_", n_landmarks), ("split_u_", n_points), ("split_v_", n_points)):
            values = getattr(self, name)
            if values.size and (values.min() < 0 or values.max() >= size):
                raise ValueError(f"{name} holds indices outside [0, {size})")
        depth = int(np.log2(n_splits + 1))
        for name, (given, actual) in self._array_params(n_stages, n_trees, n_points, depth,
                                                        n_landmarks).items():
            if given != actual:
                raise ValueError(f"parameter {name}={given!r} disagrees with the arrays ({actual})")


def every_start(images, boxes, starts):
    """Each face once per start shape: ``(images, boxes, start_shapes)``, faces in order."""
    return ([image for image in images for _ in range(len(starts))], np.repeat(boxes, len(starts), axis=0),
            np.ascontiguousarray(np.tile(starts, (len(images), 1, 1)), dtype=np.float32))


def median_over_starts(shapes, n_faces):
    """The coordinate-wise median over each face's consecutive runs, ``(n_faces, L, 2)``."""
    return np.median(shapes.reshape(n_faces, -1, *shapes.shape[1:]), axis=1)


"""What ERT, LBF and ESR share: a cascade of pixel-difference trees whose leaves add to the shape.

All three fit the same model, eight flat arrays per cascade of
``n_stages`` stages with ``K`` trees each:

- ``mean_shape_`` ``(L, 2)``: the start shape, in the unit frame of the box;
- ``anchors_`` ``(n_stages, P)`` and ``offsets_`` ``(n_stages, P, 2)``: each stage's
  shape-indexed points (see :mod:`cascade.features`);
- ``split_u_``, ``split_v_``, ``split_threshold_`` ``(n_stages, K, 2**depth - 1)``:
  split nodes in heap order, a face going left when ``pixel[u] - pixel[v] > threshold``;
- ``leaf_values_`` ``(n_stages, K, 2**depth, 2L)``: what each leaf adds to the
  shape (float32, or int16 times ``leaf_scale_[stage]``).

ERT's leaves are boosted regression-tree means; an LBF leaf holds the row of the
stage's global linear regression that its binary feature selects; an ESR fern is
a tree whose nodes on one level share their test. Either way prediction is the
one compiled loop in ``ext/forest.pyx``. A model may also hold start shapes,
``initial_shapes_`` ``(R, L, 2)`` (ESR): prediction then runs from each of them
instead of the mean shape and returns the coordinate-wise median.
"""
import time

import numpy as np

from ._ext import forest as _forest
from .base import BaseCascade
from .features import OUTSIDE, frame_transforms, pixels_at, sample_pixels
from .shapes import from_unit, rotate_about_centre, sample_initial_indices, similarity_fit, to_unit
from .threads import effective_jobs
from .validation import check_boxes, check_images, check_integer


#: The per-stage arrays a stage's training returns, in this order.
STAGE_ARRAYS = ("anchors_", "offsets_", "split_u_", "split_v_", "split_threshold_", "leaf_values_")


class ForestCascade(BaseCascade):
    """Base of the tree cascades: the training loop, prediction, quantisation and model checks.

    A subclass trains one stage at a time (``_fit_stage``, see :meth:`_fit`) and
    says, in ``_array_params``, which of its parameters the arrays' sizes fix. ``_MEAN_FRAME_UPDATES`` says
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

    def _fit(self, images, shapes, boxes, rolls, mean):
        """Train stage by stage on :class:`TrainingSamples`, logging progress; set the arrays.

        A subclass provides ``_check_params()`` (returning its resolved parameters),
        ``_fit_stage(stage, samples, config, rng)``, which returns that stage's
        :data:`STAGE_ARRAYS` and moves ``samples.current`` on, and may finish in
        ``_finish_fit(samples, config, rng)``.
        """
        config = self._check_params()
        rng = np.random.default_rng(self.random_state)
        samples = TrainingSamples(images, shapes, boxes, config["n_init"], rng, effective_jobs(self.n_jobs),
                                  self.outside, mean, rolls)
        self._log(f"training on {len(shapes)} faces x {config['n_init']} initialisations, "
                  f"{config['n_stages']} stages, {samples.n_jobs} threads")
        self.mean_shape_ = samples.mean.astype(np.float32)
        stages = []
        for stage in range(config["n_stages"]):
            started = time.perf_counter()
            stages.append(self._fit_stage(stage, samples, config, rng))
            self._log(f"stage {stage + 1}/{config['n_stages']}: mean point residual "
                      f"{samples.residual():.4f} ({time.perf_counter() - started:.1f} s)")
        for name, values in zip(STAGE_ARRAYS, zip(*stages)):
            setattr(self, name, np.ascontiguousarray(np.stack(values)))
        self.offsets_ = self.offsets_.astype(np.float32)
        self.leaf_scale_ = np.ones(len(stages))
        self._finish_fit(samples, config, rng)

    def _finish_fit(self, samples, config, rng):
        """Anything a subclass does once the stages are trained (nothing here)."""

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
            if rolls is not None:
                start_shapes = rolled_starts(start_shapes, np.repeat(rolls, len(starts)))
            self._run_compiled(every_image, every_box, start_shapes, every, phase_seconds)
            out[:] = median_over_starts(every, len(images))
        else:
            start_shapes = None if rolls is None else rolled_starts(self.mean_shape_, rolls)
            self._run_compiled(images, boxes, start_shapes, out, phase_seconds)

    def _run_compiled(self, images, boxes, start_shapes, out, phase_seconds):
        _forest.predict(images, boxes, self.mean_shape_, self.anchors_, self.offsets_,
                        self.split_u_, self.split_v_, self.split_threshold_, self.leaf_values_,
                        self.leaf_scale_, out, self.outside == "zero", self._MEAN_FRAME_UPDATES,
                        phase_seconds, start_shapes)

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
        """A copy whose leaf values are int16 with one scale per stage (about half the size)."""
        self._check_fitted()
        leaves = self.leaf_values_.astype(np.float64)
        if self.leaf_values_.dtype == np.int16:
            leaves *= self.leaf_scale_[:, None, None, None]
        peak = np.abs(leaves).reshape(len(leaves), -1).max(axis=1)
        scale = np.where(peak > 0, peak / 32767.0, 1.0)
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        arrays.update(leaf_values_=np.round(leaves / scale[:, None, None, None]).astype(np.int16),
                      leaf_scale_=scale)
        quantized = type(self)._from_arrays(self.get_params(), arrays, "quantize")
        quantized.__dict__.update(self._fitted_extras())
        return quantized

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


class TrainingSamples:
    """What a tree cascade trains on: ``n_init`` starts per face, moved on stage by stage.

    The first start of every face is the mean shape, the others are the shapes
    of other faces (Kazemi & Sullivan; Ren et al.), all in the unit frame; a face
    started from five points has them all turned by its roll (``rolls``, radians).

    mean:     (L, 2) the mean shape
    face_targets: (n_faces, L, 2) each face's true shape, missing points set to the mean's
    face_of:  (n,) each sample's face (its image); ``boxes`` (n, 4) its face's box
    targets:  (n, L, 2) its face's true shape (``face_targets[face_of]``)
    current:  (n, L, 2) its current shape, which each stage moves on
    present:  (n, 2L) float32 1/0 mask of the known target coordinates, or None
              when no point is missing
    """

    def __init__(self, images, shapes, boxes, n_init, rng, n_jobs, outside, mean, rolls=None):
        n_faces, n_landmarks = shapes.shape[:2]
        self.images, self.n_jobs, self.outside, self.mean = images, n_jobs, outside, mean
        targets = to_unit(shapes, boxes)
        missing = np.isnan(targets)
        targets = np.where(missing, self.mean, targets)
        self.face_of = np.repeat(np.arange(n_faces), n_init)
        self.boxes = boxes[self.face_of]
        self.current = np.repeat(self.mean[None], len(self.face_of), axis=0)
        if n_init > 1:
            others = sample_initial_indices(n_faces, n_init - 1, rng)
            self.current.reshape(n_faces, n_init, n_landmarks, 2)[:, 1:] = targets[others]
        if rolls is not None:
            self.current = rotate_about_centre(self.current, rolls[self.face_of])
        self.face_targets = targets
        self.targets = targets[self.face_of]
        present = (~missing[self.face_of]).reshape(len(self.face_of), -1).astype(np.float32)
        self.present = present if missing.any() else None

    def pixels(self, anchors, offsets):
        """Every sample's grey values at shape-indexed points (``anchors``, ``offsets``), ``(n, P)`` uint8."""
        pixel_shapes = from_unit(self.current, self.boxes)
        return sample_pixels(self.images, pixel_shapes, frame_transforms(pixel_shapes, self.boxes, self.mean),
                             anchors, offsets, image_index=self.face_of, n_jobs=self.n_jobs,
                             outside=self.outside)

    def residuals(self):
        """``targets - current`` flattened, ``(n, 2L)`` float32, missing coordinates 0."""
        residuals = (self.targets - self.current).reshape(len(self.current), -1).astype(np.float32)
        return residuals if self.present is None else residuals * self.present

    def mean_frame_residuals(self):
        """The residuals in the mean shape's frame, ``(n, 2L)`` float32, and ``to_current``.

        The similarity from the mean to each current shape is undone (``to_current``,
        ``(n, 2, 2)``, its linear part), as the shape-indexed features are, so a regressor
        sees the same offset for the same local appearance whatever the face's roll and
        scale. Missing coordinates are 0.
        """
        to_current, _ = similarity_fit(self.mean, self.current)
        residuals = np.einsum("nij,nlj->nli", np.linalg.inv(to_current), self.targets - self.current)
        residuals = residuals.reshape(len(self.current), -1).astype(np.float32)
        return (residuals if self.present is None else residuals * self.present), to_current

    def move(self, update, to_current=None):
        """Add ``update`` ``(n, 2L)`` to the current shapes; with ``to_current`` (from
        :meth:`mean_frame_residuals`) it is in the mean frame and turned into place first."""
        update = update.reshape(self.current.shape)
        if to_current is not None:
            update = np.einsum("nij,nlj->nli", to_current, update)
        self.current += update

    def residual(self):
        """Mean distance, in the unit frame, from the samples' shapes to their targets (known points)."""
        left = self.targets - self.current
        if self.present is not None:
            left = left * self.present.reshape(left.shape)
        return float(np.sqrt((left ** 2).sum(axis=2)).mean())


def check_tree_params(values, integers, pool_name, depth_name, outside):
    """The checks every tree cascade's parameters share; ``values`` maps their names to values.

    ``integers`` names the parameters that must be positive integers, ``pool_name``
    the one that sets how many points a split chooses from, ``depth_name`` the depth.
    """
    for name in integers:
        check_integer(values[name], name)
    if values[pool_name] < 2:
        raise ValueError(f"{pool_name} must be at least 2 (splits compare two points)")
    if values[depth_name] > 12:
        raise ValueError(f"{depth_name} {values[depth_name]} is too deep (at most 12)")
    if outside not in OUTSIDE:
        raise ValueError(f"outside must be one of {OUTSIDE}, got {outside!r}")


def feature_pool(mean, size, padding, rng):
    """``size`` points uniform over the mean shape's box grown by ``padding``, each hung from
    its nearest landmark (Cao et al.'s local coordinates). Returns ``anchors``, ``offsets``
    and the points' ``positions`` in the unit frame."""
    low = mean.min(axis=0) - padding
    high = mean.max(axis=0) + padding
    positions = rng.uniform(low, high, (size, 2))
    distance = np.linalg.norm(positions[:, None] - mean[None], axis=2)
    anchors = distance.argmin(axis=1).astype(np.int32)
    return anchors, positions - mean[anchors], positions


def rolled_starts(starts, rolls):
    """Start shapes (one ``(L, 2)`` for all, or ``(n, L, 2)``) turned by ``rolls`` ``(n,)``, as the
    compiled loop takes them: float32, C order."""
    return np.ascontiguousarray(rotate_about_centre(starts, rolls), dtype=np.float32)


def every_start(images, boxes, starts):
    """Each face once per start shape: ``(images, boxes, start_shapes)``, faces in order."""
    return ([image for image in images for _ in range(len(starts))], np.repeat(boxes, len(starts), axis=0),
            np.ascontiguousarray(np.tile(starts, (len(images), 1, 1)), dtype=np.float32))


def median_over_starts(shapes, n_faces):
    """The coordinate-wise median over each face's consecutive runs, ``(n_faces, L, 2)``."""
    return np.median(shapes.reshape(n_faces, -1, *shapes.shape[1:]), axis=1)


def predict_reference(model, images, boxes):
    """Slow NumPy twin of the compiled prediction, for tests and for readers of the algorithm.

    A model with start shapes (``initial_shapes_``, ESR) runs from each and takes the median.
    It follows the compiled loop's (and dlib's) arithmetic: float32 shapes and
    offsets, feature positions rounded to float32 before the box maps them to pixels.
    """
    starts = getattr(model, "initial_shapes_", None)
    if starts is None:
        return _reference_run(model, images, boxes, None)
    return median_over_starts(_reference_run(model, *every_start(images, boxes, starts)), len(images))


def _reference_run(model, images, boxes, start_shapes):
    """One run per face, from ``start_shapes`` ``(n, L, 2)`` in the unit frame or the mean shape."""
    f32 = np.float32
    boxes = np.asarray(boxes, dtype=np.float64)
    origin, size = boxes[:, None, :2], boxes[:, None, 2:] - boxes[:, None, :2]
    n_splits = model.split_u_.shape[2]
    faces = np.arange(len(images))
    shapes = (np.repeat(model.mean_shape_[None], len(images), axis=0) if start_shapes is None
              else np.asarray(start_shapes, dtype=f32))                           # float32
    for stage in range(len(model.anchors_)):
        A, _ = similarity_fit(model.mean_shape_, shapes)
        A = A.astype(f32)
        offsets, anchors = model.offsets_[stage], model.anchors_[stage]
        dx, dy = offsets[:, 0], offsets[:, 1]
        unit = np.stack([(A[:, None, 0, 0] * dx + A[:, None, 0, 1] * dy) + shapes[:, anchors, 0],
                         (A[:, None, 1, 0] * dx + A[:, None, 1, 1] * dy) + shapes[:, anchors, 1]], axis=2)
        positions = unit.astype(np.float64) * size + origin                        # (n, P, 2) pixels
        pixels = pixels_at(images, positions, outside=model.outside, reference=True).astype(f32)
        sums = np.zeros((len(images), shapes.shape[1] * 2), dtype=np.int64)
        # Leaves go onto the shape itself, or (LBF) onto an update turned into place after.
        flat = np.zeros_like(shapes) if model._MEAN_FRAME_UPDATES else shapes
        flat = flat.reshape(len(images), -1)
        for tree in range(model.split_u_.shape[1]):
            node = np.zeros(len(images), dtype=int)
            while (node < n_splits).any():
                u = model.split_u_[stage, tree, node]
                v = model.split_v_[stage, tree, node]
                left = pixels[faces, u] - pixels[faces, v] > model.split_threshold_[stage, tree, node]
                node = 2 * node + np.where(left, 1, 2)
            leaves = model.leaf_values_[stage, tree, node - n_splits]
            if leaves.dtype == np.int16:
                sums += leaves
            else:
                flat = flat + leaves                                               # float32, tree by tree
        if model.leaf_values_.dtype == np.int16:
            flat = flat + (sums * model.leaf_scale_[stage]).astype(f32)
        if model._MEAN_FRAME_UPDATES:
            dx, dy = flat[:, 0::2], flat[:, 1::2]
            a, b = A[:, 1, 1, None], A[:, 1, 0, None]
            shapes = shapes + np.stack([a * dx - b * dy, b * dx + a * dy], axis=2)
        else:
            shapes = flat.reshape(shapes.shape)
    return shapes.astype(np.float64) * size + origin

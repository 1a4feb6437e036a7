"""How the tree cascades (ERT, LBF, ESR) train: samples moved on stage by stage, the loop over
stages, and the checks and feature pools they share. The fitted model and its prediction are
:mod:`cascade.forest`."""
import time

import numpy as np
from tqdm import tqdm

from ._ext import forest as _forest
from .features import OUTSIDE, frame_transforms, sample_pixels
from .io import cache_aligned
from .shapes import from_unit, rotate_about_centre, sample_initial_indices, similarity_fit, to_unit
from .threads import effective_jobs
from .validation import check_integer

#: Shape-indexed points a stage may have: the compiled loop packs a split's two in 16 bits each.
MAX_STAGE_POINTS = _forest.MAX_STAGE_POINTS
#: The per-stage arrays a stage's training returns, in this order.
STAGE_ARRAYS = ("anchors_", "offsets_", "split_u_", "split_v_", "split_threshold_", "leaf_values_")


def train_stages(estimator, images, shapes, boxes, rolls, mean):
    """Train a :class:`cascade.forest.ForestCascade` stage by stage on :class:`TrainingSamples`,
    showing progress (a bar of stages, each stage's residual logged at INFO) when the estimator
    is ``verbose``, and set its fitted arrays.

    The estimator provides ``_check_params()`` (returning its resolved parameters) and
    ``_fit_stage(stage, samples, config, rng)``, which returns that stage's
    :data:`STAGE_ARRAYS` and moves ``samples.current`` on; it may provide
    ``_finish_fit(samples, config, rng)``, run once the stages' arrays are set.
    """
    config = estimator._check_params()
    rng = np.random.default_rng(estimator.random_state)
    samples = TrainingSamples(images, shapes, boxes, config["n_init"], rng, effective_jobs(estimator.n_jobs),
                              estimator.outside, mean, rolls)
    estimator._log(f"training on {len(shapes)} faces x {config['n_init']} initialisations, "
                   f"{config['n_stages']} stages, {samples.n_jobs} threads")
    estimator.mean_shape_ = samples.mean.astype(np.float32)
    stages = []
    for stage in tqdm(range(config["n_stages"]), desc=f"{type(estimator).__name__} stages", unit="stage",
                      disable=not getattr(estimator, "verbose", 0)):
        started = time.perf_counter()
        stages.append(estimator._fit_stage(stage, samples, config, rng))
        estimator._log(f"stage {stage + 1}/{config['n_stages']}: mean point residual "
                       f"{samples.residual():.4f} ({time.perf_counter() - started:.1f} s)")
    for name, values in zip(STAGE_ARRAYS, zip(*stages)):
        setattr(estimator, name, cache_aligned(np.stack(values)))
    estimator.offsets_ = estimator.offsets_.astype(np.float32)
    estimator.leaf_scale_ = np.ones(len(stages))
    if hasattr(estimator, "_finish_fit"):
        estimator._finish_fit(samples, config, rng)


class TrainingSamples:
    """What a tree cascade trains on: ``n_init`` starts per face, moved on stage by stage.

    The first start of every face is the mean shape, the others are the shapes
    of other faces (Kazemi & Sullivan; Ren et al.), of faces with every point while
    there are at least ``n_init`` of them, all in the unit frame; a face
    started from five points has them all turned by its roll (``rolls``, radians).

    mean:     (L, 2) the mean shape
    face_targets: (n_faces, L, 2) each face's true shape, missing points set to the mean's
    start_faces: the faces whose shapes starts are drawn from (the complete ones, when enough)
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
        # A gap filled with the mean's point makes a start no face has (a patchwork of two
        # shapes), so starts come from the complete faces while there are enough.
        complete = np.flatnonzero(~missing.any(axis=(1, 2)))
        self.start_faces = complete if len(complete) >= max(2, n_init) else np.arange(n_faces)
        if n_init > 1:
            others = sample_initial_indices(n_faces, n_init - 1, rng, self.start_faces)
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
    if values[pool_name] > MAX_STAGE_POINTS:
        raise ValueError(f"{pool_name} must be at most {MAX_STAGE_POINTS:,} (the compiled loop's split nodes)")
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

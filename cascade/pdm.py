"""The point distribution model: Procrustes alignment, PCA of shapes, and fitting it to points.

Shapes are aligned by generalised Procrustes analysis (similarities, no
reflection; :func:`cascade.shapes.similarity_fit`) to a mean that is centred at
the origin with unit norm, projected into the tangent space of that mean, and
their principal components kept up to a fraction of the variance (Cootes,
Taylor, Cooper & Graham 1995). A shape of the model is
``mean + shape_params @ components`` (flattened ``(x0, y0, x1, y1, ...)``),
placed in an image by a similarity.
"""
import numpy as np

from .shapes import apply_similarity, similarity_fit


def procrustes_align(shapes, n_iterations=10):
    """Align ``(n, L, 2)`` shapes (NaN = missing) to their mean; returns ``(aligned, mean)``.

    The mean is centred with unit norm; ``aligned`` is each shape mapped onto it
    by its least-squares similarity and scaled into the mean's tangent space
    (``aligned . mean = 1``), missing points filled from the mean.
    """
    shapes = np.asarray(shapes, dtype=np.float64)
    filled = np.where(np.isnan(shapes), np.nanmean(shapes, axis=0), shapes)
    mean = _normalised(filled[0])
    for _ in range(n_iterations):
        A, t = similarity_fit(shapes, np.broadcast_to(mean, shapes.shape))
        aligned = apply_similarity(shapes, A, t)
        aligned = np.where(np.isnan(aligned), mean, aligned)
        new_mean = _normalised(aligned.mean(axis=0))
        # Keep the mean's orientation fixed to the first estimate's, or it drifts with the fits.
        A, t = similarity_fit(new_mean, mean[None])
        new_mean = _normalised(apply_similarity(new_mean[None], A, t)[0])
        converged = np.abs(new_mean - mean).max() < 1e-10
        mean = new_mean
        if converged:
            break
    tangent = np.einsum("nld,ld->n", aligned, mean)
    return aligned / tangent[:, None, None], mean


def _normalised(shape):
    centred = shape - shape.mean(axis=0)
    return centred / np.linalg.norm(centred)


def principal_components(aligned, mean, variance_kept):
    """``(components (M, 2L), variances (M,))`` of the aligned shapes, keeping
    the fewest components that explain ``variance_kept`` of their variance."""
    deviations = (aligned - mean).reshape(len(aligned), -1)
    _, singular, components = np.linalg.svd(deviations, full_matrices=False)
    variances = singular ** 2 / max(len(aligned) - 1, 1)
    total = variances.sum()
    if total <= 0:
        return np.zeros((0, deviations.shape[1])), np.zeros(0)
    n_kept = int(np.searchsorted(np.cumsum(variances) / total, variance_kept - 1e-12) + 1)
    n_kept = min(n_kept, int((variances > 1e-12 * total).sum()))
    return components[:n_kept], variances[:n_kept]


def fit_to_points(points, mean, components, variances, clamp, n_iterations=3):
    """The model shapes closest to ``points`` ``(n, L, 2)``: pose by least squares, shape
    parameters by projection, each clamped to ``clamp`` standard deviations.

    Returns the fitted shapes in the points' frame, ``(n, L, 2)``. Each shape's fit
    is computed on its own (no BLAS over the batch), so it never depends on the others.
    """
    n = len(points)
    limit = clamp * np.sqrt(variances)
    params = np.zeros((n, len(variances)))
    for _ in range(n_iterations):
        model = mean + np.einsum("nm,mk->nk", params, components).reshape(n, *mean.shape)
        A, t = similarity_fit(model, points)
        # The points in the model frame, projected into the mean's tangent space.
        inverse = np.linalg.inv(A)
        local = np.einsum("nij,nlj->nli", inverse, points - t[:, None])
        local /= np.einsum("nld,ld->n", local, mean)[:, None, None]
        params = np.clip(np.einsum("nk,mk->nm", (local - mean).reshape(n, -1), components), -limit, limit)
    model = mean + np.einsum("nm,mk->nk", params, components).reshape(n, *mean.shape)
    A, t = similarity_fit(model, points)
    return apply_similarity(model, A, t)

"""The shared evaluation: NME, CED, AUC, failure rate, per-landmark error, reports and CED plots.

Every method of both families (cascades and the CNN refiner) is scored here, so
their figures compare. Errors are *normalised*: the mean point-to-point
Euclidean distance of a face, divided by that face's normalising distance:

``inter-ocular``  distance between the outer eye corners (36 and 45 in the 68 scheme)
``inter-pupil``   distance between the eye centres (means of 36-41 and of 42-47; the
                  eye points themselves in the five-point scheme)
``box-diagonal``  diagonal of the face box
``box-size``      ``sqrt(width * height)`` of the face box

The face box is the tight box of the true shape unless boxes are given. Points
missing (NaN) in the true shape are left out; a prediction may not have NaN.
The eye points come from the landmark ``scheme`` (:mod:`cascade.schemes`; by
default the built-in one of the shapes' point count, 68: iBUG).
"""
from collections.abc import Mapping

import numpy as np

from .extras import require
from .schemes import scheme_of
from .shapes import tight_boxes
from .validation import check_boxes, check_shapes

NORMALIZATIONS = ("inter-ocular", "inter-pupil", "box-diagonal", "box-size")


def normalizing_distance(true_shapes, normalization=None, boxes=None, scheme=None):
    """Per-face ``(n,)`` normalising distance, in pixels (see the module docstring); by default
    the scheme's own (:meth:`cascade.schemes.Scheme.default_normalization`: inter-ocular for 68 points)."""
    true_shapes = check_shapes(true_shapes)
    scheme = scheme_of(scheme, true_shapes.shape[1])
    normalization = scheme.default_normalization() if normalization is None else normalization
    if normalization == "inter-ocular":
        if scheme.eye_corners is None:
            raise ValueError(f"the {scheme.name!r} scheme has no eye corners for an inter-ocular NME")
        corners = true_shapes[:, list(scheme.eye_corners)]
        distance = np.linalg.norm(corners[:, 0] - corners[:, 1], axis=1)
    elif normalization == "inter-pupil":
        if scheme.eyes is None:
            raise ValueError(f"the {scheme.name!r} scheme has no eye points for an inter-pupil NME")
        centres = [np.mean(true_shapes[:, list(eye)], axis=1) for eye in scheme.eyes]
        distance = np.linalg.norm(centres[0] - centres[1], axis=1)
    elif normalization in ("box-diagonal", "box-size"):
        boxes = tight_boxes(true_shapes) if boxes is None else check_boxes(boxes, len(true_shapes))
        width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        distance = np.hypot(width, height) if normalization == "box-diagonal" else np.sqrt(width * height)
    else:
        raise ValueError(f"unknown normalization {normalization!r}; choose from {NORMALIZATIONS}")
    bad = np.flatnonzero(~(distance > 0))
    if bad.size:
        raise ValueError(f"{normalization} distance is zero or undefined (missing points?) "
                         f"for faces {bad[:10].tolist()}")
    return distance


def point_errors(predicted, true_shapes, normalization=None, boxes=None, scheme=None):
    """``(n, L)`` normalised distance of each point; NaN where the true point is missing."""
    true_shapes = check_shapes(true_shapes)
    predicted = check_shapes(predicted, *true_shapes.shape[:2], allow_nan=False, name="predicted")
    distance = normalizing_distance(true_shapes, normalization, boxes, scheme)
    return np.linalg.norm(predicted - true_shapes, axis=2) / distance[:, None]


def nme(predicted, true_shapes, normalization=None, boxes=None, scheme=None):
    """Normalised mean error of each face, ``(n,)``; average it for the NME of a set."""
    errors = point_errors(predicted, true_shapes, normalization, boxes, scheme)
    return np.nanmean(errors, axis=1)


def per_landmark_error(predicted, true_shapes, normalization=None, boxes=None, scheme=None):
    """Mean normalised error of each landmark over the faces where it is present, ``(L,)``."""
    errors = point_errors(predicted, true_shapes, normalization, boxes, scheme)
    present = ~np.isnan(errors)
    with np.errstate(invalid="ignore"):
        return np.where(present, errors, 0.0).sum(axis=0) / present.sum(axis=0)


def ced(errors, thresholds):
    """Cumulative error distribution: the fraction of faces with error <= each threshold."""
    errors = _check_errors(errors)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    return (errors[:, None] <= thresholds.ravel()[None, :]).mean(axis=0).reshape(thresholds.shape)


def auc(errors, threshold=0.08):
    """Area under the CED from 0 to ``threshold``, divided by ``threshold``: in [0, 1].

    Computed exactly, not on a grid: each face contributes ``max(0, threshold - e)``.
    """
    errors = _check_errors(errors)
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    return float(np.mean(np.maximum(0.0, threshold - errors)) / threshold)


def failure_rate(errors, threshold=0.08):
    """Fraction of faces whose error exceeds ``threshold``."""
    return float(np.mean(_check_errors(errors) > threshold))


def _check_errors(errors):
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if errors.size == 0:
        raise ValueError("no errors given (zero faces)")
    if np.isnan(errors).any() or (errors < 0).any():
        raise ValueError("errors must be non-negative numbers without NaN")
    return errors


class Report:
    """Several methods scored on the same faces: per-face errors, one row of figures per method.

    ``rows`` holds, per method, the mean NME for each normalisation, the AUC at
    ``auc_threshold`` and the failure rate at each of ``thresholds``, all on the
    first normalisation's errors. ``table()`` renders them as Markdown. The
    normalisations default to the landmark scheme's (inter-ocular, then
    inter-pupil, for 68 points).

    A face whose predicted shape is all NaN was *missed* (its detector found no
    face there): its error is infinite, so it counts as a failure and adds
    nothing to the AUC, and the mean NME is over the faces found; each row then
    also counts the faces ``missed``.
    """

    def __init__(self, predictions, true_shapes, boxes=None,
                 normalizations=None, thresholds=(0.08, 0.10),
                 auc_threshold=0.08, scheme=None):
        if not isinstance(predictions, Mapping) or not predictions:
            raise TypeError("predictions must be a non-empty mapping of method name -> (n, L, 2) shapes")
        true_shapes = check_shapes(true_shapes)
        scheme = scheme_of(scheme, true_shapes.shape[1])
        if normalizations is None:
            normalizations = [scheme.default_normalization()] + ["inter-pupil"] * (
                scheme.eye_corners is not None and scheme.eyes is not None)
        if isinstance(normalizations, str) or not normalizations:
            raise ValueError("normalizations must be a non-empty list of names")
        self.normalizations = tuple(normalizations)
        self.thresholds = tuple(thresholds)
        self.auc_threshold = auc_threshold
        self.n_faces = len(true_shapes)
        boxes = None if boxes is None else check_boxes(boxes, self.n_faces)
        self.face_errors = {}
        for method, predicted in predictions.items():
            if np.shape(predicted) != true_shapes.shape:
                raise ValueError(f"{method}: predictions of shape {np.shape(predicted)} for true shapes "
                                 f"{true_shapes.shape}")
            predicted = np.asarray(predicted, dtype=np.float64)
            found = ~np.isnan(predicted).all(axis=(1, 2))
            if not found.any():
                raise ValueError(f"{method}: every face was missed (all predictions NaN)")
            self.face_errors[method] = {}
            for norm in self.normalizations:
                errors = np.full(self.n_faces, np.inf)
                errors[found] = nme(predicted[found], true_shapes[found], norm,
                                    None if boxes is None else boxes[found], scheme)
                self.face_errors[method][norm] = errors
        self.rows = [self._row(method, errors) for method, errors in self.face_errors.items()]

    def _row(self, method, errors):
        main = errors[self.normalizations[0]]
        found = np.isfinite(main)
        row = {"method": method, "n_faces": self.n_faces}
        row.update({f"nme_{norm}": float(np.mean(errors[norm][found])) for norm in self.normalizations})
        row[f"auc@{self.auc_threshold:g}"] = auc(main, self.auc_threshold)
        row.update({f"failure@{t:g}": failure_rate(main, t) for t in self.thresholds})
        if not found.all():
            row["missed"] = int(np.sum(~found))
        return row

    def errors(self, normalization=None):
        """Per-face errors of every method for one normalisation (the first by default)."""
        normalization = normalization or self.normalizations[0]
        return {method: errors[normalization] for method, errors in self.face_errors.items()}

    def to_dict(self):
        return {"normalizations": list(self.normalizations), "n_faces": self.n_faces,
                "rows": [dict(row) for row in self.rows]}

    def table(self):
        """Markdown table; NME, AUC and failure rates in percent (and faces missed, if any)."""
        keys = [k for k in self.rows[0] if k not in ("method", "n_faces", "missed")]
        header = ["method"] + [k.replace("nme_", "NME ").replace("auc", "AUC").replace("failure", "fail")
                               + " (%)" for k in keys]
        missed = any("missed" in row for row in self.rows)
        header += ["missed"] * missed
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.rows:
            cells = [row["method"]] + [f"{100 * row[k]:.2f}" for k in keys] + [str(row.get("missed", 0))] * missed
            lines.append("| " + " | ".join(cells) + " |")
        first = self.normalizations[0]
        lines.append(f"\n{self.n_faces} faces; AUC and failure rates on {first} NME"
                     + ("; NME over the faces found, a face missed counts as a failure." if missed else "."))
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def report(predictions, true_shapes, **options):
    """Score several methods on the same faces; see :class:`Report` for the options."""
    return Report(predictions, true_shapes, **options)


def plot_ced(errors, path, max_error=0.10, title=None, xlabel="NME (inter-ocular)", auc_threshold=0.08):
    """Write the CED curves of several methods (``{name: per-face errors}``) to an image file,
    each labelled with its AUC at ``auc_threshold`` in percent, as the tables give it.

    Needs matplotlib (``pip install cascade-landmarks[plot]``).
    """
    FigureCanvasAgg = require("matplotlib.backends.backend_agg", "plot_ced", "plot").FigureCanvasAgg
    Figure = require("matplotlib.figure", "plot_ced", "plot").Figure
    if not isinstance(errors, Mapping) or not errors:
        raise TypeError("errors must be a non-empty mapping of method name -> per-face errors")
    thresholds = np.linspace(0.0, max_error, 501)
    many = len(errors) > 6              # then the legend goes beside the plot, not over the curves
    figure = Figure(figsize=(11, 5.5) if many else (6, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for k, (method, method_errors) in enumerate(errors.items()):
        label = f"{method} (AUC@{auc_threshold:g} {100 * auc(method_errors, auc_threshold):.2f} %)"
        axes.plot(thresholds, ced(method_errors, thresholds), label=label, linestyle=("-", "--", ":")[k // 10 % 3])
    axes.set(xlim=(0, max_error), ylim=(0, 1), xlabel=xlabel, ylabel="fraction of faces",
             title=title or "Cumulative error distribution")
    axes.grid(alpha=0.3)
    if many:
        axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="x-small")
    else:
        axes.legend(loc="center right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return path

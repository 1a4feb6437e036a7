"""A per-face quality score: how likely a face's landmarks are right, from the agreement of the stages.

The CNN refiner corrects what the cascade found; where the cascade went wrong (a face turned
far, upside down, hidden or smeared) the refiner moves the points far, and where it was right,
hardly at all. The score is a logistic model, fitted on faces of the training folders made hard
on purpose (``python -m cnn_refine.quality``), of the probability that a face's inter-ocular
NME is at most 8 %, from

- ``move``: the mean distance the refiner moved the points, over the scheme's normalising
  distance (:func:`cascade.evaluate.normalizing_distance`), as ``log(move + 1e-3)``;
- ``score``: the detector's confidence, for detectors whose scale the model was fitted on
  (YuNet's); for others the model fitted on the move alone is used.

A quality model file is JSON::

    {"format": "cascade-quality", "format_version": 1, "n_landmarks": 68,
     "models": {"yunet": {"features": ["log_move", "score"], "coefficients": [...], "intercept": b},
                "any": {"features": ["log_move"], "coefficients": [...], "intercept": b}},
     "fitted_on": "..."}

checked on load (every number finite, the features known, both models present).
"""
import json
from pathlib import Path

import numpy as np

from .evaluate import normalizing_distance

FORMAT, FORMAT_VERSION = "cascade-quality", 1
#: The bundled model, fitted for the bundled refiner on 68-point faces.
DEFAULT_MODEL = Path(__file__).parent / "models" / "quality-68.json"
FEATURES = ("log_move", "score")
#: Below a fraction of a percent the refiner's move is noise: the log is taken of the move plus this.
MOVE_FLOOR = 1e-3


def refiner_moves(before, after, scheme=None):
    """``(n,)`` mean distances between ``(n, L, 2)`` shapes before and after the refiner, over the
    scheme's normalising distance of the refined shapes."""
    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if len(after) == 0:
        return np.zeros(0)
    return np.linalg.norm(after - before, axis=2).mean(axis=1) / normalizing_distance(after, scheme=scheme)


class QualityModel:
    """``model(moves, scores, detector) -> (n,)`` qualities in [0, 1]: the probability that each face's
    NME is at most 8 %. Read from a JSON file (the module's docstring); thread-safe (read only)."""

    def __init__(self, path=DEFAULT_MODEL):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no quality model at {self.path}")
        try:
            document = json.loads(self.path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise ValueError(f"{self.path} is not a quality model (not JSON: {error})") from None
        self.n_landmarks, self.models = _checked(document, self.path)

    def __call__(self, moves, scores=None, detector=None):
        moves = np.asarray(moves, dtype=np.float64)
        model = self.models["yunet" if detector == "yunet" and scores is not None else "any"]
        values = {"log_move": np.log(moves + MOVE_FLOOR),
                  "score": None if scores is None else np.asarray(scores, dtype=np.float64)}
        logit = model["intercept"] + sum(weight * values[name]
                                         for name, weight in zip(model["features"], model["coefficients"]))
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))


def _checked(document, path):
    """``(n_landmarks, models)`` of a quality model document, every field checked."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path} is not a quality model (format must be {FORMAT!r})")
    if document.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {document.get('format_version')!r}; this package reads "
                         f"{FORMAT_VERSION}")
    n_landmarks = document.get("n_landmarks")
    models = document.get("models")
    if not isinstance(n_landmarks, int) or isinstance(n_landmarks, bool) or n_landmarks < 1:
        raise ValueError(f"{path}: n_landmarks must be a positive integer")
    if not isinstance(models, dict) or set(models) != {"yunet", "any"}:
        raise ValueError(f"{path}: models must hold 'yunet' and 'any'")
    for name, model in models.items():
        features = model.get("features") if isinstance(model, dict) else None
        coefficients = model.get("coefficients") if isinstance(model, dict) else None
        intercept = model.get("intercept") if isinstance(model, dict) else None
        if (not isinstance(features, list) or not features or not set(features) <= set(FEATURES)
                or "log_move" not in features or (name == "any" and "score" in features)):
            raise ValueError(f"{path}: model {name!r} must use log_move{' and score' if name == 'yunet' else ''}, "
                             f"got {features!r}")
        numbers = [intercept, *coefficients] if isinstance(coefficients, list) else None
        if (numbers is None or len(coefficients) != len(features)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                           and abs(v) < 1e3 for v in numbers)):
            raise ValueError(f"{path}: model {name!r} needs one finite coefficient per feature and an intercept")
    return n_landmarks, models

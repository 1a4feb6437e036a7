"""The trained models that ship inside the package, and loading any model file by name or path.

Each bundled model was trained by the ``cascade fit`` command in the README
(:func:`cascade.training.train_landmarker`), on the 300-W training folders only
(``lfpw/trainset``, ``helen/trainset``, ``afw``, with mirrors), every face
started from five points that err as YuNet's do on those faces: the start the
pipeline gives it. Each file also holds the box calibrations of the detectors
in :mod:`cascade.detect` and YuNet's point calibration
(:mod:`cascade.calibration`); their leaves are stored in a per-stage basis
(:meth:`cascade.forest.ForestCascade.compress`, at the default ranks and bits). The
refiner's networks (:mod:`cascade.refiner`)
ship in the same folder. The 300-W annotations are for research use only, and
those terms carry over to these models (``models/MODELS-LICENSE.md``).
"""
from pathlib import Path

from . import io
from .asm import ASM
from .ert import ERT
from .esr import ESR
from .lbf import LBF

MODELS_DIR = Path(__file__).parent / "models"
#: Bundled model names and their files in :data:`MODELS_DIR`.
BUNDLED = {
    "lbf-68": "lbf-68.npz",
    "ert-68": "ert-68.npz",
}
#: The landmarker used when none is named: the most accurate bundled one at real-time speed.
DEFAULT_MODEL = "ert-68"
ESTIMATORS = {cls.__name__: cls for cls in (ASM, ERT, ESR, LBF)}


def resolved_name(name):
    """The model a name stands for: "default" is :data:`DEFAULT_MODEL`; any other name is itself."""
    return DEFAULT_MODEL if name == "default" else name


def model_path(name="default"):
    """The file a model name stands for: a bundled model's file, or the path itself.

    Raises ``ValueError`` for a name that is neither a bundled model nor a ``.npz`` or existing file.
    """
    name = resolved_name(name)
    if name in BUNDLED:
        return MODELS_DIR / BUNDLED[name]
    if str(name).endswith(".npz") or Path(name).is_file():
        return Path(name)
    raise ValueError(f"unknown model {name!r}: choose from {['default', *BUNDLED]} or give a .npz path")


def load_model(name="default"):
    """A fitted estimator: a bundled model by name (``"lbf-68"``, ``"ert-68"``, ``"default"``) or a file path.

    Raises ``ValueError`` for an unknown name and ``FileNotFoundError`` for a missing file.
    """
    path = model_path(name)
    estimator = io.estimator_of(path)
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise ValueError(f"{path} holds a {estimator!r} model, which this package does not know")
    return ESTIMATORS[estimator].load(path)

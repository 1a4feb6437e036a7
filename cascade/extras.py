"""Optional dependencies: imported where a feature needs them, with an error naming the extra.

The core (predicting) needs NumPy, OpenCV, ONNX Runtime and tqdm only; the extras of
``pyproject.toml`` bring the rest: ``train`` (SciPy, scikit-learn), ``plot`` (matplotlib),
``dask`` (dask, distributed, pyarrow, fsspec), ``dlib``.
"""
import importlib


def require(module, feature, extra):
    """``module`` imported, or an ImportError saying that ``feature`` needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{feature} needs {module.split('.')[0]}: "
                          f"pip install 'cascade-landmarks[{extra}]'") from None

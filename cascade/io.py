"""The model file format: plain arrays plus JSON metadata in one ``.npz``; no pickle.

A model file is a NumPy ``.npz`` archive holding the fitted arrays by name and
one extra entry, ``__metadata__``, the UTF-8 bytes of a JSON object::

    {"format": "cascade-model", "format_version": 2,
     "estimator": "ERT", "params": {...}, "attributes": {...}}

Version 2 stores the landmark scheme whole in the attributes
(:class:`cascade.schemes.Scheme`); a version 1 file (no scheme; a mirror map or
curves, if any, among its parameters) is read as the scheme of its point count.

It is read with ``allow_pickle=False``, so it can hold nothing executable.
Every array is checked against the estimator's schema (name, dtype, number of
dimensions) and its floats for NaN, infinity and absurd magnitudes here, and every
index against the shapes it points into by the estimator, before any compiled
code reads it. Saving writes a temporary file
beside the target and renames it into place, so an interrupted save never
leaves a truncated model behind.
"""
import json
import os
import uuid
from pathlib import Path

import numpy as np

FORMAT = "cascade-model"
FORMAT_VERSION = 2
#: No fitted value of a landmark model comes near this (grey levels, unit-frame coordinates and
#: their inverse variances stay within a few hundred); beyond it, a file is damaged, and its
#: values would overflow to infinity in the arithmetic of a prediction.
MAX_MAGNITUDE = 1e6
_METADATA = "__metadata__"
#: Bytes of a cache line: fitted arrays start on one (:func:`cache_aligned`).
CACHE_LINE = 64


def cache_aligned(array):
    """``array`` C-contiguous and starting on a cache line, copied only where it is not. NumPy
    may start an array 16 bytes past a line (it did every bundled leaf table), so that a 96-byte
    leaf row (48 int16 coefficients) would span three lines every other row, and the loop's
    prefetch of a row's two lines would miss the third: a lone face, which reads its rows from the
    outer caches, pays for it (BENCHMARKS.md)."""
    array = np.ascontiguousarray(array)
    if array.ctypes.data % CACHE_LINE == 0:
        return array
    buffer = np.empty(array.nbytes + CACHE_LINE, dtype=np.uint8)
    start = -buffer.ctypes.data % CACHE_LINE
    aligned = buffer[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    aligned[...] = array
    return aligned


def save_model(path, estimator, params, arrays, attributes=None, compress=True):
    """Write ``arrays`` (name -> ndarray) and JSON-able ``params``/``attributes`` to ``path``."""
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "estimator": estimator,
                "params": params, "attributes": attributes or {}}
    encoded = np.frombuffer(json.dumps(metadata, default=_plain).encode(), dtype=np.uint8)
    path = Path(path)
    # A unique name opened exclusively, rather than mkstemp's private 0600 file: the model gets
    # the user's usual file mode (umask), as any file they write.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as file:
            (np.savez_compressed if compress else np.savez)(file, **arrays, **{_METADATA: encoded})
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _plain(value):
    """NumPy values in parameters (e.g. a flip permutation given as an array) as JSON ones."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"parameter value {value!r} of type {type(value).__name__} cannot be saved")


def load_model(path, estimator, schema, optional=None):
    """Read a model file written by :func:`save_model` for ``estimator``.

    ``schema`` maps each array name to ``(allowed dtypes, ndim)``; ``optional`` likewise
    the arrays a file may hold or not (absent ones are absent from the result). Returns
    ``(params, attributes, arrays)``; raises ``ValueError`` naming the problem
    for a file that is not such a model, is damaged, or does not fit the schema.
    """
    path = Path(path)
    metadata, contents = _read(path, arrays=True)
    if metadata.get("estimator") != estimator:
        raise ValueError(f"{path} holds a {metadata.get('estimator')!r} model, not {estimator!r}")
    params, attributes = metadata.get("params"), metadata.get("attributes", {})
    if not isinstance(params, dict) or not isinstance(attributes, dict):
        raise ValueError(f"{path}: damaged metadata (params and attributes must be objects)")
    arrays = {}
    for name, (dtypes, ndim) in {**schema, **(optional or {})}.items():
        if name not in contents:
            if name in schema:
                raise ValueError(f"{path}: array {name!r} is missing")
            continue
        array = contents.pop(name)
        if array.dtype not in [np.dtype(d) for d in dtypes] or array.ndim != ndim:
            raise ValueError(f"{path}: array {name!r} is {array.dtype} with {array.ndim} dimensions, "
                             f"expected {'/'.join(map(str, dtypes))} with {ndim}")
        if array.dtype.kind == "f":
            if not np.isfinite(array).all():
                raise ValueError(f"{path}: array {name!r} has NaN or infinite values")
            if array.size and np.abs(array).max() > MAX_MAGNITUDE:
                raise ValueError(f"{path}: array {name!r} has values beyond {MAX_MAGNITUDE:g}, "
                                 "which no landmark model holds")
        arrays[name] = np.ascontiguousarray(array)
    if contents:
        raise ValueError(f"{path}: unexpected arrays {sorted(contents)}")
    return params, attributes, arrays


def estimator_of(path):
    """The name of the estimator a model file holds (only its metadata is read)."""
    metadata, _ = _read(Path(path), arrays=False)
    return metadata.get("estimator")


def _read(path, arrays):
    """``(metadata, arrays by name)`` of a model file, its format and version checked."""
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not a model archive")
        with archive:
            names = archive.files if arrays else [name for name in archive.files if name == _METADATA]
            contents = {name: archive[name] for name in names}
    except Exception as error:   # noqa: BLE001 - zipfile, zlib and the .npy header parser (ast,
        # tokenize) each raise their own errors on damaged bytes: all mean "not readable"
        # NumPy reads a file that is not an archive as a pickle, and its refusal advises loading
        # it unsafely: advice a model loader must not pass on.
        reason = "its bytes are no .npz of plain arrays" if "pickle" in str(error) else str(error)
        raise ValueError(f"{path} is not a readable cascade model file ({reason})") from None
    # NumPy hands a zip member not named ``*.npy`` over as raw bytes, not an array.
    strangers = sorted(name for name, value in contents.items() if not isinstance(value, np.ndarray))
    if strangers:
        raise ValueError(f"{path}: entries {strangers} are not arrays")
    if _METADATA not in contents:
        raise ValueError(f"{path} is not a cascade model file (no metadata)")
    try:
        metadata = json.loads(contents.pop(_METADATA).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: damaged metadata ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a cascade model file")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ValueError(f"{path} has format version {version!r}; this cascade reads up to "
                         f"{FORMAT_VERSION}: upgrade cascade to load it")
    return metadata, contents

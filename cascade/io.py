"""The model file format: plain arrays plus JSON metadata in one ``.npz``; no pickle.

A model file is a NumPy ``.npz`` archive holding the fitted arrays by name and
one extra entry, ``__metadata__``, the UTF-8 bytes of a JSON object::

    {"format": "cascade-model", "format_version": 2,
     "estimator": "ERT", "params": {...}, "attributes": {...}}

Version 2 stores the landmark scheme whole in the attributes
(:class:`cascade.schemes.Scheme`); a version 1 file (no scheme; a mirror map or
curves, if any, among its parameters) is read as the scheme of its point count.

It is read with ``allow_pickle=False``, so it can hold nothing executable, and
without trusting its sizes: the archive's member list and each array's ``.npy``
header are read first, and a member the estimator's schema does not declare, an
array of another dtype or number of dimensions, a header that disagrees with the
member's size, a large member compressed beyond :data:`MAX_COMPRESSION_RATIO`
(a zip bomb) or metadata beyond :data:`MAX_METADATA_BYTES` are refused before
anything is decompressed; a file's arrays then cost at most about that ratio times
its size in memory. Every array's floats are checked for NaN, infinity and absurd
magnitudes here, and every index against the shapes it points into by the
estimator, before any compiled code reads it. Saving writes a temporary file
beside the target and renames it into place, so an interrupted save never
leaves a truncated model behind.
"""
import json
import math
import os
import uuid
import zipfile
from pathlib import Path

import numpy as np

from . import flat

FORMAT = "cascade-model"
FORMAT_VERSION = 2
#: No fitted value of a landmark model comes near this (grey levels, unit-frame coordinates and
#: their inverse variances stay within a few hundred); beyond it, a file is damaged, and its
#: values would overflow to infinity in the arithmetic of a prediction.
MAX_MAGNITUDE = 1e6
_METADATA = "__metadata__"
#: The most a member of more than :data:`RATIO_CHECKED_BYTES` may shrink in the archive: real
#: fitted arrays shrink 1-4 times (LBF's landmark indices 52 times); an array of zeros, 1000 times.
MAX_COMPRESSION_RATIO = 200
RATIO_CHECKED_BYTES = 64 << 20
#: The JSON metadata of a model is a few kilobytes (a scheme of 10,000 points would be 1 MB).
MAX_METADATA_BYTES = 16 << 20
#: Bytes of a cache line: fitted arrays start on one (:func:`cache_aligned`).
CACHE_LINE = 64


def cache_aligned(array):
    """``array`` C-contiguous and starting on a cache line, copied only where it is not. NumPy
    may start an array 16 bytes past a line (it did every bundled leaf table), so that a 96-byte
    leaf row (48 int16 coefficients) would span three lines every other row, and the loop's
    prefetch of a row's two lines would miss the third: a lone face, which reads its rows from the
    outer caches, pays for it (docs/notes/2026-12-06-benchmark-passes.md, "The embedded runtime")."""
    array = np.ascontiguousarray(array)
    if array.ctypes.data % CACHE_LINE == 0:
        return array
    buffer = np.empty(array.nbytes + CACHE_LINE, dtype=np.uint8)
    start = -buffer.ctypes.data % CACHE_LINE
    aligned = buffer[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    aligned[...] = array
    return aligned


def save_model(path, estimator, params, arrays, attributes=None, compress=True, format="npz"):
    """Write ``arrays`` (name -> ndarray) and JSON-able ``params``/``attributes`` to ``path``: a
    ``.npz`` (``format="npz"``), or the flat file the C runtime reads (``format="c"``, tree
    cascades only; :mod:`cascade.flat`)."""
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "estimator": estimator,
                "params": params, "attributes": attributes or {}}
    if format == "c":
        return flat.write(path, estimator, params, arrays, attributes or {},
                          json.loads(json.dumps(metadata, default=_plain)))
    if format != "npz":
        raise ValueError(f"format must be 'npz' or 'c', got {format!r}")
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
    schema = {**schema, **(optional or {})} if optional else schema
    metadata, contents = _read(path, schema)
    if metadata.get("estimator") != estimator:
        raise ValueError(f"{path} holds a {metadata.get('estimator')!r} model, not {estimator!r}")
    params, attributes = metadata.get("params"), metadata.get("attributes", {})
    if not isinstance(params, dict) or not isinstance(attributes, dict):
        raise ValueError(f"{path}: damaged metadata (params and attributes must be objects)")
    arrays = {}
    for name in schema:
        if name not in contents:
            if optional is None or name not in optional:
                raise ValueError(f"{path}: array {name!r} is missing")
            continue
        array = contents.pop(name)
        if array.dtype.kind == "f":
            if not np.isfinite(array).all():
                raise ValueError(f"{path}: array {name!r} has NaN or infinite values")
            if array.size and np.abs(array).max() > MAX_MAGNITUDE:
                raise ValueError(f"{path}: array {name!r} has values beyond {MAX_MAGNITUDE:g}, "
                                 "which no landmark model holds")
        arrays[name] = np.ascontiguousarray(array)
    return params, attributes, arrays


def estimator_of(path):
    """The name of the estimator a model file holds (only its metadata is read)."""
    metadata, _ = _read(Path(path), {})
    return metadata.get("estimator")


def _read(path, schema):
    """``(metadata, arrays by name)`` of a model file, its format and version checked; the arrays
    are those ``schema`` (name -> (allowed dtypes, ndim)) declares, each checked against it from its
    header before it is decompressed. An empty schema reads the metadata alone."""
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    if flat.is_flat(path):
        metadata, contents = flat.read(path, schema)
        return _checked_metadata(metadata, path), contents
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
            strangers = sorted(name for name, info in members.items() if not info.filename.endswith(".npy"))
            if strangers:       # NumPy would hand such a member over as raw bytes, not an array
                raise _Refused(f"entries {strangers} are not arrays")
            # A member cannot hold more than the file: one that says so would have its size allocated.
            liars = sorted(name for name, info in members.items() if info.compress_size > path.stat().st_size)
            if liars:
                raise _Refused(f"entries {liars} declare more stored bytes than the file holds")
            if _METADATA not in members:
                raise _Refused("no metadata: not a cascade model file")
            if members[_METADATA].file_size > MAX_METADATA_BYTES:
                raise _Refused(f"its metadata declares {members[_METADATA].file_size:,} bytes")
            metadata = _member(archive, members[_METADATA], (np.uint8,), 1)
            names = [name for name in members if name != _METADATA]
            unexpected = sorted(set(names) - set(schema)) if schema else []
            if unexpected:
                raise _Refused(f"unexpected arrays {unexpected}")
            contents = {name: _member(archive, members[name], *schema[name]) for name in names if schema}
    except _Refused as error:
        raise ValueError(f"{path}: {error}") from None
    except Exception as error:   # noqa: BLE001 - zipfile, zlib and the .npy header parser (ast,
        # tokenize) each raise their own errors on damaged bytes: all mean "not readable"
        raise ValueError(f"{path} is not a readable cascade model file ({error})") from None
    try:
        metadata = json.loads(metadata.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{path}: damaged metadata ({type(error).__name__}: {error})") from None
    return _checked_metadata(metadata, path), contents


def _checked_metadata(metadata, path):
    """A model file's metadata, its format and version checked."""
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a cascade model file")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ValueError(f"{path} has format version {version!r}; this cascade reads up to "
                         f"{FORMAT_VERSION}: upgrade cascade to load it")
    return metadata


class _Refused(Exception):
    """A model file refused for what its archive declares (the message says what)."""


def _member(archive, info, dtypes, ndim):
    """One ``.npy`` member as an array, its header checked against ``dtypes`` and ``ndim`` and against
    the member's size (and that size against its compressed one) before the data is decompressed."""
    name = info.filename.removesuffix(".npy")
    with archive.open(info) as file:
        try:
            version = np.lib.format.read_magic(file)
        except ValueError as error:
            raise _Refused(f"entry {name!r} is not an array ({error})") from None
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise _Refused(f"array {name!r} has .npy version {version}")
        shape, fortran_order, dtype = read_header(file, max_header_size=10_000)
        if dtype not in [np.dtype(d) for d in dtypes] or len(shape) != ndim:
            raise _Refused(f"array {name!r} is {dtype} with {len(shape)} dimensions, expected "
                           f"{'/'.join(map(str, dtypes))} with {ndim}")
        data_bytes = math.prod(shape) * dtype.itemsize
        if data_bytes != info.file_size - file.tell():
            raise _Refused(f"array {name!r} declares {shape} ({data_bytes:,} bytes) in a member of "
                           f"{info.file_size - file.tell():,}")
        if info.file_size > RATIO_CHECKED_BYTES and info.file_size > MAX_COMPRESSION_RATIO * info.compress_size:
            raise _Refused(f"array {name!r} declares {info.file_size:,} bytes stored in {info.compress_size:,} "
                           "(compressed beyond what any fitted array is: a zip bomb or damage)")
        array = np.empty(math.prod(shape), dtype=dtype)
        buffer, filled = array.view(np.uint8), 0
        while filled < data_bytes:
            read = file.readinto(buffer[filled:])
            if not read:
                raise _Refused(f"array {name!r} is truncated")
            filled += read
    return array.reshape(shape, order="F" if fortran_order else "C")

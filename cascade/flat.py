"""The flat model format: one little-endian binary file that the C runtime (``runtime/``) reads
without help, and that :func:`cascade.load_model` reads too.

Tree cascades only (ERT, LBF, ESR, compressed or not): ``model.save(path, format="c")``. The
layout is ``docs/c-runtime.md``: a 96-byte header (magic, version, the file's size, a CRC-32 of
everything after the header, the model's kind, flags and sizes), then the arrays the loop reads,
each on a 64-byte boundary, in a fixed order (the split nodes packed as the loop walks them), the
mean shape's five points and the landmarks that make them, the detectors' calibrations, and last
the JSON metadata of a ``.npz`` model file (parameters, scheme, calibrations), which Python reads
and C skips. Sizes are read from the header and checked against the file before any array is;
the arrays then go through the ``.npz`` path's checks (:func:`cascade.io.load_model`).
"""
import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from .files import write_atomically

MAGIC = b"CASCADE\x1a"
FORMAT_VERSION = 1
HEADER_BYTES = 96
KINDS = {"ERT": 1, "LBF": 2, "ESR": 3}
INT16, COMPRESSED, ZERO_OUTSIDE, POINT_STARTS = 1, 2, 4, 8
NAME_BYTES = 32
#: name, (shift_x, shift_y, scale_x, scale_y), whether there are points, whether there is a box,
#: the detector's and the model's five points.
CALIBRATION = struct.Struct(f"<{NAME_BYTES}s4dII10d10d")
#: Header after the magic: version, header bytes, file bytes, CRC-32, kind, flags, then L, T, P, K, S,
#: W, starts, five-point landmark indices, calibrations, JSON bytes; 20 reserved (zero) bytes follow.
HEADER = struct.Struct("<IIQIII10I")
MAX_COUNT = 1 << 28
#: The largest file either loader reads (ert-68's is 8.6 MB).
MAX_FILE_BYTES = 4 * MAX_COUNT


def is_flat(path):
    """Whether the file at ``path`` starts as a flat model does."""
    with open(path, "rb") as file:
        return file.read(len(MAGIC)) == MAGIC


def write(path, estimator, params, arrays, attributes, metadata):
    """Write a tree cascade's ``arrays`` and ``attributes`` (as :meth:`cascade.base.BaseCascade.save`
    gathers them) to ``path``, with ``metadata`` (the JSON a ``.npz`` file holds) at the end."""
    from ._ext.forest import pack_splits

    if estimator not in KINDS:
        raise ValueError(f"only tree cascades (ERT, LBF, ESR) have a flat format, not {estimator}")
    mean = arrays["mean_shape_"]
    anchors, leaves, basis = arrays["anchors_"], arrays["leaf_values_"], arrays.get("leaf_basis_")
    starts = arrays.get("initial_shapes_")
    nodes = pack_splits(arrays["split_u_"], arrays["split_v_"], arrays["split_threshold_"], anchors.shape[1])
    mean_points, five, calibrations, n_five, n_calibrations = _c_only_sections(mean, attributes)
    flags = ((INT16 if leaves.dtype == np.int16 else 0) | (COMPRESSED if basis is not None else 0)
             | (ZERO_OUTSIDE if params.get("outside") == "zero" else 0)
             | (POINT_STARTS if attributes.get("point_starts") else 0))
    sections = [mean.astype("<f4"), anchors.astype("<i4"), arrays["offsets_"].astype("<f4"), nodes.astype("<u2"),
                leaves.astype("<i2" if leaves.dtype == np.int16 else "<f4"), arrays["leaf_scale_"].astype("<f8"),
                np.zeros(0, "<f4") if basis is None else basis.astype("<f4"),
                np.zeros(0, "<f4") if starts is None else starts.astype("<f4")]
    encoded = json.dumps(metadata).encode()
    payload = b"".join(_padded(section.tobytes()) for section in sections)
    payload += b"".join(_padded(section) for section in (mean_points, five, calibrations, encoded))
    sizes = (len(mean), anchors.shape[0], anchors.shape[1], nodes.shape[1], nodes.shape[2], leaves.shape[3],
             0 if starts is None else len(starts), n_five, n_calibrations, len(encoded))
    header = MAGIC + HEADER.pack(FORMAT_VERSION, HEADER_BYTES, HEADER_BYTES + len(payload), zlib.crc32(payload),
                                 KINDS[estimator], flags, *sizes)
    write_atomically(path, header.ljust(HEADER_BYTES, b"\0") + payload)
    return Path(path)


def _c_only_sections(mean, attributes):
    """``(mean points, five-point groups, calibrations, landmark indices, calibrations)``: the bytes of
    what only C reads, derived from the mean shape and the attributes a ``.npz`` model holds (so that a
    reader can check that a file's two descriptions agree), and their counts."""
    from .schemes import Scheme

    scheme = Scheme.from_dict(attributes["scheme"])
    five = [] if scheme.five is None else [list(group) for group in scheme.five]
    mean_points = scheme.five_points(np.asarray(mean, np.float64)).astype("<f8").tobytes() if five else b""
    groups = np.array([len(group) for group in five] + sum(five, []), "<u4").tobytes() if five else b""
    boxes, points = attributes.get("box_calibrations", {}), attributes.get("point_calibrations", {})
    names = sorted({*boxes, *points})
    calibrations = b"".join(_calibration(name, boxes.get(name), points.get(name)) for name in names)
    return mean_points, groups, calibrations, sum(len(group) for group in five), len(names)


def _padded(data):
    return data + b"\0" * (-len(data) % 64)


def _calibration(name, box, points):
    encoded = name.encode()
    if not 0 < len(encoded) < NAME_BYTES:
        raise ValueError(f"a detector's name must be 1 to {NAME_BYTES - 1} bytes to be saved, got {name!r}")
    box_values = [box[key] for key in ("shift_x", "shift_y", "scale_x", "scale_y")] if box else [0.0, 0.0, 1.0, 1.0]
    detector = np.ravel(points["detector"]) if points else np.zeros(10)
    model = np.ravel(points["model"]) if points else np.zeros(10)
    return CALIBRATION.pack(encoded, *box_values, int(points is not None), int(box is not None), *detector, *model)


def read(path, schema):
    """``(metadata, arrays by name)`` of a flat model file, as :func:`cascade.io` reads a ``.npz``:
    the header, sizes and checksum checked first, then the arrays of ``schema`` rebuilt (the split
    nodes unpacked into ``split_u_``, ``split_v_``, ``split_threshold_``)."""
    if path.stat().st_size > MAX_FILE_BYTES:        # before reading it all, as the C loader refuses it
        raise ValueError(f"{path} is {path.stat().st_size:,} bytes: no model is larger than {MAX_FILE_BYTES:,}")
    data = path.read_bytes()
    if len(data) < HEADER_BYTES or data[:len(MAGIC)] != MAGIC:
        raise ValueError(f"{path} is not a flat cascade model file")
    version, header_bytes, file_bytes, crc, kind, flags, *sizes = HEADER.unpack_from(data, len(MAGIC))
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has flat format version {version}; this cascade reads {FORMAT_VERSION}")
    if header_bytes != HEADER_BYTES or file_bytes != len(data) or any(data[76:HEADER_BYTES]):
        raise ValueError(f"{path}: the header's sizes disagree with the file ({len(data):,} bytes)")
    if zlib.crc32(data[HEADER_BYTES:]) != crc:
        raise ValueError(f"{path}: the checksum does not match: the file is damaged")
    n_landmarks, n_stages, n_points, n_trees, n_splits, width, n_starts, n_five, n_calibrations, n_json = sizes
    if kind not in KINDS.values() or flags & ~15 or max(sizes) > MAX_COUNT:
        raise ValueError(f"{path}: unknown kind {kind} or flags {flags}, or absurd sizes")
    shapes = [("mean_shape_", "<f4", (n_landmarks, 2)), ("anchors_", "<i4", (n_stages, n_points)),
              ("offsets_", "<f4", (n_stages, n_points, 2)), ("nodes", "<u2", (n_stages, n_trees, n_splits, 4)),
              ("leaf_values_", "<i2" if flags & INT16 else "<f4", (n_stages, n_trees, n_splits + 1, width)),
              ("leaf_scale_", "<f8", (n_stages,)),
              ("leaf_basis_", "<f4", (n_stages, width, 2 * n_landmarks) if flags & COMPRESSED else (0,)),
              ("initial_shapes_", "<f4", (n_starts, n_landmarks, 2)), ("mean_points", "<f8", (10 if n_five else 0,)),
              ("five", "<u4", (5 + n_five if n_five else 0,)),
              ("calibrations", "u1", (n_calibrations * CALIBRATION.size,)),
              ("metadata", "u1", (n_json,))]
    sections, at = {}, HEADER_BYTES
    for name, dtype, shape in shapes:
        count = math.prod(shape)           # Python's integers: no product of header sizes overflows
        if count > MAX_COUNT:
            raise ValueError(f"{path}: array {name} would hold {count:,} values")
        size = count * np.dtype(dtype).itemsize
        if at + size > len(data):
            raise ValueError(f"{path}: the arrays' sizes run past the file's {len(data):,} bytes")
        sections[name] = np.frombuffer(data, dtype, count, at).reshape(shape)
        at += size + (-size % 64)
    if at != len(data):
        raise ValueError(f"{path}: the arrays' sizes do not add up to the file's {len(data):,} bytes")
    try:
        metadata = json.loads(sections["metadata"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{path}: damaged metadata ({type(error).__name__}: {error})") from None
    if not isinstance(metadata, dict) or KINDS.get(metadata.get("estimator")) != kind:
        raise ValueError(f"{path}: its metadata and its header name different estimators")
    try:
        derived = _c_only_sections(sections["mean_shape_"], metadata.get("attributes", {}))[:3]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: damaged metadata ({error})") from None
    if derived != tuple(sections[name].tobytes() for name in ("mean_points", "five", "calibrations")):
        raise ValueError(f"{path}: its five points or calibrations for C disagree with its metadata")
    nodes = sections.pop("nodes")
    arrays = {**sections, "split_u_": nodes[..., 0].astype(np.int32), "split_v_": nodes[..., 1].astype(np.int32),
              "split_threshold_": nodes[..., 2].view(np.int16).astype(np.float32)}
    if not flags & COMPRESSED:
        del arrays["leaf_basis_"]
    if not n_starts:
        del arrays["initial_shapes_"]
    unexpected = sorted(name for name in ("leaf_basis_", "initial_shapes_") if name in arrays and name not in schema)
    if schema and unexpected:          # (an empty schema reads the metadata alone)
        raise ValueError(f"{path}: unexpected arrays {unexpected}")
    return metadata, {name: np.array(arrays[name]) for name in schema if name in arrays}

"""Reading dlib's ``shape_predictor`` model files (e.g. ``shape_predictor_68_face_landmarks.dat``).

dlib serialises a shape predictor (``dlib/image_processing/shape_predictor.h``,
version 1) as::

    version (int)
    initial_shape      matrix<float,0,1>                  mean shape, unit frame, (x0, y0, x1, ...)
    forests            vector<vector<regression_tree>>     per stage, per tree:
                           splits       vector<{idx1, idx2, thresh (float)}>  heap order
                           leaf_values  vector<matrix<float,0,1>>
    anchor_idx         vector<vector<unsigned long>>      per stage, per feature point
    deltas             vector<vector<vector<float,2>>>     per stage, per feature point

which maps one to one onto :class:`cascade.ERT`'s arrays. dlib's unit frame is
the rectangle's own (corners ``left, top, right, bottom`` with dlib's inclusive
``right = left + width - 1``), the same as ours.
"""
from pathlib import Path

import numpy as np

from ._ext.dlib_format import DlibReader


def _matrix(reader):
    rows, cols = reader.read_int(), reader.read_int()
    if rows < 0 or cols < 0:              # the current format writes negated sizes
        rows, cols = -rows, -cols
    else:                                 # dlib's older format wrote them the other way round
        rows, cols = cols, rows
    return reader.read_floats(rows * cols)


def _size(reader, what, limit=10_000_000):
    size = reader.read_int()
    if not 0 <= size <= limit:
        raise ValueError(f"implausible {what} count {size}")
    return size


def read_shape_predictor(path):
    """Arrays of a dlib shape predictor file, in :class:`cascade.ERT`'s layout and dtypes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no dlib model file at {path}")
    reader = DlibReader(np.fromfile(path, dtype=np.uint8))
    try:
        version = reader.read_int()
        if version != 1:
            raise ValueError(f"shape_predictor version {version} (only version 1 is known)")
        initial = _matrix(reader)
        if initial.size < 2 or initial.size % 2:
            raise ValueError(f"initial shape has {initial.size} values, expected 2 per landmark")
        n_landmarks = initial.size // 2
        split_u, split_v, thresholds, leaves = [], [], [], []
        for _ in range(_size(reader, "stage")):
            stage = [[], [], [], []]
            for _ in range(_size(reader, "tree")):
                n_splits = _size(reader, "split")
                raw = [(reader.read_int(), reader.read_int(), reader.read_float()) for _ in range(n_splits)]
                split = np.array(raw, dtype=np.float64).reshape(n_splits, 3)
                n_leaves = _size(reader, "leaf")
                leaf = np.stack([_matrix(reader) for _ in range(n_leaves)]) if n_leaves else np.empty((0, 0))
                if n_leaves != n_splits + 1 or leaf.shape[1] != 2 * n_landmarks:
                    raise ValueError(f"a tree with {n_splits} splits has {n_leaves} leaves of "
                                     f"{leaf.shape[1]} values ({2 * n_landmarks} expected)")
                for store, value in zip(stage, (split[:, 0], split[:, 1], split[:, 2], leaf)):
                    store.append(value)
            for store, values in zip((split_u, split_v, thresholds, leaves), stage):
                store.append(np.stack(values))
        anchors = [reader.read_ints(_size(reader, "anchor")) for _ in range(_size(reader, "stage"))]
        deltas = [reader.read_floats(2 * _size(reader, "delta")).reshape(-1, 2)
                  for _ in range(_size(reader, "stage"))]
    except (ValueError, OverflowError) as error:
        raise ValueError(f"{path}: not a readable dlib shape_predictor ({error})") from None
    if reader.remaining:
        raise ValueError(f"{path}: {reader.remaining} unexpected bytes after the model")
    for name, values in (("anchor", anchors), ("split", split_u + split_v)):
        if any(v.size and (v.min() < 0 or v.max() >= 2 ** 31) for v in values):
            raise ValueError(f"{path}: {name} index out of range")
    try:
        arrays = {
            "mean_shape_": initial.reshape(n_landmarks, 2).astype(np.float32),
            "anchors_": np.stack(anchors).astype(np.int32),
            "offsets_": np.stack(deltas).astype(np.float32),
            "split_u_": np.stack(split_u).astype(np.int32),
            "split_v_": np.stack(split_v).astype(np.int32),
            "split_threshold_": np.stack(thresholds).astype(np.float32),
            "leaf_values_": np.stack(leaves).astype(np.float32),
        }
    except ValueError as error:       # ragged: stages of different sizes
        raise ValueError(f"{path}: stages or trees differ in size, which cascade.ERT cannot hold "
                         f"({error})") from None
    arrays["leaf_scale_"] = np.ones(len(arrays["anchors_"]))
    return arrays

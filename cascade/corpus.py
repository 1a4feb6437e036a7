"""Landmarking a corpus: every face of many photos into Parquet shards, in one process or on Dask.

:func:`landmark_corpus` splits the list of images into partitions of
``partition_size`` images, runs :class:`cascade.Pipeline` on each partition and
writes it as one Parquet shard, ``part-000000.parquet``, ``part-000001.parquet``...
beside a ``manifest.json``. Inputs and output may be local paths or any fsspec URL
(``s3://``, ``gs://``, ``memory://``...) whose filesystem package is installed.

The shard's rows (one per face; an image with no face, or that could not be read,
has one row with ``face`` null)::

    image      string         the image's path (local: absolute; else its URL; bytes of a file name
                              that are not UTF-8 as \\xNN escapes)
    face       int32          the face's index in its image, surest first; null: no face or an error
    width      int32          the image's size in pixels (null: an error)
    height     int32
    score      float32        the detector's confidence (YuNet: [0, 1])
    quality    float32        the probability that the landmarks are right (cascade.quality; null
                              without the refiner)
    box        float32[4]     the detector's box: left, top, right, bottom
    landmarks  float32[L][2]  (x, y) pixels in the package's convention (:mod:`cascade`)
    scheme     string         the landmark scheme ("ibug68"): what each point is
    model      string         the landmark model
    error      string         why the image could not be read or landmarked (null: none)

The output folder is claimed before any work by creating ``.claim`` in it exclusively
(it holds the run's key): a second run with other settings started at the same time
is refused, never interleaved. Each shard is written under a temporary name (flushed
to disk on a local file system), then renamed: a shard that exists is complete. A
rerun with the same inputs and settings skips the shards already there, so an
interrupted run resumes, and a worker that dies mid-task loses
nothing (Dask retries its tasks elsewhere; a shard written twice is written
whole, with the same rows, under the same name). The manifest names the models
and their SHA-256, the parameters, the counts and the package version; it says
``"complete": true`` once every shard is written.

With ``engine="dask"`` a task carries its partition's paths, never pixels;
each worker process loads the models once (on its first task) and keeps them.
"""
import hashlib
import json
import logging
import os
import posixpath
import time
import uuid
from functools import lru_cache
from typing import NamedTuple

from . import __version__
from .bundled import model_path, resolved_name
from .data import IMAGE_SUFFIXES, decode_image, display_name
from .detect import DEFAULT_DETECTOR
from .extras import require
from .image_header import DEFAULT_MAX_PIXELS
from .validation import check_integer

log = logging.getLogger(__name__)

ENGINES = ("local", "dask")
#: The layout of a corpus output (this module's docstring); a manifest of another is refused.
FORMAT_VERSION = 2        # 2: the quality column
MANIFEST = "manifest.json"
CLAIM = ".claim"
SHARD_NAME = "part-{:06d}.parquet"
DEFAULT_PARTITION_SIZE = 256
_GLOB_CHARACTERS = set("*?[")


def landmark_corpus(inputs, output, *, model="default", detector=DEFAULT_DETECTOR, detector_options=None,
                    refiner=True, engine="local", client=None, workers=None,
                    partition_size=DEFAULT_PARTITION_SIZE, max_pixels=DEFAULT_MAX_PIXELS, progress=None):
    """Landmark every face of a corpus of images into Parquet shards (the module's docstring).

    Parameters
    ----------
    inputs : a folder (searched recursively), a glob (``photos/**/*.jpg``), an image, a text file
        of image paths (one a line; ``#`` comments; relative paths are relative to the file's
        folder), or a list of those (its items with an image suffix are taken as images unchecked).
        Folders and globs are sorted; lists keep their order. An image may appear only once.
    output : the folder of the shards and manifest (created; local or an fsspec URL). A folder
        holding another run's output (other inputs or settings) is refused.
    model, detector, detector_options, refiner : the :class:`cascade.Pipeline`'s; ``model`` is a
        bundled name or a model file that every worker can read, ``refiner`` True or False.
    engine : "local" (this process, one partition after another) or "dask"
    client : the ``distributed.Client`` of the cluster to run on; by default a ``LocalCluster`` of
        ``workers`` processes (default: one per core), one thread each, started and closed here
    partition_size : images a shard (and a Dask task) holds
    max_pixels : an image whose file declares more pixels is an error row, refused before it is
        decoded (:func:`cascade.data.decode_image`), so that a decompression bomb cannot exhaust a
        worker's memory; None for no limit of the package's
    progress : a tqdm bar of images: True, False, or None (on a terminal only)

    Returns the manifest (a dict, also written as ``manifest.json``), with what this run did
    under ``"run"``: the shards it computed and those it found complete.

    Missing inputs, an unknown model or detector, an output that is a file or holds another
    run are errors (``FileNotFoundError``, ``ValueError``) before any work; an image that cannot
    be read or landmarked is an error row, and the run goes on. Needs ``pip install
    "cascade-landmarks[dask]"`` (pyarrow, fsspec; dask and distributed for ``engine="dask"``).
    """
    fsspec = _require("fsspec")
    _require("pyarrow")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if client is not None and engine != "dask":
        raise ValueError("a client runs the dask engine: pass engine='dask'")
    if workers is not None:
        check_integer(workers, "workers")
        if engine != "dask" or client is not None:
            raise ValueError("workers sizes the local Dask cluster that landmark_corpus starts: it goes with "
                             "the dask engine and no client (a given cluster has its own workers)")
    partition_size = check_integer(partition_size, "partition_size")
    if not isinstance(refiner, bool):
        raise TypeError(f"refiner must be True or False here (workers load the bundled one), got {refiner!r}")
    if max_pixels is not None:
        max_pixels = check_integer(max_pixels, "max_pixels")
    settings = _Settings.of(model, detector, detector_options, refiner, max_pixels)
    pipeline = _pipeline(settings)              # unknown models and detectors fail here, before any work
    images = corpus_images(inputs)
    out_fs, root = fsspec.core.url_to_fs(str(output))
    partitions = [images[i:i + partition_size] for i in range(0, len(images), partition_size)]
    manifest = _planned_manifest(settings, pipeline, images, partition_size)
    _claim_output(out_fs, root, manifest)

    existing = set(map(posixpath.basename, out_fs.glob(posixpath.join(root, "part-*.parquet"))))
    todo = [index for index in range(len(partitions)) if SHARD_NAME.format(index) not in existing]
    shards = {index: _shard_counts(out_fs, posixpath.join(root, SHARD_NAME.format(index)))
              for index in range(len(partitions)) if index not in todo}
    log.info("%d images in %d shards: %d to compute, %d already written", len(images), len(partitions),
             len(todo), len(shards))
    from tqdm import tqdm
    with tqdm(total=len(images), initial=sum(counts["images"] for counts in shards.values()), unit="image",
              desc="landmark corpus", disable=None if progress is None else not progress) as bar:
        jobs = [(index, partitions[index]) for index in todo]
        done = _run_dask(jobs, str(output), settings, client, workers) if engine == "dask" else (
            (index, _landmark_shard(index, paths, str(output), settings)) for index, paths in jobs)
        for index, counts in done:
            shards[index] = counts
            bar.update(counts["images"])
    _remove_temporaries(out_fs, root)
    manifest.update(complete=True, counts=_totals(shards.values()),
                    shards=[{"file": SHARD_NAME.format(i), **shards[i]} for i in range(len(partitions))],
                    run={"engine": engine, "computed": len(todo), "skipped": len(partitions) - len(todo),
                         "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    _write_atomically(out_fs, posixpath.join(root, MANIFEST), json.dumps(manifest, indent=1).encode())
    return manifest


def corpus_images(inputs):
    """The image paths ``inputs`` names (see :func:`landmark_corpus`), in order: local paths made
    absolute, others as fsspec URLs. ``FileNotFoundError`` for a missing input, ``ValueError`` for a
    folder or glob without images, or an image named twice."""
    if isinstance(inputs, (list, tuple)):
        if not inputs:
            raise ValueError("inputs is an empty list")
        images = [path for item in inputs for path in _expand(item, listed=True)]
    else:
        images = _expand(inputs)
    seen = set()
    for path in images:
        if path in seen:
            raise ValueError(f"{path} is named twice in the inputs: each image once, so that each has one row")
        seen.add(path)
    return images


def read_corpus(output, columns=None):
    """The corpus output at ``output`` as one ``pyarrow.Table``, its shards in order (``.to_pandas()``
    for a DataFrame, with pandas installed). Refuses an output whose manifest does not say it is complete."""
    fsspec = _require("fsspec")
    import pyarrow.parquet as pq
    out_fs, root = fsspec.core.url_to_fs(str(output))
    manifest = _read_manifest(out_fs, root)
    if manifest is None or not manifest.get("complete"):
        raise ValueError(f"{output} holds no complete corpus output (its run has not finished: rerun it)")
    import pyarrow as pa
    tables = []
    for path in _shard_paths(manifest, root, output):
        try:
            with out_fs.open(path, "rb") as file:
                tables.append(pq.read_table(file, columns=columns))
        except (OSError, pa.ArrowException) as error:
            raise ValueError(f"the shard {path} cannot be read ({' '.join(str(error).split())}): delete it and "
                             "rerun the corpus to recompute it") from None
    return pa.concat_tables(tables)


def _shard_paths(manifest, root, output):
    """The shards a complete manifest lists, checked: ``part-000000.parquet``, ``part-000001.parquet``...
    in order, as many as it says, so that a damaged or edited manifest can name no file outside the
    output folder and none twice."""
    shards, n_shards = manifest.get("shards"), manifest.get("n_shards")
    if not isinstance(shards, list) or not isinstance(n_shards, int) or len(shards) != n_shards:
        raise ValueError(f"{posixpath.join(root, MANIFEST)} is damaged: its shard list does not hold its "
                         f"{n_shards!r} shards")
    for index, shard in enumerate(shards):
        if not isinstance(shard, dict) or shard.get("file") != SHARD_NAME.format(index):
            named = shard.get("file") if isinstance(shard, dict) else shard
            raise ValueError(f"{posixpath.join(root, MANIFEST)} is damaged: shard {index} must be "
                             f"{SHARD_NAME.format(index)} in {output}, not {named!r}")
    return [posixpath.join(root, SHARD_NAME.format(index)) for index in range(n_shards)]


# -- the settings a run is made of -------------------------------------------------------------

class _Settings(NamedTuple):
    """What a run's pipeline is made of: hashable, so that a worker caches its pipeline by it."""

    model: str
    detector: str
    detector_options: tuple         # sorted (name, value) pairs
    refine: bool
    max_pixels: object              # an int, or None

    @classmethod
    def of(cls, model, detector, detector_options, refine, max_pixels):
        if not isinstance(detector, str):
            raise TypeError(f"detector must be a detector's name here (workers build it), got {detector!r}")
        options = tuple(sorted((detector_options or {}).items()))
        for name, value in options:
            if not isinstance(value, (str, int, float, bool, type(None))):
                raise TypeError(f"detector_options[{name!r}] must be a number, a string or None (workers "
                                f"rebuild the detector from it), got {type(value).__name__}")
        return cls(str(resolved_name(model)), detector, options, refine, max_pixels)

    def as_dict(self):
        return {**self._asdict(), "detector_options": dict(self.detector_options)}


@lru_cache(maxsize=4)
def _pipeline(settings):
    """The pipeline of ``settings``, built once a process (a Dask worker's models stay loaded)."""
    from .pipeline import Pipeline
    return Pipeline(settings.model, detector=settings.detector, refiner=settings.refine,
                    detector_options=dict(settings.detector_options))


def _planned_manifest(settings, pipeline, images, partition_size):
    """The manifest before the work: what identifies the run (``"key"``), and its models."""
    models = {"landmarker": _file_record(model_path(settings.model))}
    if hasattr(pipeline.detector, "model_path"):
        models["detector"] = _file_record(pipeline.detector.model_path)
    if pipeline.refiner is not None:
        models["refiner"] = [_file_record(stage.path) for stage in pipeline.refiner.stages]
    inputs_digest = hashlib.sha256("\n".join(images).encode("utf-8", "surrogateescape")).hexdigest()
    identity = {"format": FORMAT_VERSION, "inputs": {"images": len(images), "sha256": inputs_digest},
                "partition_size": partition_size, "parameters": settings.as_dict(), "models": models}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return {**identity, "key": key, "cascade": __version__, "scheme": pipeline.scheme.name,
            "n_landmarks": pipeline.n_landmarks, "n_shards": -(-len(images) // partition_size),
            "complete": False}


def _file_record(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"file": os.path.basename(path), "sha256": digest.hexdigest()}


def _claim_output(out_fs, root, manifest):
    """Make ``root`` this run's output: new or empty, or holding this same run (then resumed).

    The claim is the exclusive creation of ``.claim`` holding the run's key: of two runs started
    together on one folder, one creates it and the other reads it, so that runs with other
    settings are refused rather than interleaved.
    """
    if out_fs.exists(root) and not out_fs.isdir(root):
        raise ValueError(f"the output {root} is a file, not a folder")
    another = ValueError(f"the output folder {root} holds the output of another run (other inputs, models or "
                         "settings): give another folder, or delete it")
    previous = _read_manifest(out_fs, root)
    if previous is not None and previous.get("key") != manifest["key"]:
        raise another
    claim = posixpath.join(root, CLAIM)
    out_fs.makedirs(root, exist_ok=True)
    try:
        with out_fs.open(claim, "xb") as file:
            file.write(manifest["key"].encode())
    except FileExistsError:
        if _claimant(out_fs, claim) != manifest["key"]:
            raise another from None
    else:
        if previous is None and any(_foreign(name) for name in out_fs.ls(root, detail=False)):
            out_fs.rm(claim)
            raise ValueError(f"the output folder {root} holds other files and no {MANIFEST}: give a new or "
                             "empty folder")
    if previous is None:
        _write_atomically(out_fs, posixpath.join(root, MANIFEST), json.dumps(manifest, indent=1).encode())


def _foreign(path):
    """Whether a file in an output folder is none of a run's own (its claim, its manifest being written)."""
    name = posixpath.basename(path.rstrip("/"))
    return name not in (CLAIM, MANIFEST) and ".tmp-" not in name


def _claimant(out_fs, claim):
    """The key in a claim file, waiting a little for a run that has created it to have written it."""
    for _ in range(100):
        key = out_fs.cat_file(claim).decode(errors="replace")
        if key:
            return key
        time.sleep(0.05)
    return key


def _read_manifest(out_fs, root):
    path = posixpath.join(root, MANIFEST)
    if not out_fs.exists(path):
        return None
    try:
        manifest = json.loads(out_fs.cat_file(path))
    except ValueError as error:
        raise ValueError(f"{path} is damaged: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a corpus manifest of format {FORMAT_VERSION}")
    return manifest


# -- inputs ------------------------------------------------------------------------------------

def _expand(item, listed=False):
    """The images one input names: a folder's, a glob's, a list file's, or the image itself (taken
    unchecked when ``listed`` and it has an image suffix: a long list costs no file-system calls)."""
    import fsspec
    if not isinstance(item, (str, os.PathLike)):
        raise TypeError(f"an input must be a path or URL, got {item!r}")
    item = os.fspath(item)
    fs, path = fsspec.core.url_to_fs(item)
    has_image_suffix = posixpath.splitext(path)[1].lower() in IMAGE_SUFFIXES
    if listed and has_image_suffix:
        return [_canonical(fs, path)]
    if _GLOB_CHARACTERS & set(path):
        found = sorted(p for p in fs.glob(path) if _is_image_name(p))
        if not found:
            raise ValueError(f"no images match {item}")
        return [_canonical(fs, p) for p in found]
    if fs.isdir(path):
        found = sorted(p for p in fs.find(path) if _is_image_name(p))
        if not found:
            raise ValueError(f"no images in {item} (looked for {', '.join(IMAGE_SUFFIXES)}, in its subfolders too)")
        return [_canonical(fs, p) for p in found]
    if not fs.isfile(path):
        raise FileNotFoundError(f"no image, folder or list of images at {item}")
    if has_image_suffix:
        return [_canonical(fs, path)]
    lines = [line.strip() for line in fs.cat_file(path).decode().splitlines()]
    folder = posixpath.dirname(path)
    found = [_canonical(fs, line if "://" in line or posixpath.isabs(line) else posixpath.join(folder, line))
             for line in lines if line and not line.startswith("#")]
    if not found:
        raise ValueError(f"the list {item} names no images")
    return found


def _is_image_name(path):
    return posixpath.splitext(path)[1].lower() in IMAGE_SUFFIXES


def _canonical(fs, path):
    if "://" in path:
        return path
    if _is_local(fs):
        return os.path.abspath(path)
    return fs.unstrip_protocol(path)


def _is_local(fs):
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol
    return "file" in protocols


# -- one shard (a task) ------------------------------------------------------------------------

def _landmark_shard(index, paths, output, settings):
    """Landmark ``paths`` and write them as shard ``index`` of ``output``; returns the shard's counts.

    Runs wherever the engine puts it (a Dask worker: the arguments are small, the pipeline is the
    worker's own, loaded once)."""
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq
    pipeline = _pipeline(settings)
    rows = [row for path in paths for row in _image_rows(pipeline, path, settings.max_pixels)]
    # An image without a face, or with an error, has one row whose face is null.
    counts = {"images": len(paths), "faces": sum(row["face"] is not None for row in rows),
              "no_face": sum(row["face"] is None and row["error"] is None for row in rows),
              "errors": sum(row["error"] is not None for row in rows)}
    table = _table(rows, settings.model, pipeline, counts)
    out_fs, root = fsspec.core.url_to_fs(output)
    encoded = pa.BufferOutputStream()
    pq.write_table(table, encoded, compression="zstd")
    _write_atomically(out_fs, posixpath.join(root, SHARD_NAME.format(index)), encoded.getvalue().to_pybytes())
    return counts


def _image_rows(pipeline, path, max_pixels):
    """The rows of one image: a face's each, or one row without a face (and why, for an error)."""
    import cv2
    import fsspec
    name = display_name(path)
    try:
        with fsspec.open(path, "rb") as file:
            image = decode_image(file.read(), name, max_pixels=max_pixels)
        faces = pipeline(image)
    except (OSError, ValueError, TypeError, MemoryError, cv2.error) as error:
        return [_row(name, error=" ".join(f"{type(error).__name__}: {error}".split()))]
    size = {"width": image.shape[1], "height": image.shape[0]}
    if not faces:
        return [_row(name, **size)]
    return [_row(name, face=k, score=face.score, quality=face.quality, box=face.box.tolist(),
                 landmarks=face.landmarks.tolist(), **size)
            for k, face in enumerate(faces)]


def _row(image, face=None, width=None, height=None, score=None, quality=None, box=None, landmarks=None, error=None):
    return {"image": image, "face": face, "width": width, "height": height, "score": score, "quality": quality,
            "box": box, "landmarks": landmarks, "error": error}


def _schema(n_landmarks):
    import pyarrow as pa
    return pa.schema([("image", pa.string()), ("face", pa.int32()), ("width", pa.int32()),
                      ("height", pa.int32()), ("score", pa.float32()), ("quality", pa.float32()),
                      ("box", pa.list_(pa.float32(), 4)),
                      ("landmarks", pa.list_(pa.list_(pa.float32(), 2), n_landmarks)),
                      ("scheme", pa.string()), ("model", pa.string()), ("error", pa.string())])


def _table(rows, model, pipeline, counts):
    import pyarrow as pa
    schema = _schema(pipeline.n_landmarks)
    columns = {name: [row[name] for row in rows] for name in schema.names if name not in ("scheme", "model")}
    columns["scheme"] = [pipeline.scheme.name] * len(rows)
    columns["model"] = [model] * len(rows)
    table = pa.table(columns, schema=schema)
    return table.replace_schema_metadata({"cascade": json.dumps(counts)})


def _shard_counts(out_fs, path):
    """The counts a complete shard stores in its footer (read without its rows)."""
    import pyarrow.parquet as pq
    with out_fs.open(path, "rb") as file:
        metadata = pq.read_schema(file).metadata or {}
    try:
        return json.loads(metadata[b"cascade"])
    except (KeyError, ValueError):
        raise ValueError(f"{path} is not a shard of this package: delete it to recompute it") from None


def _totals(counts):
    totals = {"images": 0, "faces": 0, "no_face": 0, "errors": 0}
    for shard in counts:
        for key in totals:
            totals[key] += int(shard[key])
    return totals


def _write_atomically(out_fs, path, data):
    """Write ``data`` at ``path`` whole or not at all: under a temporary name, then renamed."""
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with out_fs.open(temporary, "wb") as file:
            file.write(data)
            if _is_local(out_fs):       # on disk before it has its final name, so a crash leaves no torn shard
                file.flush()
                os.fsync(file.fileno())
        out_fs.mv(temporary, path)
    except BaseException:
        if out_fs.exists(temporary):
            out_fs.rm(temporary)
        raise


def _remove_temporaries(out_fs, root):
    """Remove what writers killed mid-write left behind (never read: a shard is its final name)."""
    for path in out_fs.glob(posixpath.join(root, "*.tmp-*")):
        out_fs.rm(path)


# -- the Dask engine ---------------------------------------------------------------------------

def _run_dask(jobs, output, settings, client, workers):
    """``(index, counts)`` of each job as it completes on the cluster of ``client`` (or on a
    ``LocalCluster`` of ``workers`` processes, started here and closed after the last)."""
    distributed = _require("distributed")
    if not jobs:
        return
    own = client is None
    if own:
        cluster = distributed.LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                           processes=True, dashboard_address=":0")
        client = distributed.Client(cluster)
    try:
        token = uuid.uuid4().hex[:8]
        futures = {client.submit(_landmark_shard_on_worker, index, paths, output, settings, retries=2,
                                 key=f"landmark-shard-{index}-{token}"): index for index, paths in jobs}
        for future in distributed.as_completed(futures):
            yield futures[future], future.result()
    finally:
        if own:
            client.close()
            cluster.close()


def _landmark_shard_on_worker(*args):
    """:func:`_landmark_shard` with one OpenCV thread: a worker's task threads already fill its cores."""
    import cv2
    cv2.setNumThreads(1)
    return _landmark_shard(*args)


def _require(module):
    return require(module, "landmark_corpus", "dask")

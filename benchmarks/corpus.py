"""Landmarking a corpus on Dask: throughput with 1 and 2 worker processes, the scheduler's
overhead, workers' peak memory as the corpus grows, and the local engine beside them.

    python -m benchmarks.corpus [--images 2000,10000] [--data ../shared/data/300w]
                                [--corpus DIR] [--out benchmarks/results]

The corpus is built once (in ``--corpus``, default a scratch folder): JPEG files
(quality 90) of the 300-W faces, training and test folders alike (speed, not
accuracy, is measured), each copy scaled by one of 0.5, 1, 1.5 or 2 (the crops
are about 290 px; so 145 to 580 px), plus one image in 200 without a face (noise) and
one in 500 corrupt. A run of N images takes the first N files.

Each Dask run starts a fresh ``LocalCluster`` (worker processes, one thread each),
waits for its workers, then times ``landmark_corpus`` from the call to its
return: the workers load their models during the first task, inside the time.
The scheduler's overhead per task is measured two ways: a no-op task's round
trip on the same cluster, and (workers x wall time - the tasks' compute time,
from Dask's task stream) / tasks. A worker's peak memory is its process's
maximum resident set after the run. The local engine runs in this process.

Writes ``corpus.json`` and ``corpus.md`` to ``--out``.
"""
import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from cascade import __version__
from cascade.corpus import DEFAULT_PARTITION_SIZE, landmark_corpus
from cascade.data import IMAGE_SUFFIXES

from . import SCRATCH, output_path

SCALES = (0.5, 1.0, 1.5, 2.0)
FACELESS_EVERY, CORRUPT_EVERY = 200, 500


def build_corpus(data, folder, n_images):
    """Write the corpus's first ``n_images`` JPEG files into ``folder`` (kept between runs)."""
    folder = Path(folder)
    sources = sorted(p for p in Path(data).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        path = folder / f"{i // 1000:03d}" / f"photo-{i:06d}.jpg"
        if path.exists():
            continue
        path.parent.mkdir(exist_ok=True)
        if i % CORRUPT_EVERY == CORRUPT_EVERY - 1:
            path.write_bytes(b"\xff\xd8\xff\xe0 not a JPEG after all")
            continue
        if i % FACELESS_EVERY == FACELESS_EVERY - 1:
            image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        else:
            image = cv2.imread(str(sources[i % len(sources)]))
            scale = SCALES[(i // len(sources) + i) % len(SCALES)]
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return sorted(str(p) for p in folder.rglob("*.jpg"))[:n_images]


def run_dask(paths, workers, partition_size):
    """One timed run on a fresh LocalCluster of ``workers`` processes."""
    from distributed import Client, LocalCluster, get_task_stream
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client, tempfile.TemporaryDirectory() as output:
        client.wait_for_workers(workers)
        with get_task_stream(client) as stream:
            started = time.perf_counter()
            manifest = landmark_corpus(paths, output, engine="dask", client=client,
                                       partition_size=partition_size, progress=False)
            wall = time.perf_counter() - started
        compute = sum(part["stop"] - part["start"] for task in stream.data
                      for part in task["startstops"] if part["action"] == "compute")
        n_tasks = manifest["n_shards"]
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        n_noop = 1000
        started = time.perf_counter()
        client.gather(client.map(_noop, range(n_noop), pure=False))
        noop = (time.perf_counter() - started) / n_noop
    return {"engine": "dask", "workers": workers, "images": len(paths), "tasks": n_tasks, "seconds": wall,
            "images_per_second": len(paths) / wall, "counts": manifest["counts"],
            "overhead_ms_per_task": 1000 * (workers * wall - compute) / n_tasks,
            "noop_task_ms": 1000 * noop, "worker_peak_mib": sorted(peaks.values())}


def _noop(i):
    return i


def run_local(paths, partition_size):
    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        manifest = landmark_corpus(paths, output, engine="local", partition_size=partition_size, progress=False)
        wall = time.perf_counter() - started
    return {"engine": "local", "workers": 1, "images": len(paths), "tasks": manifest["n_shards"], "seconds": wall,
            "images_per_second": len(paths) / wall, "counts": manifest["counts"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "300w")
    parser.add_argument("--corpus", default=SCRATCH / "corpus-images", help="where the corpus's JPEG files are built")
    parser.add_argument("--images", default="2000,10000", type=lambda s: [int(n) for n in s.split(",")])
    parser.add_argument("--partition-size", type=int, default=DEFAULT_PARTITION_SIZE)
    parser.add_argument("--out", default=SCRATCH / "corpus", help="benchmarks/results to publish")
    parser.add_argument("--quick", action="store_true", help="200 images (a check that it runs)")
    args = parser.parse_args(argv)
    out = output_path(args.out, args.quick)
    sizes = [200] if args.quick else args.images
    paths = build_corpus(args.data, args.corpus, max(sizes))
    runs = []
    for n_images in sizes:
        for run in (lambda: run_dask(paths[:n_images], 1, args.partition_size),
                    lambda: run_dask(paths[:n_images], 2, args.partition_size),
                    lambda: run_local(paths[:n_images], args.partition_size)):
            runs.append(run())
            print(json.dumps(runs[-1]), flush=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, cascade {__version__}"
    results = {"machine": machine, "partition_size": args.partition_size, "runs": runs}
    out.mkdir(parents=True, exist_ok=True)
    (out / "corpus.json").write_text(json.dumps(results, indent=1))
    lines = [f"Machine: {machine}. Partition size {args.partition_size}; the default pipeline (YuNet, ert-68, "
             "int8 refiner).", "",
             "| images | engine | worker processes | images/s | vs 1 worker | overhead ms/task | no-op task ms "
             "| worker peak MiB |", "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        single = next(r for r in runs if r["images"] == run["images"] and r["engine"] == "dask" and r["workers"] == 1)
        speedup = run["images_per_second"] / single["images_per_second"]
        dask_only = (f"{run['overhead_ms_per_task']:.0f} | {run['noop_task_ms']:.2f} | "
                     f"{', '.join(f'{m:.0f}' for m in run['worker_peak_mib'])}" if run["engine"] == "dask"
                     else "- | - | -")
        lines.append(f"| {run['images']:,} | {run['engine']} | {run['workers']} | {run['images_per_second']:.1f} "
                     f"| {speedup:.2f}x | {dask_only} |")
    (out / "corpus.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

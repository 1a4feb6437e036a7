"""landmark_corpus on a real Dask cluster (worker processes) and in one process."""
import json
import os
import shutil
import signal
import threading
import time

import cv2
import distributed
import numpy as np
import pytest

import cascade
from cascade import corpus
from cascade.cli import main


@pytest.fixture(scope="module")
def photos(data_root, tmp_path_factory):
    """40 images in two folders: 37 faces of lfpw/testset, a face-less image, a corrupt file, an
    empty file."""
    folder = tmp_path_factory.mktemp("photos")
    for sub in ("a", "b"):
        (folder / sub).mkdir()
    faces = sorted((data_root / "lfpw" / "testset").glob("*.jpg"))[:37]
    for i, path in enumerate(faces):
        shutil.copy(path, folder / ("a" if i % 2 else "b") / path.name)
    cv2.imwrite(str(folder / "a" / "wall.png"), np.full((240, 320, 3), 170, np.uint8))
    (folder / "b" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (folder / "b" / "empty.png").write_bytes(b"")
    return folder


@pytest.fixture(scope="module")
def local_output(photos, tmp_path_factory):
    output = tmp_path_factory.mktemp("local") / "out"
    manifest = corpus.landmark_corpus(photos, output, partition_size=4)
    return output, manifest


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        yield client


def test_local_run_has_a_row_for_every_image(photos, local_output):
    output, manifest = local_output
    table = cascade.read_corpus(output)
    rows = table.to_pylist()
    images = sorted(str(p) for p in photos.rglob("*") if p.is_file())
    assert sorted({row["image"] for row in rows}) == images
    assert manifest["complete"] and manifest["n_shards"] == 10 == len(manifest["shards"])
    assert manifest["counts"] == {"images": 40, "faces": sum(r["face"] is not None for r in rows),
                                  "no_face": 1, "errors": 2}
    assert manifest["counts"]["faces"] >= 37
    by_image = {row["image"]: row for row in rows}
    assert by_image[str(photos / "a" / "wall.png")]["face"] is None
    assert by_image[str(photos / "a" / "wall.png")]["error"] is None
    assert by_image[str(photos / "a" / "wall.png")]["width"] == 320
    assert "cannot decode" in by_image[str(photos / "b" / "corrupt.jpg")]["error"]
    face = next(row for row in rows if row["face"] == 0)
    landmarks = np.array(face["landmarks"])
    assert landmarks.shape == (68, 2) and face["scheme"] == "ibug68" and face["model"] == "ert-68"
    left, top, right, bottom = face["box"]
    assert left < landmarks[:, 0].mean() < right and top < landmarks[:, 1].mean() < bottom
    # The same landmarks as the pipeline gives the image in memory (float32 in the shard).
    expected = cascade.Pipeline()(cv2.imread(face["image"]))[0].landmarks
    np.testing.assert_allclose(landmarks, expected, atol=1e-3)
    saved = json.loads((output / "manifest.json").read_text())
    assert saved["models"]["landmarker"]["file"] == "ert-68.npz" and len(saved["models"]["refiner"]) == 2
    assert saved["cascade"] == cascade.__version__ and saved["parameters"]["detector"] == "yunet"


def test_dask_output_equals_local_output_row_for_row(photos, local_output, client, tmp_path):
    manifest = corpus.landmark_corpus(photos, tmp_path / "out", engine="dask", client=client, partition_size=4)
    assert manifest["run"] == {**manifest["run"], "engine": "dask", "computed": 10, "skipped": 0}
    assert cascade.read_corpus(tmp_path / "out").equals(cascade.read_corpus(local_output[0]))
    assert manifest["key"] == local_output[1]["key"] and manifest["counts"] == local_output[1]["counts"]
    # Each worker loaded the models once and kept them for its later tasks.
    loads = client.run(lambda: corpus._pipeline.cache_info().misses)
    assert set(loads.values()) == {1}


def test_a_killed_worker_loses_nothing(photos, local_output, tmp_path):
    output = tmp_path / "out"
    result = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        before = client.run(os.getpid)

        def run():
            result["manifest"] = corpus.landmark_corpus(photos, output, engine="dask", client=client,
                                                        partition_size=1)
        job = threading.Thread(target=run)
        job.start()
        deadline = time.monotonic() + 120
        while len(list(output.glob("part-*.parquet"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        written_at_kill = len(list(output.glob("part-*.parquet")))
        os.kill(next(iter(before.values())), signal.SIGKILL)
        job.join(180)
        assert not job.is_alive()
        after = client.run(os.getpid)
    assert 3 <= written_at_kill < 40, "the worker was killed while the job ran"
    assert set(before.values()) != set(after.values()), "the nanny restarted the killed worker"
    manifest = result["manifest"]
    assert manifest["complete"] and manifest["counts"]["images"] == 40
    table = cascade.read_corpus(output)
    assert table.equals(cascade.read_corpus(local_output[0]))   # every image once, rows as the local run's
    assert not list(output.glob("*.tmp-*"))


def test_an_interrupted_run_resumes_with_the_missing_shards_only(photos, local_output, tmp_path, monkeypatch):
    output = tmp_path / "out"
    real_rows, calls = corpus._image_rows, []

    def interrupted(pipeline, path, max_pixels):
        calls.append(path)
        if len(calls) > 13:
            raise KeyboardInterrupt
        return real_rows(pipeline, path, max_pixels)
    monkeypatch.setattr(corpus, "_image_rows", interrupted)
    with pytest.raises(KeyboardInterrupt):
        corpus.landmark_corpus(photos, output, partition_size=4)
    monkeypatch.undo()
    written = sorted(output.glob("part-*.parquet"))
    assert [p.name for p in written] == [f"part-00000{i}.parquet" for i in range(3)]
    assert json.loads((output / "manifest.json").read_text())["complete"] is False
    with pytest.raises(ValueError, match="no complete corpus"):
        cascade.read_corpus(output)
    (output / "part-000003.parquet.tmp-0123").write_bytes(b"half a shard")      # as a killed writer leaves it
    stamps = {p.name: p.stat().st_mtime_ns for p in written}

    manifest = corpus.landmark_corpus(photos, output, partition_size=4)
    assert (manifest["run"]["computed"], manifest["run"]["skipped"]) == (7, 3)
    assert {p.name: p.stat().st_mtime_ns for p in written} == stamps          # not rewritten
    assert not list(output.glob("*.tmp-*"))
    assert cascade.read_corpus(output).equals(cascade.read_corpus(local_output[0]))
    assert manifest["counts"] == local_output[1]["counts"]
    again = corpus.landmark_corpus(photos, output, partition_size=4)
    assert (again["run"]["computed"], again["run"]["skipped"]) == (0, 10)


def test_inputs_as_glob_list_file_and_list(photos, tmp_path):
    everything = corpus.corpus_images(photos)
    assert len(everything) == 40 and everything == sorted(everything)
    assert corpus.corpus_images(str(photos / "a" / "*.jpg")) == [p for p in everything if "/a/" in p and
                                                                  p.endswith(".jpg")]
    listing = tmp_path / "photos.txt"
    listing.write_text(f"# two photos\n{photos / 'a' / 'wall.png'}\n\nb/corrupt.jpg\n")
    shutil.copy(listing, photos / "list.txt")
    assert corpus.corpus_images(photos / "list.txt") == [str(photos / "a" / "wall.png"),
                                                         str(photos / "b" / "corrupt.jpg")]
    (photos / "list.txt").unlink()
    assert corpus.corpus_images([photos / "a", "missing.jpg"])[-1] == os.path.abspath("missing.jpg")


def test_a_missing_listed_image_is_an_error_row(tmp_path):
    manifest = corpus.landmark_corpus([tmp_path / "gone.jpg"], tmp_path / "out", refiner=False)
    assert manifest["counts"]["errors"] == 1
    assert "gone.jpg" in cascade.read_corpus(tmp_path / "out").to_pylist()[0]["error"]


def test_fsspec_urls_in_and_out(photos):
    import fsspec
    memory = fsspec.filesystem("memory")
    for path in sorted((photos / "a").glob("*"))[:3]:
        memory.pipe(f"/corpus-in/{path.name}", path.read_bytes())
    manifest = corpus.landmark_corpus("memory://corpus-in", "memory://corpus-out", partition_size=2)
    assert manifest["counts"]["images"] == 3 and sorted(memory.ls("/corpus-out", detail=False)) == [
        "/corpus-out/.claim", "/corpus-out/manifest.json", "/corpus-out/part-000000.parquet", "/corpus-out/part-000001.parquet"]
    assert cascade.read_corpus("memory://corpus-out").column("image").to_pylist()[0].startswith("memory://")
    memory.rm("/corpus-in", recursive=True)
    memory.rm("/corpus-out", recursive=True)


@pytest.mark.parametrize("call, error, match", [
    (lambda p, o: corpus.landmark_corpus(p / "nowhere", o), FileNotFoundError, "no image, folder"),
    (lambda p, o: corpus.landmark_corpus(p, o, model="no-such-model"), ValueError, "unknown model"),
    (lambda p, o: corpus.landmark_corpus(p, o, detector="sonar"), ValueError, "sonar"),
    (lambda p, o: corpus.landmark_corpus(p, o, engine="spark"), ValueError, "engine"),
    (lambda p, o: corpus.landmark_corpus(p, o, partition_size=0), ValueError, "partition_size"),
    (lambda p, o: corpus.landmark_corpus(p, o, client=object()), ValueError, "engine='dask'"),
    (lambda p, o: corpus.landmark_corpus(p, o / "notes.txt"), ValueError, "is a file"),
    (lambda p, o: corpus.landmark_corpus([p / "a", p / "a" / "wall.png"], o), ValueError, "named twice"),
    (lambda p, o: corpus.landmark_corpus(p / "a" / "nothing-*.jpg", o), ValueError, "no images match"),
    (lambda p, o: corpus.landmark_corpus([], o), ValueError, "empty"),
    (lambda p, o: corpus.landmark_corpus(p, o, workers=2), ValueError, "workers sizes"),
    (lambda p, o: corpus.landmark_corpus(p, o, detector_options={"max_side": [640]}), TypeError, "max_side"),
])
def test_bad_arguments_fail_before_any_work(photos, tmp_path, call, error, match):
    output = tmp_path / "out"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    before = sorted(output.iterdir())
    with pytest.raises(error, match=match):
        call(photos, output)
    assert sorted(output.iterdir()) == before


def test_an_output_holding_something_else_is_refused(photos, local_output, tmp_path):
    with pytest.raises(ValueError, match="another run"):
        corpus.landmark_corpus(photos, local_output[0], partition_size=5)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="other files"):
        corpus.landmark_corpus(photos, tmp_path)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="damaged"):
        corpus.landmark_corpus(photos, damaged)


def test_cli_parquet(photos, tmp_path, capsys):
    output = tmp_path / "shards"
    assert main(["predict", str(photos / "a"), "--parquet", str(output), "--quiet", "--no-refine"]) == 0
    assert "0 unreadable; 1 shards computed" in capsys.readouterr().err
    assert cascade.read_corpus(output).num_rows >= 19
    assert main(["predict", str(photos / "b"), "--parquet", str(tmp_path / "b"), "--quiet",
                 "--engine", "dask", "--workers", "1", "--partition-size", "8"]) == 1    # two unreadable
    assert "2 unreadable; 3 shards computed" in capsys.readouterr().err
    assert main(["predict", str(photos), "--parquet", str(output), "--csv"]) == 2         # usage errors
    assert "--parquet writes" in capsys.readouterr().err
    assert main(["predict", str(photos), "--engine", "dask"]) == 2
    assert "pass --parquet" in capsys.readouterr().err


def test_grid_search_under_the_dask_joblib_backend(client):
    import joblib
    from sklearn.model_selection import GridSearchCV
    from synthetic import synthetic_faces
    images, shapes = synthetic_faces(36, seed=3)
    search = dict(param_grid={"n_trees": [3, 12], "tree_depth": [2, 4]}, cv=3)
    estimator = cascade.ERT(n_stages=3, n_init=3, feature_pool_size=100, random_state=0)
    local = GridSearchCV(estimator, **search).fit(images, shapes)
    with joblib.parallel_backend("dask"), distributed.get_task_stream(client) as stream:
        on_dask = GridSearchCV(estimator, n_jobs=-1, **search).fit(images, shapes)
    assert len({task["worker"] for task in stream.data}) == 2       # the fits ran on both worker processes
    assert on_dask.best_params_ == local.best_params_
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])

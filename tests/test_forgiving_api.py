"""The API takes what users naturally pass: one image with one box in any nesting, paths, PIL
images, RGB arrays, lists, folders; and says plainly what it cannot take."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import cascade
from cascade import ERT, Pipeline, load_model
from cascade.data import SAMPLE_PHOTO, read_image
from cascade.shapes import tight_boxes
from synthetic import synthetic_faces


@pytest.fixture(scope="module")
def photo_and_face():
    photo = cascade.sample_photo()
    landmarks = Pipeline()(photo)[0].landmarks
    return photo, tight_boxes(landmarks[None])[0], cascade.IBUG68.five_points(landmarks[None])[0]


def test_one_image_with_one_face_in_every_nesting(photo_and_face):
    photo, box, points = photo_and_face
    model = load_model("ert-68")
    one = model.predict(photo, box)
    assert one.shape == (68, 2)
    for boxes in (list(box), box.tolist()):
        np.testing.assert_array_equal(model.predict(photo, boxes), one)
    np.testing.assert_array_equal(model.predict([photo], box), one)
    for boxes in ([box], [box.tolist()], box[None]):
        np.testing.assert_array_equal(model.predict(photo, boxes), one[None])
        np.testing.assert_array_equal(model.predict([photo], boxes), one[None])
    np.testing.assert_array_equal(model.predict(photo, [box, box]), np.stack([one, one]))   # k faces of one image
    assert model.predict(photo, points=points).shape == (68, 2)
    assert model.predict(photo, points=points.tolist()).shape == (68, 2)
    assert model.predict(photo, points=[points]).shape == (1, 68, 2)


def test_what_predict_cannot_take_is_named(photo_and_face):
    photo, box, _ = photo_and_face
    model = load_model("ert-68")
    with pytest.raises(ValueError, match=r"boxes must be \(n_faces, 4\).*got shape \(1, 3\)"):
        model.predict(photo, [[1, 2, 3]])
    with pytest.raises(ValueError, match="boxes has 1 boxes, expected 2"):
        model.predict([photo, photo], [box])
    with pytest.raises(ValueError, match=r"one image and boxes of shape \(4,\)"):
        model.predict([photo, photo], box)


def test_the_pipeline_takes_paths_pil_images_rgb_arrays_and_lists(photo_and_face, tmp_path):
    photo = photo_and_face[0]
    pipeline = Pipeline()
    expected = pipeline(photo)[0].landmarks
    rgb = np.ascontiguousarray(photo[..., ::-1])
    given = [pipeline(str(SAMPLE_PHOTO)), pipeline(SAMPLE_PHOTO), Pipeline(color="rgb")(rgb),
             Pipeline(color="rgb")(cv2.cvtColor(photo, cv2.COLOR_BGR2RGBA))]
    image_module = pytest.importorskip("PIL.Image")
    given += [pipeline(image_module.fromarray(rgb)), pipeline(image_module.fromarray(rgb).convert("RGBA"))]
    for faces in given:
        np.testing.assert_array_equal(faces[0].landmarks, expected)
    grey = pipeline(image_module.fromarray(rgb).convert("L"))[0].landmarks
    assert np.abs(grey - expected).max() < 2          # the grey photo: the same face, found on other pixels
    listed = pipeline([photo, str(SAMPLE_PHOTO), np.zeros((64, 64), np.uint8)])
    assert [len(faces) for faces in listed] == [1, 1, 0]
    with pytest.raises(ValueError, match=r"color must be one of \('bgr', 'rgb'\), got 'RGB'"):
        Pipeline(color="RGB")
    with pytest.raises(FileNotFoundError, match="no image file at"):
        pipeline(str(tmp_path / "missing.jpg"))


def test_faces_in_a_folder_with_a_bad_image_among_them(photo_and_face, tmp_path, caplog):
    photo = photo_and_face[0]
    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "a.png"), photo)
    cv2.imwrite(str(tmp_path / "sub" / "b.jpg"), np.zeros((80, 80, 3), np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("not an image")
    found = Pipeline().faces_in_folder(tmp_path, progress=False)
    assert {path.name: len(faces) for path, faces in found.items()} == {"a.png": 1, "b.jpg": 0}
    assert "broken.png" in caplog.text
    assert list(Pipeline().faces_in_folder(tmp_path, recursive=False, progress=False)) == [tmp_path / "a.png"]
    with pytest.raises(NotADirectoryError):
        Pipeline().faces_in_folder(tmp_path / "a.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images in"):
        Pipeline().faces_in_folder(tmp_path / "empty")


def test_a_float_tiff_is_named_as_such(tmp_path):
    path = tmp_path / "float.tiff"
    cv2.imwrite(str(path), np.random.default_rng(0).random((40, 50, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="its samples are float32, which cascade does not read"):
        read_image(path)
    (tmp_path / "junk.tiff").write_bytes(b"II*\0junk")
    with pytest.raises(ValueError, match="empty, corrupt or not an image"):
        read_image(tmp_path / "junk.tiff")


def test_verbose_shows_a_progress_bar_and_a_loaded_model_is_quiet(capsys):
    images, shapes = synthetic_faces(30, seed=3)
    ERT(n_stages=2, n_trees=3, tree_depth=2, n_init=2, verbose=1, random_state=0).fit(images, shapes)
    assert "ERT stages: 100%" in capsys.readouterr().err
    ERT(n_stages=2, n_trees=3, tree_depth=2, n_init=2, random_state=0).fit(images, shapes)
    assert "stages" not in capsys.readouterr().err
    assert load_model("ert-68").verbose == 0 and "verbose" not in repr(load_model("ert-68"))


def test_without_the_train_extra_fitting_names_it_and_predicting_works(tmp_path):
    """scipy and scikit-learn hidden (as in a core install): predicting works, an LBF fit says which
    extra to install, and an unfitted estimator still raises a NotFittedError."""
    script = """
import sys
sys.modules["scipy"] = sys.modules["sklearn"] = None      # not installed
import cascade
from cascade import LBF, load_model
from synthetic import synthetic_faces
photo = cascade.sample_photo()
assert len(cascade.Pipeline(landmarker="lbf-68")(photo)) == 1
images, shapes = synthetic_faces(20, seed=1)
try:
    LBF(n_stages=1, n_trees=2, tree_depth=2, n_init=1).fit(images, shapes)
except ImportError as error:
    print(error)
try:
    LBF().predict(photo, [1, 2, 50, 60])
except (ValueError, AttributeError) as error:
    print(type(error).__name__, error)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "fitting an LBF needs scipy: pip install 'cascade-landmarks[train]'"
    assert lines[1].startswith("NotFittedError this LBF is not fitted yet")

import importlib.util

import cv2
import numpy as np
import pytest
from skimage import data

from cascade.detect import BoxCalibration, HaarDetector, box_iou, make_detector, match_detection
from cascade.shapes import tight_boxes


@pytest.fixture(scope="module")
def astronaut():
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def test_haar_finds_the_astronaut(astronaut):
    boxes, scores = HaarDetector()(astronaut)
    assert boxes.shape == (1, 4) and scores.shape == (1,)
    left, top, right, bottom = boxes[0]
    # Her face: eyes near (200, 105) and (245, 100), mouth near (225, 145).
    assert left < 200 < 245 < right and top < 100 < 145 < bottom
    assert 60 < right - left < 150


def test_haar_on_no_face_and_bad_input(astronaut):
    boxes, scores = HaarDetector()(np.full((120, 160), 128, np.uint8))
    assert boxes.shape == (0, 4) and scores.shape == (0,)
    with pytest.raises(TypeError, match="uint8"):
        HaarDetector()(astronaut.astype(np.float32))
    with pytest.raises(ValueError, match="empty"):
        HaarDetector()(np.zeros((0, 5), np.uint8))
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector("yolo")
    for options in ({"scale_factor": 1.0}, {"min_neighbors": -1}, {"min_size": 2.5}):
        with pytest.raises(ValueError, match="must be"):
            HaarDetector(**options)
    with pytest.raises(ValueError, match="cannot read a Haar cascade"):
        HaarDetector(cascade_file="/nonexistent.xml")(astronaut)


def test_overlap_and_matching():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [100, 100, 110, 110]], float)
    np.testing.assert_allclose(box_iou(boxes, [0, 0, 10, 10]), [1, 25 / 175, 0])
    assert match_detection(boxes, [6, 6, 15, 15]) == 1
    assert match_detection(boxes, [50, 50, 60, 60]) == -1
    assert match_detection(np.zeros((0, 4)), [0, 0, 1, 1]) == -1


def test_calibration_recovers_a_known_mapping(rng):
    known = BoxCalibration(shift_x=0.02, shift_y=0.15, scale_x=1.1, scale_y=0.95)
    corner = rng.uniform(0, 200, (50, 2))
    detected = np.concatenate([corner, corner + rng.uniform(40, 120, (50, 1))], axis=1)
    fitted = BoxCalibration.fit(detected, known.apply(detected))
    for name, value in known.to_dict().items():
        assert getattr(fitted, name) == pytest.approx(value)
    np.testing.assert_allclose(BoxCalibration().apply(detected), detected, atol=1e-12)
    with pytest.raises(ValueError, match="expected 50"):
        BoxCalibration.fit(detected, detected[:3])


def test_calibrated_haar_boxes_match_tight_boxes_on_real_faces(test_faces):
    detector, truth = HaarDetector(), tight_boxes(test_faces.shapes)
    matched, tight = [], []
    for image, box in zip(test_faces.images, truth):
        boxes, _ = detector(image)
        best = match_detection(boxes, box)
        if best >= 0:
            matched.append(boxes[best])
            tight.append(box)
    assert len(matched) >= 0.8 * len(truth)
    matched, tight = np.array(matched), np.array(tight)
    calibration = BoxCalibration.fit(matched, tight)
    raw = np.median([box_iou(m[None], t)[0] for m, t in zip(matched, tight)])
    calibrated = np.median([box_iou(c[None], t)[0] for c, t in zip(calibration.apply(matched), tight)])
    assert calibrated > max(raw, 0.75), (raw, calibrated)


@pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib is not installed")
def test_dlib_hog_finds_the_astronaut(astronaut):
    boxes, scores = make_detector("dlib-hog")(astronaut)
    assert boxes.shape == (1, 4) and box_iou(boxes, HaarDetector()(astronaut)[0][0])[0] > 0.5


@pytest.mark.parametrize("name", ["haar", "dlib-hog"])
def test_detectors_are_thread_safe(name, test_faces):
    if name == "dlib-hog" and importlib.util.find_spec("dlib") is None:
        pytest.skip("dlib is not installed")
    from concurrent.futures import ThreadPoolExecutor
    detector = make_detector(name)
    images = list(test_faces.images[:12]) * 2
    serial = [detector(image)[0] for image in images]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda image: detector(image)[0], images))
    for one, other in zip(serial, threaded):
        np.testing.assert_array_equal(one, other)


def test_yunet_needs_a_readable_model_file(tmp_path):
    from cascade.detect import YuNetDetector
    with pytest.raises(FileNotFoundError, match="no YuNet model file"):
        YuNetDetector(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a network")
    with pytest.raises(ValueError, match="cannot read a YuNet model"):
        YuNetDetector(bad)(np.zeros((50, 50), np.uint8))
    with pytest.raises(ValueError, match="threshold"):
        YuNetDetector(bad, score_threshold=2)

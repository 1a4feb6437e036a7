import hashlib
import importlib.util

import cv2
import numpy as np
import pytest

import cascade
from cascade.calibration import BoxCalibration
from cascade.detect import (DEFAULT_DETECTOR, UPRIGHT_MIN_ROLL, YUNET_MODEL, Detections, HaarDetector, YuNetDetector,
                            box_iou, detect_faces, detections_of, downscaled, five_point_roll, make_detector,
                            match_detection)
from cascade.schemes import IBUG68
from cascade.shapes import tight_boxes
from cascade.yunet import YuNet

HAS_HAAR = hasattr(cv2, "CascadeClassifier")
needs_haar = pytest.mark.skipif(not HAS_HAAR, reason=f"OpenCV {cv2.__version__} has no Haar cascades")
needs_dlib = pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib is not installed")
#: Her face: eyes near (200, 102) and (247, 103), mouth corners near (199, 143) and (240, 144).
EYES_AND_MOUTH = np.array([[200, 102], [247, 103], [220, 125], [199, 143], [240, 144]], float)


@pytest.fixture(scope="module")
def astronaut():
    return cascade.sample_photo()


def test_the_bundled_yunet_is_the_published_file_with_its_input_size_free(data_root):
    assert hashlib.sha256(YUNET_MODEL.read_bytes()).hexdigest() == \
        "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
    assert "MIT License" in (YUNET_MODEL.parent / "LICENSE").read_text()
    assert DEFAULT_DETECTOR == "yunet" and isinstance(make_detector(), YuNetDetector)
    published = data_root.parents[1] / "models" / "yunet" / "face_detection_yunet_2023mar.onnx"
    assert hashlib.sha256(published.read_bytes()).hexdigest() == \
        "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
    onnx = pytest.importorskip("onnx")
    from tools.yunet_dynamic import dynamic_yunet
    assert dynamic_yunet(onnx.load(str(published))).SerializeToString() == YUNET_MODEL.read_bytes()


def test_yunet_decodes_as_opencv_does(data_root):
    """Boxes, points and scores as OpenCV's FaceDetectorYN gives them from the published file, where
    this OpenCV has it (its DNN module runs the network; ours, ONNX Runtime)."""
    if not hasattr(cv2, "FaceDetectorYN"):
        pytest.skip("this OpenCV has no FaceDetectorYN")
    published = str(data_root.parents[1] / "models" / "yunet" / "face_detection_yunet_2023mar.onnx")
    network = YuNet(YUNET_MODEL)
    compared = 0
    for path in sorted((data_root / "afw").glob("*.jpg"))[:12]:
        image = cv2.imread(str(path))
        for copy in (image, cv2.resize(image, (640, 480)), cv2.resize(image, (100, 100))):
            theirs = cv2.FaceDetectorYN.create(published, "", (copy.shape[1], copy.shape[0]), 0.6, 0.3).detect(copy)[1]
            theirs = np.zeros((0, 15)) if theirs is None else theirs[np.lexsort((theirs[:, 0], -theirs[:, 14]))]
            ours = network(copy)
            assert len(ours.scores) == len(theirs)
            np.testing.assert_allclose(ours.boxes, np.concatenate([theirs[:, :2], theirs[:, :2] + theirs[:, 2:4]], 1),
                                       atol=1e-3)
            np.testing.assert_allclose(ours.points, theirs[:, 4:14].reshape(-1, 5, 2), atol=1e-3)
            np.testing.assert_allclose(ours.scores, theirs[:, 14], atol=1e-5)
            compared += len(theirs)
    assert compared >= 20


def test_yunet_finds_the_astronaut_with_her_five_points(astronaut):
    found = YuNetDetector()(astronaut)
    assert isinstance(found, Detections)
    assert found.boxes.shape == (1, 4) and found.scores.shape == (1,) and found.points.shape == (1, 5, 2)
    left, top, right, bottom = found.boxes[0]
    assert left < 200 < 245 < right and top < 100 < 145 < bottom
    assert np.abs(found.points[0] - EYES_AND_MOUTH).max() < 6


@pytest.mark.parametrize("canvas_size", [(1080, 1920), (3000, 4000)])
def test_detection_on_a_large_photo_is_mapped_back_to_its_pixels(astronaut, canvas_size):
    canvas = np.full((*canvas_size, 3), 90, np.uint8)
    side = int(0.8 * canvas_size[0])                # the astronaut at twice her size, or more
    canvas[100:100 + side, 300:300 + side] = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_LINEAR)
    found = YuNetDetector()(canvas)
    assert len(found.boxes) == 1, "one face, no false ones"
    expected = EYES_AND_MOUTH * side / 512 + [300, 100]
    face_width = 90 * side / 512
    assert np.abs(found.points[0] - expected).max() < 0.12 * face_width


def test_downscaled_copy_maps_pixel_centres_back(rng):
    image = rng.integers(0, 255, (3000, 2001, 3), dtype=np.uint8)
    small, scale, offset = downscaled(image, 640)
    assert max(small.shape[:2]) <= 640 and small.shape[2] == 3
    # A small pixel's centre maps back near the middle of the block it averages.
    assert np.all(np.abs((np.array(small.shape[1::-1]) - 0.5) * scale + offset
                         - np.array(image.shape[1::-1]) + 0.5 * scale) < scale)
    same, scale, offset = downscaled(image[:500, :600], 640)
    assert same.base is image and np.array_equal(scale, [1, 1]) and np.array_equal(offset, [0, 0])
    assert downscaled(image, None)[0] is image


@pytest.mark.parametrize("size, max_side", [((480, 640), 320), ((720, 1280), 160), ((433, 431), 160),
                                            ((1080, 1920), 320), ((3000, 2001), 80), ((7, 5000), 320)])
def test_downscaled_copy_maps_pixel_centres_exactly(size, max_side):
    """Ramps (x and y times 12 in 16 bits) keep their values at each step of the shrinking (sampling,
    averaging and linear resizing all keep a linear function), so each small pixel's value says
    where it came from."""
    height, width = size
    ramps = [np.broadcast_to((np.arange(width) * 12).astype(np.uint16), size).copy(),
             np.broadcast_to((np.arange(height)[:, None] * 12).astype(np.uint16), size).copy()]
    for axis, ramp in enumerate(ramps):
        small, scale, offset = downscaled(ramp, max_side)
        assert max(small.shape) <= max_side
        index = np.arange(small.shape[1 - axis])
        values = small[0, :] if axis == 0 else small[:, 0]
        np.testing.assert_allclose(values / 12, index * scale[axis] + offset[axis], atol=0.2)


def test_detecting_on_a_huge_photo_costs_a_fraction_of_reading_it(astronaut):
    import time
    huge = np.zeros((12000, 12000, 3), np.uint8)
    huge[4000:9120, 4000:9120] = cv2.resize(astronaut, (5120, 5120), interpolation=cv2.INTER_NEAREST)
    detector = YuNetDetector()
    started = time.perf_counter()
    found = detector(huge)
    detect = time.perf_counter() - started
    started = time.perf_counter()
    huge.copy()                                    # one full read and write: 432 MB
    copy = time.perf_counter() - started
    assert len(found.boxes) == 1 and 4000 < found.boxes[0, 0] < found.boxes[0, 2] < 9120
    assert detect < 3 * copy + 0.2, (detect, copy)


def test_detections_of_accepts_tuples_and_refuses_disagreeing_arrays():
    two = detections_of((np.zeros((2, 4)), np.ones(2)))
    assert two.points is None and two.boxes.shape == (2, 4)
    assert detections_of((np.zeros((1, 4)), [1.0], np.zeros((1, 5, 2)))).points.shape == (1, 5, 2)
    with pytest.raises(ValueError, match="must return"):
        detections_of(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="must agree"):
        detections_of((np.zeros((2, 4)), np.ones(3)))
    with pytest.raises(ValueError, match="must agree"):
        detections_of((np.zeros((2, 4)), np.ones(2), np.zeros((2, 4, 2))))


def test_detectors_on_no_face_and_bad_input(astronaut):
    found = YuNetDetector()(np.full((120, 160), 128, np.uint8))
    assert found.boxes.shape == (0, 4) and found.scores.shape == (0,) and found.points.shape == (0, 5, 2)
    with pytest.raises(TypeError, match="uint8"):
        YuNetDetector()(astronaut.astype(np.float32))
    with pytest.raises(ValueError, match="empty"):
        YuNetDetector()(np.zeros((0, 5), np.uint8))
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector("yolo")
    with pytest.raises(ValueError, match="max_side"):
        YuNetDetector(max_side=8)


@needs_haar
def test_haar_finds_the_astronaut(astronaut):
    found = HaarDetector()(astronaut)
    assert found.boxes.shape == (1, 4) and found.points is None
    left, top, right, bottom = found.boxes[0]
    assert left < 200 < 245 < right and top < 100 < 145 < bottom
    for options in ({"scale_factor": 1.0}, {"min_neighbors": -1}, {"min_size": 2.5}):
        with pytest.raises(ValueError, match="must be"):
            HaarDetector(**options)
    with pytest.raises(ValueError, match="cannot read a Haar cascade"):
        HaarDetector(cascade_file="/nonexistent.xml")(astronaut)


@pytest.mark.skipif(HAS_HAAR, reason="this OpenCV has Haar cascades")
def test_haar_says_clearly_when_opencv_lacks_it():
    with pytest.raises(ImportError, match="no Haar cascade detector"):
        HaarDetector()


def test_overlap_and_matching():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [100, 100, 110, 110]], float)
    np.testing.assert_allclose(box_iou(boxes, [0, 0, 10, 10]), [1, 25 / 175, 0])
    assert match_detection(boxes, [6, 6, 15, 15]) == 1
    assert match_detection(boxes, [50, 50, 60, 60]) == -1
    assert match_detection(np.zeros((0, 4)), [0, 0, 1, 1]) == -1


def test_detect_faces_matches_each_face_and_marks_misses(test_faces):
    images, shapes = list(test_faces.images[:6]), test_faces.shapes[:6].copy()
    shapes[2] += 1000                                  # a face where there is none: a miss
    images[2] = np.pad(images[2], ((0, 1300), (0, 1300), (0, 0)))
    boxes, points = detect_faces(YuNetDetector(), images, shapes)
    assert np.isnan(boxes[2]).all() and np.isnan(points[2]).all()
    others = [0, 1, 3, 4, 5]
    assert all(box_iou(boxes[i][None], tight_boxes(shapes[i]))[0] > 0.3 for i in others)
    eyes = np.linalg.norm(IBUG68.five_points(shapes[others])[:, 0] - IBUG68.five_points(shapes[others])[:, 1], axis=1)
    assert (np.linalg.norm(points[others] - IBUG68.five_points(shapes[others]), axis=2).max(axis=1) < 0.4 * eyes).all()


@needs_haar
def test_calibrated_haar_boxes_match_tight_boxes_on_real_faces(test_faces):
    truth = tight_boxes(test_faces.shapes)
    boxes, _ = detect_faces(HaarDetector(), list(test_faces.images), test_faces.shapes)
    found = ~np.isnan(boxes[:, 0])
    assert found.mean() >= 0.8
    calibration = BoxCalibration.fit(boxes[found], truth[found])
    raw = np.median([box_iou(m[None], t)[0] for m, t in zip(boxes[found], truth[found])])
    calibrated = np.median([box_iou(c[None], t)[0] for c, t in zip(calibration.apply(boxes[found]), truth[found])])
    assert calibrated > max(raw, 0.75), (raw, calibrated)


@needs_dlib
def test_dlib_hog_finds_the_astronaut(astronaut):
    found = make_detector("dlib-hog")(astronaut)
    assert found.boxes.shape == (1, 4) and box_iou(found.boxes, YuNetDetector()(astronaut).boxes[0])[0] > 0.4


@pytest.mark.parametrize("name", ["yunet", pytest.param("haar", marks=needs_haar),
                                  pytest.param("dlib-hog", marks=needs_dlib)])
def test_detectors_are_thread_safe(name, test_faces):
    from concurrent.futures import ThreadPoolExecutor
    detector = make_detector(name)
    images = list(test_faces.images[:12]) * 2
    serial = [detector(image) for image in images]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(detector, images))
    for one, other in zip(serial, threaded):
        np.testing.assert_array_equal(one.boxes, other.boxes)
        np.testing.assert_array_equal(one.points, other.points)


def test_yunet_needs_a_readable_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no YuNet model file"):
        YuNetDetector(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a network")
    with pytest.raises(ValueError, match="not a YuNet face detector"):
        YuNetDetector(bad)(np.zeros((50, 50), np.uint8))
    with pytest.raises(ValueError, match="threshold"):
        YuNetDetector(bad, score_threshold=2)


def test_a_40_px_face_in_a_1080p_photo_is_found_at_max_side_480_and_not_by_default(astronaut):
    """The default copy (320 px) finds faces from about a thirtieth of the photo's side; a larger
    max_side trades speed for smaller faces (the README's promise: 35 px at 480)."""
    photo = np.full((1080, 1920, 3), 120, np.uint8)
    photo[500:720, 900:1120] = cv2.resize(astronaut, (220, 220), interpolation=cv2.INTER_AREA)
    found = YuNetDetector(max_side=480)(photo)
    assert len(found.boxes) == 1
    assert 35 < found.boxes[0, 2] - found.boxes[0, 0] <= 42          # the face is about 38 px wide
    assert len(YuNetDetector()(photo).boxes) == 0


def test_a_turned_face_is_looked_at_again_upright(test_images_and_shapes):
    """YuNet's points on faces turned 30-50 degrees: looked at again upright, they lie closer to the
    faces' own five points (on these faces 0.32 -> 0.18 of the inter-ocular distance, measured);
    an upright face (roll under UPRIGHT_MIN_ROLL) keeps its points untouched."""
    images, shapes = test_images_and_shapes
    once, upright = YuNetDetector(upright_passes=0), YuNetDetector()
    errors = {0: [], 3: []}
    for k, (image, shape) in enumerate(zip(images[:12], shapes)):
        centre = (image.shape[1] / 2, image.shape[0] / 2)
        turn = cv2.getRotationMatrix2D(centre, (30 + 2 * k) * (-1) ** k, 1)
        turned = cv2.warpAffine(image, turn, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
        truth = IBUG68.five_points(shape @ turn[:, :2].T + turn[:, 2])
        iod = np.linalg.norm(truth[1] - truth[0])
        for passes, detector in ((0, once), (3, upright)):
            found = detector(turned)
            best = int(np.argmax(box_iou(found.boxes, tight_boxes(shape @ turn[:, :2].T + turn[:, 2]))))
            errors[passes].append(np.linalg.norm(found.points[best] - truth, axis=1).mean() / iod)
    assert np.mean(errors[3]) < 0.75 * np.mean(errors[0]), errors
    plain = once(images[0])
    assert abs(five_point_roll(plain.points[0])) < UPRIGHT_MIN_ROLL
    np.testing.assert_array_equal(upright(images[0]).points, plain.points)
    with pytest.raises(ValueError, match="upright_passes"):
        YuNetDetector(upright_passes=-1)

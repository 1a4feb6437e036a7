"""Applications of the landmarks, each on a real face: blur, align, overlay, pose."""
import cv2
import numpy as np
import pytest

from cascade import apps, load_model
from cascade.schemes import IBUG68
from cascade.shapes import flip_shapes, similarity_fit, tight_boxes


@pytest.fixture(scope="module")
def face(test_faces):
    return test_faces.images[0], test_faces.shapes[0]


@pytest.fixture(scope="module")
def model():
    return load_model("default")


@pytest.mark.parametrize("method", ["gaussian", "pixelate"])
def test_blur_hides_the_face_inside_its_outline_only(face, method):
    image, shape = face
    blurred = apps.blur_faces(image, [shape], method)
    mask = apps.face_outline_mask(image.shape, shape)
    changed = np.abs(blurred.astype(int) - image.astype(int)).max(axis=2) > 0
    inner = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0
    outer = cv2.dilate(mask, np.ones((9, 9), np.uint8)) == 0
    assert changed[inner].mean() > 0.8
    assert not changed[outer].any()
    # Fine detail (the eyes) is gone: the Laplacian's energy inside the face drops a lot.
    detail = [np.abs(cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), cv2.CV_64F))[inner].mean()
              for im in (image, blurred)]
    assert detail[1] < 0.5 * detail[0]
    assert np.array_equal(image, face[0])             # the input is not touched


def test_blur_of_no_face_is_the_image_and_bad_method_is_refused(face):
    image, shape = face
    assert np.array_equal(apps.blur_faces(image, []), image)
    with pytest.raises(ValueError, match="method"):
        apps.blur_faces(image, [shape], "swirl")


def test_align_puts_the_five_points_on_the_template(face, model):
    image, shape = face
    crop, = apps.align_faces(image, [shape])
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    # Landmarks found afresh in the aligned crop (from the box the truth has there) sit on the template.
    A, t = similarity_fit(IBUG68.five_points(shape[None]), apps.FIVE_POINT_TEMPLATE_112[None])
    found = model.predict(crop, tight_boxes(shape @ A[0].T + t[0]))
    five = IBUG68.five_points(found[None])[0]
    assert np.linalg.norm(five - apps.FIVE_POINT_TEMPLATE_112, axis=1).mean() < 4.0
    assert apps.align_faces(image, [shape], size=56).shape == (1, 56, 56, 3)
    assert apps.align_faces(image, []).shape == (0, 112, 112, 3)
    with pytest.raises(ValueError, match="size"):
        apps.align_faces(image, [shape], size=2)


def test_overlay_darkens_the_eyes_and_follows_roll(face):
    image, shape = face
    glasses = apps.sunglasses()
    result = apps.overlay_on_faces(image, [shape], glasses)
    eyes = IBUG68.five_points(shape[None])[0, :2].round().astype(int)
    for x, y in eyes:
        assert result[y, x].mean() < 40                  # under a dark lens
    chin = shape[8].round().astype(int)
    assert np.array_equal(result[chin[1], chin[0]], image[chin[1], chin[0]])
    with pytest.raises(ValueError, match="BGRA"):
        apps.overlay_on_faces(image, [shape], glasses[..., :3])


def test_head_pose_of_a_face_its_mirror_and_a_rolled_copy(face):
    image, shape = face
    pose = apps.head_pose(shape, image.shape)
    assert abs(pose.yaw) < 30 and abs(pose.pitch) < 30 and abs(pose.roll) < 15
    mirrored = apps.head_pose(flip_shapes(shape[None], image.shape[1])[0], image.shape)
    assert mirrored.yaw == pytest.approx(-pose.yaw, abs=3)
    assert mirrored.roll == pytest.approx(-pose.roll, abs=3)
    # Turn the image 20 degrees clockwise about its centre: the roll grows by about 20.
    centre = ((image.shape[1] - 1) / 2, (image.shape[0] - 1) / 2)
    rotation = cv2.getRotationMatrix2D(centre, -20, 1.0)
    rolled = apps.head_pose(shape @ rotation[:, :2].T + rotation[:, 2], image.shape)
    assert rolled.roll - pose.roll == pytest.approx(20, abs=3)
    assert set(pose.as_dict()) == {"yaw", "pitch", "roll", "rotation", "translation"}


def test_head_pose_sees_a_turned_head(test_faces):
    """Across real faces, yaw from the pose follows which way the nose points."""
    shapes = test_faces.shapes
    yaws = np.array([apps.head_pose(s, (288, 288)).yaw for s in shapes])
    nose_offset = (shapes[:, 30, 0] - shapes[:, [0, 16], 0].mean(axis=1)) / (shapes[:, 16, 0] - shapes[:, 0, 0])
    assert np.corrcoef(yaws, nose_offset)[0, 1] > 0.8


def test_drawing_keeps_the_input(face):
    image, shape = face
    drawn = apps.draw_landmarks(image, [shape], [tight_boxes(shape)])
    assert drawn.shape == image.shape and not np.array_equal(drawn, image)
    pose = apps.head_pose(shape, image.shape)
    assert apps.draw_pose(image, [shape], [pose]).shape == image.shape


@pytest.mark.parametrize("shapes, error", [
    ([np.zeros((5, 2))], ValueError),
    ([np.full((68, 2), np.nan)], ValueError),
])
def test_apps_refuse_bad_shapes(face, shapes, error):
    with pytest.raises(error):
        apps.blur_faces(face[0], shapes)


def test_apps_refuse_bad_settings(face):
    image, shape = face
    with pytest.raises(ValueError, match="strength"):
        apps.blur_faces(image, [shape], strength=float("nan"))
    with pytest.raises(ValueError, match="size"):
        apps.align_faces(image, [shape], size=100_000)
    with pytest.raises(ValueError, match="width"):
        apps.sunglasses(0)
    with pytest.raises(ValueError, match="image_shape"):
        apps.head_pose(shape, (0, 288))
    with pytest.raises(ValueError, match="focal_length"):
        apps.head_pose(shape, image.shape, focal_length=-5)


def test_overlay_partly_outside_and_wholly_outside_the_image(face):
    image, shape = face
    half_out = apps.overlay_on_faces(image, [shape - [150, 0]], apps.sunglasses())
    assert half_out.shape == image.shape and not np.array_equal(half_out, image)
    far = apps.overlay_on_faces(image, [shape + 10_000], apps.sunglasses())
    assert np.array_equal(far, image)


def test_points_and_boxes_far_off_the_image_are_drawn_without_overflow():
    """Found by the fuzz tests: OpenCV's int32 coordinates overflowed at 1e11."""
    points = np.full((1, 68, 2), 1e11)
    points[0, 0] = (20, 20)
    drawn = apps.draw_landmarks(np.zeros((50, 50), np.uint8), points, boxes=[[-1e12, -5, 1e12, 40]])
    assert drawn[20, 20].any() and drawn[40, 25].any()          # the point, the box's bottom edge
    assert not drawn[:5, 45:].any()                              # nothing from the far points

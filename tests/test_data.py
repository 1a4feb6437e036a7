import numpy as np
import pytest

from cascade import FaceSet, load_faces, read_csv, read_dlib_xml, read_pts, write_dlib_xml, write_pts
from cascade.data import LazyImages, read_image, write_csv


@pytest.mark.parametrize("folder, count", [("lfpw/trainset", 805), ("helen/trainset", 870),
                                           ("afw", 337), ("lfpw/testset", 224)])
def test_folder_counts(data_root, folder, count):
    faces = load_faces(data_root / folder, lazy=True)
    assert len(faces) == count
    assert faces.shapes.shape == (count, 68, 2)
    assert not np.isnan(faces.shapes).any()


def test_known_first_point_and_image(data_root):
    faces = load_faces(data_root / "lfpw" / "trainset", lazy=True)
    assert faces.names[0] == "image_0001"
    np.testing.assert_allclose(faces.shapes[0, 0], [72.0, 83.508])
    image = faces.images[0]
    assert image.dtype == np.uint8 and image.shape == (288, 288, 3)


def test_several_folders_eager_equals_lazy(data_root):
    folders = [data_root / "afw", data_root / "lfpw" / "testset"]
    lazy = load_faces(*folders, lazy=True)
    assert isinstance(lazy.images, LazyImages) and len(lazy) == 337 + 224
    eager = load_faces(*folders, grayscale=True).subset(np.arange(0, len(lazy), 97))
    lazy_grey = load_faces(*folders, lazy=True, grayscale=True).subset(np.arange(0, len(lazy), 97))
    assert isinstance(eager.images, list)
    for a, b in zip(eager.images, lazy_grey.images):
        assert a.ndim == 2 and np.array_equal(a, b)
    np.testing.assert_array_equal(eager.shapes, lazy.shapes[::97])


def test_pts_round_trip(tmp_path, rng):
    shape = rng.uniform(0, 300, (68, 2))
    write_pts(tmp_path / "a.pts", shape)
    np.testing.assert_allclose(read_pts(tmp_path / "a.pts"), shape, rtol=1e-9)
    text = (tmp_path / "a.pts").read_text().splitlines()
    assert text[:3] == ["version: 1", "n_points: 68", "{"] and text[-1] == "}"


@pytest.mark.parametrize("content, message", [
    ("", "not a .pts file"),
    ("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n", "n_points says 3 but 2"),
    ("version: 1\nn_points: 2\n{\n1 2\n3 x\n}\n", "expected two numbers"),
    ("version: 1\nn_points: 2\n{\n1 2\n3 4 5\n}\n", "expected two numbers"),
    ("version: 1\nn_points: two\n{\n}\n", "n_points"),
    ("version: 1\nn_points: 1\n1 2\n}\n", "enclosed"),
    ("version: 1\nn_points: 1\n{\n1 inf\n}\n", "infinite"),
])
def test_corrupt_pts(tmp_path, content, message):
    (tmp_path / "bad.pts").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_pts(tmp_path / "bad.pts")


def test_pts_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_pts(tmp_path / "missing.pts")
    write_pts(tmp_path / "a.pts", np.zeros((5, 2)))
    with pytest.raises(ValueError, match="expected 68"):
        read_pts(tmp_path / "a.pts", n_landmarks=68)
    with pytest.raises(ValueError, match="NaN"):
        write_pts(tmp_path / "b.pts", np.full((5, 2), np.nan))


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_faces(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no .pts"):
        load_faces(tmp_path)
    write_pts(tmp_path / "a.pts", np.ones((5, 2)))
    with pytest.raises(FileNotFoundError, match="no image beside"):
        load_faces(tmp_path)
    (tmp_path / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot decode"):
        load_faces(tmp_path)
    faces = load_faces(tmp_path, lazy=True)   # lazy: the error waits for the access
    with pytest.raises(ValueError, match="cannot decode"):
        faces.images[0]
    write_pts(tmp_path / "b.pts", np.ones((6, 2)))
    (tmp_path / "b.png").write_bytes(b"")
    with pytest.raises(ValueError, match="6 points, earlier files have 5"):
        load_faces(tmp_path, lazy=True)


def test_read_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "none.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="cannot decode"):
        read_image(tmp_path / "empty.png")


def test_photos_are_read_upright_and_in_eight_bit_bgr(tmp_path):
    """A JPEG's EXIF orientation is applied; alpha is dropped; 16 bits keep their high byte."""
    import cv2
    image_module = pytest.importorskip("PIL.Image")
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = 255                                       # the left half white
    photo = image_module.fromarray(pixels)
    exif = photo.getexif()
    exif[0x0112] = 6                                           # "rotate 90 degrees clockwise to view"
    photo.save(tmp_path / "turned.jpg", exif=exif)
    upright = read_image(tmp_path / "turned.jpg")
    assert upright.shape == (80, 40, 3)
    assert upright[:35].mean() > 200 and upright[45:].mean() < 50     # the white half is now on top
    deep = np.dstack([np.full((8, 8, 3), 40000, np.uint16), np.full((8, 8), 65535, np.uint16)])
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert (read_image(tmp_path / "deep.png") == 40000 >> 8).all()


def test_faceset_checks_lengths():
    with pytest.raises(ValueError, match="one image and one name per shape"):
        FaceSet([np.zeros((4, 4), np.uint8)], np.zeros((2, 5, 2)), ["a", "b"])
    faces = FaceSet([np.zeros((4, 4), np.uint8)] * 2, np.arange(20.0).reshape(2, 5, 2), ["a", "b"])
    np.testing.assert_array_equal(faces.face_boxes()[1], [10, 11, 18, 19])
    assert faces.subset([1]).names == ["b"]


def test_dlib_xml_round_trip(tmp_path, test_faces):
    faces = test_faces.subset(slice(0, 3))
    paths = list(faces.images.paths)
    shapes = faces.shapes.copy()
    shapes[1, 5] = np.nan                                  # a missing part
    paths[2] = paths[1]                                    # two faces in one image
    boxes = np.array([[10, 20, 109, 139], [0, 0, 50, 60], [5, 6, 70, 80]], dtype=float)
    write_dlib_xml(tmp_path / "faces.xml", paths, shapes, boxes)
    loaded = read_dlib_xml(tmp_path / "faces.xml", lazy=True)
    assert len(loaded) == 3
    np.testing.assert_array_equal(loaded.shapes, np.round(shapes))      # dlib keeps whole pixels
    assert np.isnan(loaded.shapes[1, 5]).all()
    np.testing.assert_array_equal(loaded.boxes, boxes)
    assert loaded.images.paths[1].resolve() == loaded.images.paths[2].resolve()
    assert "width='100'" in (tmp_path / "faces.xml").read_text().replace('"', "'")


def test_dlib_xml_hand_written(tmp_path, test_faces):
    image = test_faces.images.paths[0]
    (tmp_path / "x.xml").write_text(f"""<?xml version='1.0'?>
<dataset><images>
  <image file='{image}'>
    <box top='10' left='20' width='100' height='120'>
      <part name='0' x='30' y='40'/><part name='2' x='50' y='60'/>
    </box>
    <box top='1' left='1' width='5' height='5' ignore='1'/>
  </image>
</images></dataset>""")
    faces = read_dlib_xml(tmp_path / "x.xml")
    assert len(faces) == 1 and faces.images[0].shape == (288, 288, 3)
    np.testing.assert_array_equal(faces.boxes, [[20, 10, 119, 129]])
    np.testing.assert_array_equal(faces.shapes[0], [[30, 40], [np.nan, np.nan], [50, 60]])


@pytest.mark.parametrize("content, message", [
    ("<dataset><images>", "not well-formed"),
    ("<dataset><images><image file='a.jpg'><box top='1' left='x' width='3' height='3'/>"
     "</image></images></dataset>", "numeric"),
    ("<dataset><images></images></dataset>", "no boxes"),
])
def test_dlib_xml_errors(tmp_path, content, message):
    (tmp_path / "x.xml").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_dlib_xml(tmp_path / "x.xml", lazy=True)


def test_csv_round_trip_with_missing(tmp_path, test_faces):
    faces = test_faces.subset(slice(0, 2))
    shapes = faces.shapes.copy()
    shapes[0, 3] = np.nan
    write_csv(tmp_path / "faces.csv", faces.images.paths, shapes)
    loaded = read_csv(tmp_path / "faces.csv")
    np.testing.assert_allclose(loaded.shapes, shapes, rtol=1e-9)
    assert loaded.images[1].shape == (288, 288, 3)


def test_csv_without_header_and_errors(tmp_path, test_faces):
    image = test_faces.images.paths[0]
    (tmp_path / "a.csv").write_text(f"{image},1,2,,\n{image},5,6,7,8\n")
    faces = read_csv(tmp_path / "a.csv", lazy=True)
    np.testing.assert_array_equal(faces.shapes, [[[1, 2], [np.nan, np.nan]], [[5, 6], [7, 8]]])
    (tmp_path / "b.csv").write_text(f"{image},1,2,3\n")
    with pytest.raises(ValueError, match="x,y pairs"):
        read_csv(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text(f"image,x0,y0\n{image},1,oops\n")
    with pytest.raises(ValueError, match="not a number"):
        read_csv(tmp_path / "c.csv")
    (tmp_path / "d.csv").write_text(f"{image},1,2\n{image},1,2,3,4\n")
    with pytest.raises(ValueError, match="columns"):
        read_csv(tmp_path / "d.csv")
    (tmp_path / "e.csv").write_text(f"{image},1,\n")
    with pytest.raises(ValueError, match="only one coordinate"):
        read_csv(tmp_path / "e.csv")

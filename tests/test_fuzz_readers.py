"""Property-based checks of the file readers (.pts, dlib XML, CSV, images, dlib's .dat
models) on damaged files: a correct result or a clear ValueError, never a crash, a hang or
a huge allocation."""
import cv2
import numpy as np
import pytest
from fuzzing import FUZZ
from hypothesis import given
from hypothesis import strategies as st
from test_dlib_format import tiny_dlib_model

from cascade import ERT, read_csv, read_dlib_xml, read_pts, write_dlib_xml, write_pts
from cascade.data import read_image, write_csv

#: Text a damaged annotation file might hold in place of a token.
ODD_TOKENS = st.sampled_from(["", " ", "\x00", "nan", "inf", "-1", "1e309", "99999999999", "x", "{", "}",
                              "<", ">", "&amp;", "\"", ",", "\n", "é", "\ufffd", "0x10", "1_0"])


@st.composite
def damaged_text(draw, text):
    """``text`` with a few tokens put in, cut off, or lines repeated or dropped."""
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["insert", "replace", "truncate", "repeat line", "drop line"]))
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        if kind == "insert":
            text = text[:at] + draw(ODD_TOKENS) + text[at:]
        elif kind == "replace":
            text = text[:at] + draw(ODD_TOKENS) + text[at + draw(st.integers(1, 8)):]
        elif kind == "truncate":
            text = text[:at]
        elif lines:
            line = draw(st.integers(0, len(lines) - 1))
            lines = lines[:line + 1] + lines[line:] if kind == "repeat line" else lines[:line] + lines[line + 1:]
            text = "".join(lines)
    return text


def read_or_refuse(reader, *args, **kwargs):
    """``reader(*args)``, or None where it refused with a ValueError."""
    try:
        return reader(*args, **kwargs)
    except ValueError:
        return None


@pytest.fixture(scope="module")
def originals(tmp_path_factory, test_faces):
    """A valid .pts, dlib XML and CSV of three faces, and the image they point to."""
    folder = tmp_path_factory.mktemp("originals")
    image = folder / "face.png"
    cv2.imwrite(str(image), test_faces.images[0])
    shapes = test_faces.shapes[:3]
    write_pts(folder / "face.pts", shapes[0])
    write_dlib_xml(folder / "faces.xml", [image] * 3, shapes)
    write_csv(folder / "faces.csv", [image] * 3, shapes)
    return {name: (folder / name).read_text() for name in ("face.pts", "faces.xml", "faces.csv")}, image


@FUZZ
@given(data=st.data())
def test_damaged_pts(originals, tmp_path, data):
    texts, _ = originals
    path = tmp_path / "face.pts"
    path.write_text(data.draw(damaged_text(texts["face.pts"])), errors="surrogateescape")
    points = read_or_refuse(read_pts, path)
    if points is not None:
        assert points.ndim == 2 and points.shape[1] == 2 and not np.isinf(points).any()


@FUZZ
@given(data=st.data(), reader=st.sampled_from(["faces.xml", "faces.csv"]))
def test_damaged_face_lists(originals, tmp_path, data, reader):
    texts, image = originals
    path = tmp_path / reader
    path.write_text(data.draw(damaged_text(texts[reader])), errors="surrogateescape")
    (tmp_path / image.name).write_bytes(image.read_bytes())
    faces = read_or_refuse(read_dlib_xml if reader == "faces.xml" else read_csv, path, lazy=True)
    if faces is not None:
        assert faces.shapes.ndim == 3 and len(faces.images) == len(faces.shapes) > 0
        assert faces.n_landmarks <= 10_000 and np.isfinite(faces.face_boxes()).all()


def test_a_huge_part_number_is_refused_before_allocating(tmp_path):
    (tmp_path / "faces.xml").write_text(
        '<dataset><images><image file="a.png"><box top="1" left="1" width="9" height="9">'
        '<part name="999999999999" x="3" y="4"/></box></image></images></dataset>')
    with pytest.raises(ValueError, match="part"):
        read_dlib_xml(tmp_path / "faces.xml", lazy=True)


@FUZZ
@given(data=st.data(), grayscale=st.booleans())
def test_damaged_images(originals, tmp_path, data, grayscale):
    _, image = originals
    original = bytearray(image.read_bytes())
    at = data.draw(st.integers(0, len(original) - 1))
    kind = data.draw(st.sampled_from(["truncate", "overwrite", "header"]))
    if kind == "truncate":
        damaged = original[:at]
    else:
        at = data.draw(st.integers(0, 40)) if kind == "header" else at
        fill = data.draw(st.binary(min_size=1, max_size=16))
        damaged = original[:at] + fill + original[at + len(fill):]
    path = tmp_path / "damaged.png"
    path.write_bytes(bytes(damaged))
    decoded = read_or_refuse(read_image, path, grayscale=grayscale)
    if decoded is not None:
        assert decoded.dtype == np.uint8 and decoded.ndim == (2 if grayscale else 3) and decoded.size


@FUZZ
@given(data=st.data())
def test_damaged_dlib_models(tmp_path, data):
    _, original = tiny_dlib_model(np.random.default_rng(data.draw(st.integers(0, 99))))
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        kind = data.draw(st.sampled_from(["truncate", "flip", "overwrite"]))
        if kind == "truncate":
            damaged = damaged[:at] or bytearray(b"\x01")
        elif kind == "flip":
            damaged[at] ^= 1 << data.draw(st.integers(0, 7))
        else:
            damaged[at] = data.draw(st.sampled_from([0x00, 0x08, 0x09, 0x88, 0xff]))
    path = tmp_path / "damaged.dat"
    path.write_bytes(bytes(damaged))
    model = read_or_refuse(ERT.from_dlib, path)
    if model is not None:
        image = np.zeros((40, 40), np.uint8)
        predicted = read_or_refuse(model.predict, [image], [[5, 5, 30, 30]])
        assert predicted is None or np.isfinite(predicted).all()

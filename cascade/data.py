"""Landmark data on disk: 300-W ``.pts`` files, dlib's XML, CSV, and the ``FaceSet`` they load into.

A :class:`FaceSet` is one face per item: its image, its ``(L, 2)`` shape and a
name, plus an optional box per face (dlib's XML carries boxes; otherwise the
tight box of the shape is used). Images load eagerly, decoded on a few threads,
or lazily, decoded on each access, which keeps a large set out of memory.
"""
import csv
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .image_header import DEFAULT_MAX_PIXELS, declared_size
from .shapes import tight_boxes
from .validation import check_boxes, check_image, check_shapes

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: More landmarks than any scheme has (194 at most in use): a larger point number in a file
#: is damage, refused before an array that size is made.
MAX_LANDMARKS = 10_000
#: The sample photo that ships with the package (public domain; ``cascade/samples/README.md``).
SAMPLE_PHOTO = Path(__file__).parent / "samples" / "astronaut.png"
#: The training folders of the project's shared 300-W data (``../shared/data/300w``);
#: its ``lfpw/testset`` is for reporting only.
SHARED_300W_TRAIN = ("lfpw/trainset", "helen/trainset", "afw")


def read_image(path, grayscale=False, max_pixels=DEFAULT_MAX_PIXELS, unchanged=False):
    """Read an image file as uint8 BGR (or grey); clear errors for missing or corrupt files.

    As OpenCV decodes it: an alpha channel is dropped, 16-bit samples keep their high
    byte, and a JPEG's EXIF orientation is applied (the pixels come upright, as a
    photo viewer shows them, and the landmarks are in those pixels). The file's bytes are
    read by NumPy, never by OpenCV from a path (OpenCV crashes on a file name that is not
    valid UTF-8). An image whose header declares more than ``max_pixels`` pixels is refused
    before it is decoded (:func:`decode_image`). ``unchanged``: as the file stores it instead
    (an alpha channel and 16-bit samples kept; an overlay's transparency, say).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {display_name(path)}")
    return decode_image(np.fromfile(path, dtype=np.uint8), display_name(path), grayscale, max_pixels, unchanged)


def decode_image(encoded, name, grayscale=False, max_pixels=DEFAULT_MAX_PIXELS, unchanged=False):
    """Decode an image file's bytes (``bytes`` or a uint8 array) as :func:`read_image` reads a file;
    ``name`` names it in errors.

    ``ValueError`` for bytes that are empty or not an image, and, before any decoding, for an
    image whose header (:mod:`cascade.image_header`) declares more than ``max_pixels`` pixels
    (None: no limit of this package's; formats whose header it does not read, such as JPEG 2000,
    are decoded under OpenCV's own limit of 2^30 pixels).
    """
    buffer = np.frombuffer(encoded, dtype=np.uint8)
    if max_pixels is not None:
        size = declared_size(buffer)
        if size is not None and size[0] * size[1] > max_pixels:
            raise ValueError(f"{name} declares {size[0]} x {size[1]} pixels, above the limit of {max_pixels:,} "
                             "(max_pixels): refused before decoding")
    flag = cv2.IMREAD_UNCHANGED if unchanged else cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    try:
        image = cv2.imdecode(buffer, flag) if buffer.size else None
    except cv2.error:           # OpenCV's own size limit, or a decoder that gave up
        image = None
    if image is None:
        raise ValueError(f"cannot decode {name}: {_why_undecodable(buffer, flag)}")
    return image


def _why_undecodable(buffer, flag):
    """Why OpenCV gave no image: samples of a type it reads but does not convert to 8 bits (a float
    TIFF), or bytes that are no image at all."""
    if buffer.size and flag != cv2.IMREAD_UNCHANGED:
        try:
            stored = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
        except cv2.error:
            stored = None
        if stored is not None and stored.dtype not in (np.uint8, np.uint16):
            return (f"its samples are {stored.dtype}, which cascade does not read (8 or 16-bit integer "
                    "samples only): save it with 8-bit samples")
    return "empty, corrupt or not an image"


def image_files(folder, recursive=True):
    """The image files (by :data:`IMAGE_SUFFIXES`) in ``folder``, and in its subfolders when
    ``recursive``, sorted; ValueError when there are none."""
    folder = Path(folder)
    files = sorted(p for p in (folder.rglob("*") if recursive else folder.iterdir())
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"no images in {display_name(folder)} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}"
                         f"{', in its subfolders too' if recursive else ''})")
    return files


def sample_photo():
    """The 512 x 512 BGR photo of the astronaut Eileen Collins that ships with the package (NASA,
    public domain): one frontal face, for trying things out."""
    return read_image(SAMPLE_PHOTO)


def display_name(path):
    """``path`` as text that can be printed and written as UTF-8: bytes of a file name that are not
    valid UTF-8 (which Python keeps as lone surrogates) shown as ``\\xNN`` escapes."""
    text = os.fspath(path)
    return text if is_utf8_name(text) else os.fsencode(text).decode("utf-8", "backslashreplace")


def is_utf8_name(path):
    """Whether ``path`` is valid UTF-8 (Python keeps the other bytes a file name may hold as lone
    surrogates, which OpenCV crashes on)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: The channel orders a colour array may come in: OpenCV's (the package's own) or PIL's, matplotlib's...
COLORS = ("bgr", "rgb")


def check_color(color):
    """``color`` if it is one of :data:`COLORS`, else a ValueError naming them."""
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
    return color


def as_photo(image, color="bgr"):
    """``image`` as the uint8 grey or BGR array the package works on.

    ``image`` is an array, a path (``str`` or ``os.PathLike``, read by :func:`read_image`) or a
    PIL image (converted by its mode). An array's colour channels are in the order ``color``
    says: "bgr" (OpenCV's) or "rgb" (PIL's, matplotlib's, scikit-image's); a path and a PIL image
    know their own. The array layouts a photo comes in are converted: HxWx1 (grey), HxWx2 (grey +
    alpha) and HxWx4 (BGRA or RGBA) drop their alpha, uint16 keeps the high byte (as OpenCV's
    reader does). The image itself when it needs nothing; otherwise one copy. Anything else
    (float, other channel counts, empty) is refused by :func:`cascade.validation.check_image`.
    """
    check_color(color)
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if type(image).__module__.startswith("PIL.") and hasattr(image, "convert"):
        if image.mode in ("I;16", "I", "F"):         # wider samples, as they are: 16 bits read, others refused
            image = np.asarray(image)
        else:
            image, color = np.asarray(image.convert("L" if image.mode in ("1", "L", "LA") else "RGB")), "rgb"
    if not isinstance(image, np.ndarray) or image.size == 0:
        return check_image(image)                    # the clear error
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] in (1, 2):
        image = np.ascontiguousarray(image[..., 0])
    elif image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] in (3, 4):
        conversions = {(3, "rgb"): cv2.COLOR_RGB2BGR, (4, "rgb"): cv2.COLOR_RGBA2BGR, (4, "bgr"): cv2.COLOR_BGRA2BGR}
        conversion = conversions.get((image.shape[2], color))
        image = image if conversion is None else cv2.cvtColor(image, conversion)
    return check_image(image)


class LazyImages(Sequence):
    """A sequence of image files decoded on access; slicing gives another ``LazyImages``."""

    def __init__(self, paths, grayscale=False):
        self.paths = [Path(p) for p in paths]
        self.grayscale = grayscale

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return LazyImages(self.paths[index], self.grayscale)
        return read_image(self.paths[index], self.grayscale)

    def load(self, n_threads=4):
        """Decode every image now (OpenCV releases the GIL, so threads help)."""
        with ThreadPoolExecutor(n_threads) as pool:
            return list(pool.map(lambda p: read_image(p, self.grayscale), self.paths))


@dataclass
class FaceSet:
    """Faces with their landmarks: ``images[i]`` shows the face whose points are ``shapes[i]``.

    images: sequence of uint8 images (a list, or :class:`LazyImages`)
    shapes: ``(n, L, 2)`` float array, pixels, NaN for missing points
    names:  ``n`` strings identifying the faces
    boxes:  ``(n, 4)`` face boxes, or None for the tight boxes of the shapes
    """

    images: Sequence
    shapes: np.ndarray
    names: list
    boxes: np.ndarray = None

    def __post_init__(self):
        self.shapes = check_shapes(self.shapes)
        n = len(self.shapes)
        if len(self.images) != n or len(self.names) != n:
            raise ValueError(f"FaceSet needs one image and one name per shape: got "
                             f"{len(self.images)} images, {len(self.names)} names, {n} shapes")
        if self.boxes is not None:
            self.boxes = check_boxes(self.boxes, n)

    def __len__(self):
        return len(self.shapes)

    @property
    def n_landmarks(self):
        """How many landmarks each face has."""
        return self.shapes.shape[1]

    def face_boxes(self):
        """The given boxes, or the tight boxes of the shapes when none were given."""
        return tight_boxes(self.shapes) if self.boxes is None else self.boxes

    def subset(self, indices):
        """The faces at ``indices`` (an index array, a boolean mask or a slice)."""
        selected = np.arange(len(self))[indices]
        if isinstance(self.images, LazyImages):
            images = LazyImages([self.images.paths[i] for i in selected], self.images.grayscale)
        else:
            images = [self.images[i] for i in selected]
        return FaceSet(images, self.shapes[selected], [self.names[i] for i in selected],
                       None if self.boxes is None else self.boxes[selected])


def read_pts(path, n_landmarks=None):
    """Read a 300-W ``.pts`` file into an ``(L, 2)`` float array (coordinates as written)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .pts file at {path}")
    lines = [(number, line.strip()) for number, line in
             enumerate(path.read_text(errors="replace").splitlines(), 1) if line.strip()]

    def fail(number, why):
        raise ValueError(f"{path}:{number}: {why}")

    if len(lines) < 3 or not lines[0][1].startswith("version:"):
        fail(lines[0][0] if lines else 1, "not a .pts file (expected 'version:', 'n_points:', '{')")
    number, header = lines[1]
    key, _, count = header.partition(":")
    if key.strip() != "n_points" or not count.strip().isdigit():
        fail(number, f"expected 'n_points: N', got {header!r}")
    count = int(count)
    if lines[2][1] != "{" or lines[-1][1] != "}":
        fail(lines[2][0], "point list must be enclosed in '{' and '}'")
    body = lines[3:-1]
    if len(body) != count:
        fail(lines[1][0], f"n_points says {count} but {len(body)} points follow")
    if count > MAX_LANDMARKS:
        fail(lines[1][0], f"{count} points is more than {MAX_LANDMARKS}")
    if n_landmarks is not None and count != n_landmarks:
        fail(lines[1][0], f"has {count} points, expected {n_landmarks}")
    points = np.empty((count, 2))
    for i, (number, line) in enumerate(body):
        values = line.split()
        try:
            points[i] = [float(v) for v in values]
        except ValueError:
            fail(number, f"expected two numbers 'x y', got {line!r}")
    if np.isinf(points).any():
        fail(lines[1][0], "infinite coordinate")
    return points


def write_pts(path, shape):
    """Write an ``(L, 2)`` shape as a 300-W ``.pts`` file (no missing points allowed)."""
    shape = check_shapes(np.asarray(shape)[None], allow_nan=False)[0]
    rows = "".join(f"{x:.10g} {y:.10g}\n" for x, y in shape)
    Path(path).write_text(f"version: 1\nn_points: {len(shape)}\n{{\n{rows}}}\n")


def load_faces(*folders, lazy=False, grayscale=False, recursive=True):
    """Load every image + ``.pts`` pair under one or more folders into one :class:`FaceSet`.

    A ``NAME.pts`` pairs with the image ``NAME.<jpg|png|...>`` beside it. Names
    are the paths relative to their folder, without suffix. ``lazy`` defers
    decoding to each access; otherwise images are decoded now, on a few threads.
    """
    if not folders:
        raise ValueError("load_faces needs at least one folder")
    names, image_paths, shapes = [], [], []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise FileNotFoundError(f"no folder at {folder}")
        pts_files = sorted(folder.rglob("*.pts") if recursive else folder.glob("*.pts"))
        if not pts_files:
            raise ValueError(f"no .pts files under {folder}")
        for pts in pts_files:
            image = next((pts.with_suffix(s) for s in IMAGE_SUFFIXES if pts.with_suffix(s).is_file()),
                         None)
            if image is None:
                raise FileNotFoundError(f"no image beside {pts} (looked for {', '.join(IMAGE_SUFFIXES)})")
            shape = read_pts(pts)
            if shapes and len(shape) != len(shapes[0]):
                raise ValueError(f"{pts} has {len(shape)} points, earlier files have {len(shapes[0])}")
            names.append(pts.relative_to(folder).with_suffix("").as_posix())
            image_paths.append(image)
            shapes.append(shape)
    return _faceset(image_paths, np.array(shapes), names, None, lazy, grayscale)


def read_dlib_xml(path, lazy=False, grayscale=False):
    """Load dlib's imglab XML (``images/image/box/part``); one face per box, boxes kept.

    dlib's integer rectangles are inclusive, so ``right = left + width - 1``.
    Boxes marked ``ignore`` are skipped; a part that is absent is NaN.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no XML file at {path}")
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise ValueError(f"{path}: not well-formed XML ({error})") from None
    faces = []
    for image in root.iter("image"):
        file = image.get("file")
        if file is None:
            raise ValueError(f"{path}: <image> without a file attribute")
        for box in image.iter("box"):
            if box.get("ignore", "0") not in ("0", "false"):
                continue
            try:
                left, top, width, height = (float(box.get(k)) for k in ("left", "top", "width", "height"))
                parts = {int(p.get("name")): (float(p.get("x")), float(p.get("y")))
                         for p in box.iter("part")}
            except (TypeError, ValueError):
                raise ValueError(f"{path}: box or part in {file} lacks a numeric attribute") from None
            if any(not 0 <= index < MAX_LANDMARKS for index in parts):
                raise ValueError(f"{path}: part name in {file} outside [0, {MAX_LANDMARKS})")
            faces.append((path.parent / file, (left, top, left + width - 1, top + height - 1), parts))
    if not faces:
        raise ValueError(f"{path}: no boxes with landmarks")
    n_landmarks = 1 + max((max(parts, default=-1) for _, _, parts in faces), default=-1)
    if n_landmarks == 0:
        raise ValueError(f"{path}: no <part> elements")
    shapes = np.full((len(faces), n_landmarks, 2), np.nan)
    for shape, (_, _, parts) in zip(shapes, faces):
        for index, point in parts.items():
            shape[index] = point
    names = [f"{Path(file).with_suffix('').as_posix()}#{i}" for i, (file, _, _) in enumerate(faces)]
    return _faceset([file for file, _, _ in faces], shapes, names,
                    np.array([box for _, box, _ in faces]), lazy, grayscale)


def write_dlib_xml(path, image_paths, shapes, boxes=None):
    """Write faces as dlib imglab XML, the training input of dlib's ``shape_predictor``.

    ``image_paths`` has one entry per face (repeat a path for several faces in
    one image); paths are written relative to the XML's folder. Boxes default to
    the tight boxes and are rounded to dlib's inclusive integer rectangles; points
    are rounded to whole pixels too, since dlib reads only integer coordinates.
    """
    shapes = check_shapes(shapes)
    boxes = tight_boxes(shapes) if boxes is None else check_boxes(boxes, len(shapes))
    if len(image_paths) != len(shapes):
        raise ValueError(f"{len(image_paths)} image paths for {len(shapes)} shapes")
    path = Path(path)
    root = ElementTree.Element("dataset")
    images = ElementTree.SubElement(root, "images")
    elements = {}
    for file, shape, (left, top, right, bottom) in zip(image_paths, shapes, boxes):
        file = _relative_path(file, path.parent)
        if file not in elements:
            elements[file] = ElementTree.SubElement(images, "image", file=file)
        x0, y0 = round(left), round(top)
        box = ElementTree.SubElement(elements[file], "box", top=str(y0), left=str(x0),
                                     width=str(round(right) - x0 + 1), height=str(round(bottom) - y0 + 1))
        width = len(str(len(shape) - 1))
        for index, (x, y) in enumerate(shape):
            if not np.isnan(x):
                ElementTree.SubElement(box, "part", name=f"{index:0{width}d}", x=str(round(x)), y=str(round(y)))
    ElementTree.indent(root)
    ElementTree.ElementTree(root).write(path, encoding="unicode", xml_declaration=True)


def read_csv(path, lazy=False, grayscale=False):
    """Load a CSV of ``image_path, x0, y0, x1, y1, ...`` rows; an empty cell is a missing point.

    A first row whose coordinates are not numbers is taken as a header. Image
    paths are relative to the CSV's folder unless absolute.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no CSV file at {path}")
    with open(path, newline="") as file:
        rows = [row for row in csv.reader(file) if any(cell.strip() for cell in row)]
    if rows and not _is_number_row(rows[0][1:]):
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{path}: no data rows")
    n_columns = len(rows[0])
    if n_columns < 3 or (n_columns - 1) % 2:
        raise ValueError(f"{path}: expected an image column then x,y pairs, got {n_columns} columns")
    shapes = np.empty((len(rows), (n_columns - 1) // 2, 2))
    for i, row in enumerate(rows):
        if len(row) != n_columns:
            raise ValueError(f"{path}: row {i + 1} has {len(row)} columns, expected {n_columns}")
        try:
            shapes[i] = np.array([float(c) if c.strip() else np.nan for c in row[1:]]).reshape(-1, 2)
        except ValueError:
            raise ValueError(f"{path}: row {i + 1} has a cell that is not a number") from None
    image_paths = [path.parent / row[0].strip() for row in rows]
    names = [f"{Path(row[0].strip()).with_suffix('').as_posix()}#{i}" for i, row in enumerate(rows)]
    return _faceset(image_paths, shapes, names, None, lazy, grayscale)


def write_csv(path, image_paths, shapes):
    """Write faces as a CSV readable by :func:`read_csv` (missing points as empty cells)."""
    shapes = check_shapes(shapes)
    if len(image_paths) != len(shapes):
        raise ValueError(f"{len(image_paths)} image paths for {len(shapes)} shapes")
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["image"] + [f"{axis}{i}" for i in range(shapes.shape[1]) for axis in "xy"])
        for image, shape in zip(image_paths, shapes):
            cells = ["" if np.isnan(v) else f"{v:.10g}" for v in shape.ravel()]
            writer.writerow([_relative_path(image, Path(path).parent)] + cells)


def _relative_path(file, folder):
    return Path(os.path.relpath(Path(file).resolve(), Path(folder).resolve())).as_posix()


def _is_number_row(cells):
    try:
        [float(c) for c in cells if c.strip()]
    except ValueError:
        return False
    return True


def _faceset(image_paths, shapes, names, boxes, lazy, grayscale):
    images = LazyImages(image_paths, grayscale)
    return FaceSet(images if lazy else images.load(), shapes, names, boxes)

"""Where results are written: one overwrite rule, checked before any work, and paths OpenCV cannot take.

The rule every writer of the package follows (the ``cascade`` commands, the corpus):

- an input is never written over (the same file, under any name or link);
- an output that exists already is replaced only when the caller says so (``--overwrite``);
- every output is checked before any work: its folder must exist or be creatable, and
  writable (a file is created there and removed), so that a long run cannot end in
  "cannot write" with nothing saved;
- a file appears whole or not at all: written under a temporary name beside it, then renamed.

OpenCV crashes on a path that is not valid UTF-8 (a Linux file name may hold any
bytes, which Python keeps as lone surrogates): images are read and written as bytes
through NumPy (:func:`write_image`, :func:`cascade.data.read_image`), and a video,
which OpenCV must open by name, through a link or a temporary file with a plain name
(:func:`opencv_input`, :func:`opencv_output`).
"""
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import cv2

from .data import display_name, is_utf8_name


def check_outputs(outputs, inputs=(), overwrite=False):
    """Refuse, with a ``ValueError`` naming the file, outputs that break the module's rule: one that
    is an input, one named twice, one that exists (unless ``overwrite``), or one whose folder cannot
    be written. ``outputs`` and ``inputs`` are paths (None items are skipped)."""
    inputs = [Path(p) for p in inputs if p is not None]
    seen = {}
    for output in (Path(p) for p in outputs if p is not None):
        for source in inputs:
            if _same_file(output, source):
                raise ValueError(f"{display_name(output)} is an input: an input is never written over "
                                 "(give another output)")
        key = os.path.realpath(output)
        if key in seen:
            raise ValueError(f"{display_name(output)} is named as two outputs ({seen[key]} and it)")
        seen[key] = display_name(output)
        if output.is_dir():
            raise ValueError(f"{display_name(output)} is a folder, not a file")
        if output.exists() and not overwrite:
            raise ValueError(f"{display_name(output)} exists: pass --overwrite to replace it")
        check_writable_folder(output.parent)


def check_writable_folder(folder):
    """Refuse a folder that cannot hold new files: its nearest existing ancestor is a file, or a file
    cannot be created there (permissions, a read-only file system). Creates nothing that stays."""
    folder = Path(os.path.abspath(folder))
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot write in {display_name(folder)}: {display_name(existing)} is a file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f"cannot write in {display_name(folder)}: {error.strerror or error}") from None


def _same_file(a, b):
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)           # hard links
    except OSError:
        return False


def write_atomically(path, data):
    """Write ``data`` (bytes) at ``path`` whole or not at all: under a temporary name beside it, then
    renamed over it. The folder is created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_image(path, image):
    """Encode ``image`` in the format of ``path``'s suffix and write it (atomically, any file name)."""
    suffix = Path(path).suffix.lower()
    try:
        ok, encoded = cv2.imencode(suffix, image)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f"cannot encode an image as {suffix or 'a file without a suffix'} for "
                         f"{display_name(path)}")
    write_atomically(path, encoded.tobytes())


@contextmanager
def opencv_input(path):
    """A name under which OpenCV can open the file ``path``: itself, or a link to it with a plain name
    in a temporary folder (removed on exit)."""
    if is_utf8_name(path):
        yield str(path)
        return
    folder = tempfile.mkdtemp(prefix="cascade-")
    try:
        link = os.path.join(folder, "input" + "".join(c for c in Path(path).suffix if c.isascii()))
        os.symlink(os.path.abspath(path), link)
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def opencv_output(path):
    """A plain temporary name for OpenCV to write, beside ``path`` (or in the temporary folder where
    ``path``'s own folder is no valid UTF-8); moved to ``path`` when the block ends without an error,
    removed otherwise, so that ``path`` is never left half written."""
    path = Path(path)
    suffix = "".join(c for c in path.suffix if c.isascii())
    folder = path.parent if is_utf8_name(os.path.abspath(path.parent)) else Path(tempfile.gettempdir())
    temporary = folder / f".cascade-{uuid.uuid4().hex}{suffix}"
    try:
        yield str(temporary)
        shutil.move(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)

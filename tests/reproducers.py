"""Hostile inputs, made small on the fly: files that declare far more than they hold.

Each maker returns the bytes of a file a user could meet (or an attacker send); none is
committed, and none costs more than a few kilobytes to make.
"""
import struct
import zlib

import cv2
import numpy as np


def jpeg_declaring(width, height):
    """A real 16 x 16 JPEG whose frame header declares ``width`` x ``height`` (at most 65535 each):
    a decoder that trusts it allocates the declared size (a decompression bomb)."""
    ok, encoded = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))
    data = bytearray(encoded.tobytes())
    frame = data.index(b"\xff\xc0")
    data[frame + 5:frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_declaring(width, height):
    """A grey PNG declaring ``width`` x ``height`` whose data is one compressed row of zeros."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
            + chunk(b"IEND", b""))


def encoded(image, suffix=".png"):
    """``image`` encoded as a file's bytes."""
    ok, data = cv2.imencode(suffix, image)
    assert ok
    return data.tobytes()


#: A file name that is not valid UTF-8 (bytes a Linux file name may hold), as Python spells it.
BAD_NAME = b"bad\xff.jpg".decode("utf-8", "surrogateescape")

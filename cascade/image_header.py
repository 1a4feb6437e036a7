"""The pixel size an image file declares, read from its header before anything is decoded.

A decoder allocates what the header declares: a 2 KB JPEG can declare 30000 x 30000
pixels and cost gigabytes to decode (a decompression bomb). :func:`declared_size`
reads the width and height from the first bytes of the formats the package reads
(JPEG, PNG, BMP, TIFF and BigTIFF, WebP, PNM), so that
:func:`cascade.data.decode_image` can refuse an image above a pixel limit before
OpenCV allocates it. Only the header is trusted to be well formed enough to say a
size; a damaged one gives None, and the decoder then refuses the file as usual.
"""
import struct

#: The default limit of :func:`cascade.data.decode_image`: 250 million pixels, more than any
#: camera's photo (a 200 MP phone photo, a 150 MP medium-format one) and 750 MB decoded in colour.
DEFAULT_MAX_PIXELS = 250_000_000

# JPEG's start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_JPEG_FRAMES = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# JPEG markers that stand alone, without a length: TEM, RST0-7, SOI, EOI.
_JPEG_LONE = {0x01, *range(0xD0, 0xDA)}


def declared_size(data):
    """``(width, height)`` as the header of an encoded image (bytes-like) declares them, or None
    for a format not listed in the module's docstring or a header too damaged to say."""
    data = memoryview(data).cast("B")
    try:
        for magic, reader in _READERS:
            if bytes(data[:len(magic)]) == magic:
                return reader(data)
        if len(data) > 2 and data[0] == ord("P") and chr(data[1]) in "123456":
            return _pnm(data)
    except (struct.error, IndexError, ValueError):
        pass
    return None


def _jpeg(data):
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:                  # fill bytes before a marker
            position += 1
            continue
        if marker in _JPEG_LONE:
            position += 2
            continue
        length, = struct.unpack_from(">H", data, position + 2)
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack_from(">HH", data, position + 5)
            return width, height
        if length < 2:
            return None
        position += 2 + length
    return None


def _png(data):
    if bytes(data[12:16]) != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", data, 16)
    return width, height


def _bmp(data):
    header_size, = struct.unpack_from("<I", data, 14)
    if header_size == 12:                   # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack_from("<HH", data, 18)
    width, height = struct.unpack_from("<ii", data, 18)
    return abs(width), abs(height)          # a negative height: rows stored top-down


def _tiff(data):
    order = "<" if bytes(data[:2]) == b"II" else ">"
    version, = struct.unpack_from(order + "H", data, 2)
    big = version == 43
    if version not in (42, 43):
        return None
    # The first image file directory: its entries (tag, type, count, value) hold the size.
    offset, = struct.unpack_from(order + ("Q" if big else "I"), data, 8 if big else 4)
    count, = struct.unpack_from(order + ("Q" if big else "H"), data, offset)
    entry_size, first = (20, offset + 8) if big else (12, offset + 2)
    size = {}
    for k in range(min(count, 4096)):
        entry = first + k * entry_size
        tag, kind = struct.unpack_from(order + "HH", data, entry)
        if tag in (256, 257):               # ImageWidth, ImageLength: SHORT or LONG (or LONG8)
            value_at = entry + (12 if big else 8)
            code = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if code is None:
                return None
            size[tag], = struct.unpack_from(order + code, data, value_at)
    return (size[256], size[257]) if len(size) == 2 else None


def _webp(data):
    if bytes(data[8:12]) != b"WEBP":
        return None
    chunk = bytes(data[12:16])
    if chunk == b"VP8 ":                    # lossy: 14-bit sizes after the frame's start code
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":                    # lossless: 14-bit sizes minus one, packed
        bits, = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":                    # extended: 24-bit canvas sizes minus one
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def _pnm(data):
    """PBM, PGM, PPM (P1-P6): the magic, then width and height as text, with ``#`` comments."""
    numbers, position, end = [], 2, min(len(data), 4096)
    while len(numbers) < 2 and position < end:
        character = chr(data[position])
        if character == "#":
            while position < end and data[position] not in (10, 13):
                position += 1
        elif character.isdigit():
            start = position
            while position < end and chr(data[position]).isdigit():
                position += 1
            numbers.append(int(bytes(data[start:position])))
            continue
        elif not character.isspace():
            return None
        position += 1
    return tuple(numbers) if len(numbers) == 2 else None


_READERS = ((b"\xff\xd8", _jpeg), (b"\x89PNG\r\n\x1a\n", _png), (b"BM", _bmp), (b"II", _tiff), (b"MM", _tiff),
            (b"RIFF", _webp))

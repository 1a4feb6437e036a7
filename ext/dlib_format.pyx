"""Decoder for dlib's portable serialisation (``dlib/serialize.h``), bounds-checked.

dlib writes an integer as one byte ``size | (0x80 if negative)`` followed by
``size`` little-endian magnitude bytes, and a float as two such integers, a
64-bit mantissa and a 16-bit exponent (``value = mantissa * 2**exponent``, with
exponents 32000 / 32001 / 32002 meaning +inf / -inf / NaN). Every read checks
the remaining length first and raises ``ValueError`` on a truncated or
malformed stream.
"""
import numpy as np

cimport numpy as cnp
from libc.math cimport INFINITY, NAN, ldexp
from libc.stdint cimport int64_t, uint8_t, uint64_t

cnp.import_array()

cdef enum:
    IS_INF = 32000
    IS_NINF = 32001
    IS_NAN = 32002


cdef class DlibReader:
    """Sequential reader over the bytes of a dlib-serialised object."""
    cdef const uint8_t[::1] data
    cdef Py_ssize_t position

    def __init__(self, const uint8_t[::1] data):
        self.data = data
        self.position = 0

    @property
    def remaining(self):
        return self.data.shape[0] - self.position

    cdef int64_t _int(self, int max_bytes) except? -1:
        cdef Py_ssize_t n = self.data.shape[0]
        if self.position >= n:
            raise ValueError("dlib stream ends early")
        cdef uint8_t head = self.data[self.position]
        cdef int size = head & 0x0F
        cdef bint negative = (head & 0x80) != 0
        if size > max_bytes or (head & 0x70):
            raise ValueError(f"malformed dlib integer header 0x{head:02x} at byte {self.position}")
        if self.position + 1 + size > n:
            raise ValueError("dlib stream ends early")
        cdef uint64_t value = 0
        cdef int i
        for i in range(size - 1, -1, -1):
            value = (value << 8) | self.data[self.position + 1 + i]
        self.position += 1 + size
        if value > <uint64_t>0x7FFFFFFFFFFFFFFF:
            raise ValueError("dlib integer too large")
        return -<int64_t>value if negative else <int64_t>value

    cdef double _float(self) except? -1.0:
        cdef int64_t mantissa = self._int(8)
        cdef int64_t exponent = self._int(2)
        if exponent == IS_INF:
            return INFINITY
        if exponent == IS_NINF:
            return -INFINITY
        if exponent == IS_NAN:
            return NAN
        return ldexp(<double>mantissa, <int>exponent)

    def read_int(self, int max_bytes=8):
        """One integer of at most ``max_bytes`` magnitude bytes."""
        return self._int(max_bytes)

    def read_float(self):
        return self._float()

    def read_floats(self, Py_ssize_t count):
        """``count`` consecutive floats as a float64 array."""
        if count < 0 or count > self.remaining:      # every float takes at least 2 bytes
            raise ValueError(f"cannot read {count} floats from {self.remaining} bytes")
        cdef cnp.ndarray[double, ndim=1] out = np.empty(count)
        cdef Py_ssize_t i
        for i in range(count):
            out[i] = self._float()
        return out

    def read_ints(self, Py_ssize_t count, int max_bytes=8):
        """``count`` consecutive integers as an int64 array."""
        if count < 0 or count > self.remaining:      # every integer takes at least 1 byte
            raise ValueError(f"cannot read {count} integers from {self.remaining} bytes")
        cdef cnp.ndarray[int64_t, ndim=1] out = np.empty(count, dtype=np.int64)
        cdef Py_ssize_t i
        for i in range(count):
            out[i] = self._int(max_bytes)
        return out

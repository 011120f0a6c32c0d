"""Reader for the idx file format of MNIST-style datasets (plain or gzip-compressed)."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..exceptions import DatasetNotFoundError, InvalidInputError

__all__ = ["read_idx", "IDX_DTYPES"]

#: idx type code (third magic byte) -> big-endian numpy dtype.
IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(2)
        fh.seek(0)
        raw = fh.read()
    if head == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidInputError(
                f"{path} looks gzip-compressed but cannot be decompressed ({exc}); the file is "
                "probably truncated or corrupt: download it again"
            ) from exc
    return raw


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an idx file (as used by MNIST) into a numpy array.

    Gzip compression is detected from the file content, not the extension, so
    ``*.gz`` and uncompressed files both work.

    Parameters
    ----------
    path : path-like
        The idx file.

    Returns
    -------
    numpy.ndarray
        A writable array in native byte order with the shape stored in the
        header, e.g. ``(60000, 28, 28)`` uint8 for MNIST training images or
        ``(60000,)`` uint8 for its labels.

    Raises
    ------
    DatasetNotFoundError
        If ``path`` does not exist.
    InvalidInputError
        If the magic number is invalid (first two bytes not zero, unknown type
        code, zero dimensions), the gzip stream is corrupt, or the payload size
        does not match the dimensions in the header.

    Notes
    -----
    The header is big-endian: two zero bytes, one type-code byte (0x08 uint8,
    0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), one byte with
    the number of dimensions, then one uint32 per dimension.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DatasetNotFoundError(f"idx file not found: {p}; check the path or the dataset root")
    data = _read_bytes(p)
    if len(data) < 4:
        raise InvalidInputError(f"{p} is too short to be an idx file ({len(data)} bytes; a header needs 4+)")
    (magic,) = struct.unpack(">I", data[:4])
    zero, code, ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
    if zero != 0 or code not in IDX_DTYPES or ndim == 0:
        raise InvalidInputError(
            f"{p} has magic number 0x{magic:08X}, which is not a valid idx header; expected "
            "0x0000TTNN with type code TT in {08, 09, 0B, 0C, 0D, 0E} and NN >= 1 dimensions "
            "(e.g. 0x00000803 for uint8 images, 0x00000801 for uint8 labels). "
            "Is this the right file, and fully downloaded?"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise InvalidInputError(f"{p} ends inside its idx header ({len(data)} bytes, need {header_len})")
    dims = struct.unpack(">" + "I" * ndim, data[4:header_len])
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header_len
    if got != expected:
        raise InvalidInputError(
            f"{p}: header says shape {tuple(dims)} of {dtype.name} ({expected} bytes) but the file "
            f"holds {got} bytes of data; the file is truncated or corrupt"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)

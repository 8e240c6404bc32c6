"""Binary request bodies for /api/v1/predict and /api/v1/predict/batch: scaled windows without JSON.

A 60 x 51 window is ~3,000 floats; as JSON that is 20-60 KB that orjson must parse and NumPy convert. These two
media types skip both (JSON stays the default, see docs/api.md "Binary bodies"):

    application/octet-stream   raw float32, little-endian, row-major: k windows of (window, n_features) back to
                               back; k is implied by the byte length (a positive multiple of 4 x window x
                               n_features), or stated in `X-Shape: k,window,n_features` (then checked).
    application/x-npy          one `.npy` file (np.save) of shape (window, n_features) or (k, window, n_features);
                               float or integer dtype, either byte order, C or Fortran order.

The `.npy` header is parsed here, and the dtype and shape are checked BEFORE any data is touched, so an object
array's pickle is never read, let alone loaded. The header is matched by a regular expression, not evaluated (NumPy
uses ast.literal_eval, which compiles client text and can print SyntaxWarnings for crafted input): it takes the
plain dict np.save writes for an array of numbers, keys in any order, either quote; structured dtypes are refused.
The data is then viewed in place (`np.frombuffer`): float32 in native byte order and C order costs no copy at all;
anything else is converted once to float32. The values pass the same rule as a JSON `sequence`
(`inference.parse_sequence`): each must be finite as float32, and the failure reads the same way, with the same
error code.

The body is read into a bytearray (one copy, as the chunks arrive), so the arrays are writable: PyTorch warns when
it wraps a read-only array, which a view of `bytes` would be.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

import numpy as np
from starlette.requests import Request

from trendcast.serving.errors import ApiError

OCTET_STREAM = "application/octet-stream"
NPY = "application/x-npy"
BINARY_TYPES = frozenset({OCTET_STREAM, NPY})
BINARY_ROUTES = frozenset({"/api/v1/predict", "/api/v1/predict/batch"})  # the only routes that read these
SHAPE_HEADER = "X-Shape"
FLOAT32_LE = np.dtype("<f4")
SHAPE_PATTERN = re.compile(r"\s*(\d{1,9})\s*,\s*(\d{1,9})\s*,\s*(\d{1,9})\s*", re.ASCII)  # k,window,n_features

NPY_MAGIC = b"\x93NUMPY"
NPY_HEADER_LENGTH = {1: "<H", 2: "<I", 3: "<I"}  # format major version -> struct format of the header length
NPY_HEADER_ENCODING = {1: "latin1", 2: "latin1", 3: "utf8"}
MAX_NPY_HEADER = 10_000  # bytes; NumPy's own limit for loading without trusting the file
NPY_ENTRY = re.compile(  # one `'key': value,` of a header: a quoted dtype string, a bool, or a tuple of integers
    r"""\s*(['"])(descr|fortran_order|shape)\1\s*:\s*"""
    r"""(?:(['"])([^'"\\]{1,32})\3|(True|False)|\(([\d\s,]{0,100})\))\s*(?:,|$)""",
    re.ASCII,
)
NUMBER_DESCR = re.compile(r"[<>|=]?[fiu]\d{1,2}", re.ASCII)  # floats and integers; like JSON, booleans are no numbers


def binary_media_type(content_type: str | None) -> str | None:
    """OCTET_STREAM or NPY when the Content-Type names one (parameters and case ignored), else None (JSON)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media if media in BINARY_TYPES else None


async def read_body(request: Request) -> bytearray:
    """The whole body in one writable buffer (see the module doc); the middleware's size limit still applies."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
    return body


def decode_windows(
    body: bytearray, media_type: str, shape_header: str | None, window: int, n_features: int
) -> np.ndarray:
    """(k, window, n_features) float32 windows from a binary body, or a 4xx ApiError that says how to fix it."""
    if not body:
        raise ApiError(400, "empty_body", f"The request body is empty; {_how_to_send(media_type, window, n_features)}")
    stated = _parse_shape_header(shape_header, window, n_features) if shape_header is not None else None
    if media_type == OCTET_STREAM:
        x = _from_octets(body, window, n_features, stated)
    else:
        x = _from_npy(body, window, n_features)
    if stated is not None and stated != len(x):
        raise _shape_header_error(
            f"{SHAPE_HEADER} states {stated} window(s) but the .npy array holds {len(x)}; make them agree",
            {"stated_windows": stated, "windows": len(x)},
        )
    check_finite(x)
    return x


def check_finite(x: np.ndarray) -> None:
    """422 `invalid_sequence` unless every value of (k, window, n_features) float32 windows is finite (the JSON
    `sequence` rule of inference.parse_sequence, worded the same way, plus which window)."""
    bad = ~np.isfinite(x)
    if bad.any():
        index, row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ApiError(
            422,
            "invalid_sequence",
            f"the windows hold {int(bad.sum())} values that are not finite float32 numbers "
            f"(first at window {index}, row {row}, column {col}); send finite values (NaN and infinity are refused, "
            "as in JSON)",
            {"window": index, "row": row, "column": col},
        )


# -- application/octet-stream --------------------------------------------------------------------------------------
def _how_to_send(media_type: str, window: int, n_features: int) -> str:
    if media_type == NPY:
        return f"send a .npy file (np.save) of shape ({window}, {n_features}) or (k, {window}, {n_features})."
    return (
        f"send k windows of {window} x {n_features} float32 values, little-endian, row-major (oldest row first), "
        f"e.g. np.asarray(windows, '<f4').tobytes(), with an optional '{SHAPE_HEADER}: k,{window},{n_features}'."
    )


def _shape_header_error(message: str, details: dict[str, Any]) -> ApiError:
    return ApiError(422, "invalid_shape_header", message, details)


def _parse_shape_header(value: str, window: int, n_features: int) -> int:
    """The number of windows an `X-Shape: k,window,n_features` header states, checked against the model."""
    match = SHAPE_PATTERN.fullmatch(value)
    if match is None:
        raise _shape_header_error(
            f"{SHAPE_HEADER} must be three integers 'k,window,n_features', e.g. '1,{window},{n_features}'; "
            f"got {value[:50]!r}",
            {"expected_shape": ["k", window, n_features]},
        )
    k, rows, cols = (int(p) for p in match.groups())
    if (rows, cols) != (window, n_features) or k < 1:
        raise _shape_header_error(
            f"{SHAPE_HEADER} states {k} window(s) of {rows} x {cols}; this model takes windows of {window} x "
            f"{n_features} (see /api/v1/model/info), at least one: send '{SHAPE_HEADER}: k,{window},{n_features}'",
            {"expected_shape": ["k", window, n_features], "got_shape": [k, rows, cols]},
        )
    return k


def _from_octets(body: bytearray, window: int, n_features: int, stated: int | None) -> np.ndarray:
    window_bytes = FLOAT32_LE.itemsize * window * n_features
    if stated is not None and stated * window_bytes != len(body):
        raise _shape_header_error(
            f"{SHAPE_HEADER} states {stated} window(s), {stated * window_bytes} bytes of float32; the body has "
            f"{len(body)} bytes. Send exactly k x {window} x {n_features} float32 values (4 bytes each)",
            {"stated_windows": stated, "expected_bytes": stated * window_bytes, "got_bytes": len(body)},
        )
    if len(body) % window_bytes:
        raise ApiError(
            400,
            "invalid_binary_body",
            f"The body has {len(body)} bytes, not a multiple of one window's {window_bytes} ({window} x {n_features} "
            f"float32 values of 4 bytes); {_how_to_send(OCTET_STREAM, window, n_features)}",
            {"window_bytes": window_bytes, "got_bytes": len(body)},
        )
    x = np.frombuffer(body, dtype=FLOAT32_LE).reshape(-1, window, n_features)  # (k, window, n_features), no copy
    return x.astype(np.float32, copy=False)  # a no-op on little-endian hosts


# -- application/x-npy ---------------------------------------------------------------------------------------------
def _corrupt_npy(problem: str) -> ApiError:
    return ApiError(
        400,
        "invalid_binary_body",
        f"The body is not a readable .npy file: {problem}. Write it with np.save(buffer, windows) and send "
        "buffer.getvalue().",
    )


def _npy_header(body: bytearray) -> tuple[tuple[int, ...], bool, str, int]:
    """(shape, fortran_order, descr, data offset) of a .npy file, read without touching its data."""
    if bytes(body[:6]) != NPY_MAGIC or len(body) < 8:
        raise _corrupt_npy("it does not start with the .npy magic string \\x93NUMPY")
    major, minor = body[6], body[7]
    length_format = NPY_HEADER_LENGTH.get(major)
    if length_format is None:
        raise _corrupt_npy(f"format version {major}.{minor} is unknown (np.save writes 1.0)")
    start = 8 + struct.calcsize(length_format)
    if len(body) < start:
        raise _corrupt_npy("the header length is cut off")
    (length,) = struct.unpack_from(length_format, body, 8)
    if length > MAX_NPY_HEADER or start + length > len(body):
        raise _corrupt_npy(f"the header claims {length} bytes; the body has {len(body) - start} after the preamble")
    text = bytes(body[start : start + length]).decode(NPY_HEADER_ENCODING[major], errors="replace").strip()
    return (*_header_fields(_parse_npy_header(text)), start + length)


def _parse_npy_header(text: str) -> dict[str, Any]:
    """The header's {'descr': str, 'fortran_order': bool, 'shape': tuple[int, ...]} (see the module doc)."""
    if not (text.startswith("{") and text.endswith("}")):
        raise _corrupt_npy("the header is not a {...} dict")
    inner, pos, fields = text[1:-1], 0, {}
    while inner[pos:].strip():
        match = NPY_ENTRY.match(inner, pos)
        if match is None or match.group(2) in fields:
            raise _corrupt_npy(
                "the header is not the plain {'descr': '<f4', 'fortran_order': False, 'shape': (...)} that np.save "
                "writes for an array of numbers"
            )
        _, key, _, descr, flag, dims = match.groups()
        fields[key] = descr if descr is not None else (flag == "True") if flag is not None else _dims(dims)
        pos = match.end()
    return fields


def _dims(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    if parts[-1] == "" and len(parts) > 1:  # the trailing comma of (5,) or (5, 4,)
        parts.pop()
    if parts == [""]:
        return ()
    if not all(parts):
        raise _corrupt_npy("the header's shape is not a tuple of integers")
    return tuple(int(p) for p in parts)


def _header_fields(header: dict[str, Any]) -> tuple[tuple[int, ...], bool, str]:
    if set(header) != {"descr", "fortran_order", "shape"}:
        raise _corrupt_npy("the header must be a dict with exactly 'descr', 'fortran_order' and 'shape'")
    shape, fortran, descr = header["shape"], header["fortran_order"], header["descr"]
    if not isinstance(shape, tuple) or not isinstance(fortran, bool) or not isinstance(descr, str):
        raise _corrupt_npy("'descr' must be a dtype string, 'fortran_order' a bool and 'shape' a tuple of integers")
    return shape, fortran, descr


def _number_dtype(descr: str) -> np.dtype[Any]:
    """The dtype of a float or integer descr ('<f4', '>f8', '<i8', ...); anything else is a 422."""
    if NUMBER_DESCR.fullmatch(descr):
        try:
            return np.dtype(descr)
        except TypeError:  # e.g. '<f3'
            pass
    raise ApiError(
        422,
        "invalid_sequence",
        f"The .npy array has dtype {descr!r}; send numbers: float32 (best), float64 or integers, e.g. "
        "np.save(buffer, np.asarray(windows, np.float32)). Object, bool, string, complex and structured arrays are "
        "refused (object arrays are never unpickled).",
        {"dtype": descr},
    )


def _from_npy(body: bytearray, window: int, n_features: int) -> np.ndarray:
    shape, fortran, descr, offset = _npy_header(body)
    dtype = _number_dtype(descr)
    _check_npy_shape(shape, window, n_features)
    count = math.prod(shape)
    if offset + count * dtype.itemsize != len(body):
        needed, got = count * dtype.itemsize, len(body) - offset
        raise _corrupt_npy(f"a {shape} {dtype} array needs {needed} bytes of data; the body has {got}")
    flat = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
    array = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32 becomes inf: refused by check_finite
        x = array.astype(np.float32, order="C", copy=False)  # no copy for native little-endian float32, C order
    return x[None] if x.ndim == 2 else x  # (k, window, n_features)


def _check_npy_shape(shape: tuple[int, ...], window: int, n_features: int) -> None:
    if len(shape) == 2 and shape == (window, n_features):
        return
    if len(shape) == 3 and shape[1:] == (window, n_features) and shape[0] >= 1:
        return
    raise ApiError(
        422,
        "invalid_sequence",
        f"The .npy array has shape {list(shape)}; the model needs one window ({window}, {n_features}) or windows "
        f"(k, {window}, {n_features}) with k >= 1 (see /api/v1/model/info)",
        {"expected_shape": ["k", window, n_features], "got_shape": list(shape)},
    )

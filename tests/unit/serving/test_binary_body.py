"""Binary request bodies (serving.binary) in-process: raw float32 and .npy windows give exactly the probabilities of
the same windows sent as JSON, on /api/v1/predict and /api/v1/predict/batch, and every malformed body gets a 4xx in
the one error shape that says how to fix it."""

from __future__ import annotations

import asyncio
import io
import struct
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.unit.serving.conftest import running
from tests.unit.serving.support import FEATURES, WINDOW
from trendcast.config import Settings
from trendcast.serving import create_app
from trendcast.serving.binary import NPY, OCTET_STREAM, decode_windows
from trendcast.serving.errors import ApiError

N_FEATURES = len(FEATURES)
WINDOW_BYTES = 4 * WINDOW * N_FEATURES
PREDICT, BATCH, EXPLAIN = "/api/v1/predict", "/api/v1/predict/batch", "/api/v1/explain"
Request = tuple[str, dict[str, Any]]  # (path, httpx keyword arguments)


def windows(k: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((k, WINDOW, N_FEATURES)).astype(np.float32)


def octets(x: np.ndarray, **headers: str) -> dict[str, Any]:
    return {"content": np.asarray(x, "<f4").tobytes(), "headers": {"Content-Type": OCTET_STREAM, **headers}}


def npy_bytes(x: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, x, allow_pickle=allow_pickle)
    return buffer.getvalue()


def npy(x: np.ndarray) -> dict[str, Any]:
    return {"content": npy_bytes(x), "headers": {"Content-Type": NPY}}


def as_json(x: np.ndarray) -> dict[str, Any]:
    return {"json": {"sequence": x.tolist()}}


def post(settings: Settings, requests: list[Request]) -> list[httpx.Response]:
    async def scenario() -> list[httpx.Response]:
        async with running(create_app(settings)) as client:
            return [await client.post(path, **kwargs) for path, kwargs in requests]

    return asyncio.run(scenario())


def probabilities(response: httpx.Response) -> list[list[float]]:
    assert response.status_code == 200, response.text
    body = response.json()
    predictions = body.get("predictions", [body])
    return [list(p["probabilities"].values()) for p in predictions]


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "request_id", "details"}
    assert error["code"] == code and error["request_id"] == response.headers["x-request-id"]
    return str(error["message"])


# -- same probabilities as JSON --------------------------------------------------------------------------------------
def test_one_window_gives_the_json_probabilities_in_every_binary_form(settings: Settings) -> None:
    x = windows(1)[0]
    big_endian = x.astype(">f4")
    fortran = np.asfortranarray(x)
    forms = [
        octets(x),
        octets(x, **{"X-Shape": f"1,{WINDOW},{N_FEATURES}"}),
        npy(x),  # (window, n_features)
        npy(x[None]),  # (1, window, n_features)
        npy(x.astype(np.float64)),
        npy(big_endian),
        npy(fortran),
    ]
    json_response, *binary = post(settings, [(PREDICT, as_json(x)), *((PREDICT, form) for form in forms)])
    expected = np.asarray(probabilities(json_response))
    for response in binary:
        np.testing.assert_allclose(np.asarray(probabilities(response)), expected, rtol=0, atol=1e-7)


def test_integer_windows_read_like_json_integers(settings: Settings) -> None:
    x = np.arange(WINDOW * N_FEATURES, dtype=np.int64).reshape(WINDOW, N_FEATURES) % 3 - 1
    json_response, binary = post(settings, [(PREDICT, as_json(x)), (PREDICT, npy(x))])
    assert probabilities(binary) == probabilities(json_response)


def test_a_batch_of_windows_gives_the_json_batch_probabilities(settings: Settings) -> None:
    x = windows(3, seed=1)
    items = {"json": {"items": [{"sequence": w.tolist()} for w in x]}}
    shape = {"X-Shape": f"3,{WINDOW},{N_FEATURES}"}
    json_response, *binary = post(
        settings,
        [
            (BATCH, items),
            (BATCH, octets(x)),
            (BATCH, octets(x, **shape)),
            (BATCH, npy(x)),
            (BATCH, npy(x.astype("<f8"))),
        ],
    )
    expected = np.asarray(probabilities(json_response))
    assert expected.shape == (3, 3)
    for response in binary:
        assert response.json()["count"] == 3
        np.testing.assert_allclose(np.asarray(probabilities(response)), expected, rtol=0, atol=1e-7)


def test_one_window_as_a_batch(settings: Settings) -> None:
    x = windows(1, seed=2)
    (batch,) = post(settings, [(BATCH, npy(x[0]))])
    assert batch.json()["count"] == 1


def test_float32_bodies_are_viewed_not_copied_and_writable() -> None:
    """Zero copy after the read; writable so that PyTorch can wrap the array without a warning."""
    x = windows(2)
    body = bytearray(x.tobytes())
    decoded = decode_windows(body, OCTET_STREAM, None, WINDOW, N_FEATURES)
    assert np.shares_memory(decoded, np.frombuffer(body, np.uint8)) and decoded.flags.writeable
    np.testing.assert_array_equal(decoded, x)
    npy_body = bytearray(npy_bytes(x))
    from_npy = decode_windows(npy_body, NPY, None, WINDOW, N_FEATURES)
    assert np.shares_memory(from_npy, np.frombuffer(npy_body, np.uint8)) and from_npy.flags.writeable


# -- malformed bodies --------------------------------------------------------------------------------------------------
def with_nan() -> np.ndarray:
    x = windows(1)
    x[0, 2, 1] = np.nan
    return x


def with_inf() -> np.ndarray:
    x = windows(1)
    x[0, 0, 3] = -np.inf
    return x


def corrupt_npy_bodies() -> dict[str, bytes]:
    good = npy_bytes(windows(1)[0])
    header_end = good.index(b"\n") + 1
    garbage_header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (5, 4), "  # never closed
    header = garbage_header.ljust(118) + b"\n"
    return {
        "not npy at all": b"PK\x03\x04" + bytes(WINDOW_BYTES),
        "truncated data": good[:-4],
        "trailing bytes": good + b"\x00" * 4,
        "cut inside the preamble": good[:9],
        "header length past the end": good[:8] + struct.pack("<H", 60_000) + good[10:],
        "unparsable header": good[:8] + struct.pack("<H", len(header)) + header + good[header_end:],
        "unknown version": good[:6] + b"\x09\x00" + good[8:],
        "not a dict": good[:10] + b"[1, 2]".ljust(header_end - 11) + b"\n" + good[header_end:],
    }


class UnpickledError(Exception):
    """Raised if the server ever unpickles the object array below."""


def _explode() -> None:
    raise UnpickledError


class Boom:
    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _explode, ()


MALFORMED: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("empty raw", PREDICT, {"content": b"", "headers": {"Content-Type": OCTET_STREAM}}, 400, "empty_body"),
    ("empty npy", BATCH, {"content": b"", "headers": {"Content-Type": NPY}}, 400, "empty_body"),
    ("not a multiple", PREDICT, {**octets(windows(1)), "content": bytes(WINDOW_BYTES + 4)}, 400, "invalid_binary_body"),
    ("short", BATCH, {**octets(windows(1)), "content": bytes(WINDOW_BYTES - 4)}, 400, "invalid_binary_body"),
    ("nan raw", PREDICT, octets(with_nan()), 422, "invalid_sequence"),
    ("inf raw", BATCH, octets(with_inf()), 422, "invalid_sequence"),
    ("nan npy", PREDICT, npy(with_nan()), 422, "invalid_sequence"),
    ("beyond float32", PREDICT, npy(np.full((WINDOW, N_FEATURES), 1e39)), 422, "invalid_sequence"),
    ("two windows on predict", PREDICT, octets(windows(2)), 422, "invalid_sequence"),
    (
        "float64 raw on predict",
        PREDICT,
        {**octets(windows(1)), "content": windows(1).astype("<f8").tobytes()},
        422,
        "invalid_sequence",
    ),
    ("too many windows", BATCH, octets(windows(65)), 422, "too_many_items"),
    ("bool npy", PREDICT, npy(np.zeros((WINDOW, N_FEATURES), bool)), 422, "invalid_sequence"),
    ("complex npy", PREDICT, npy(np.zeros((WINDOW, N_FEATURES), np.complex64)), 422, "invalid_sequence"),
    ("string npy", PREDICT, npy(np.full((WINDOW, N_FEATURES), "1.0")), 422, "invalid_sequence"),
    ("structured npy", PREDICT, npy(np.zeros((WINDOW, N_FEATURES), [("a", "<f4")])), 400, "invalid_binary_body"),
    ("wrong npy shape", PREDICT, npy(np.zeros((WINDOW + 1, N_FEATURES), np.float32)), 422, "invalid_sequence"),
    ("1-d npy", BATCH, npy(np.zeros(WINDOW * N_FEATURES, np.float32)), 422, "invalid_sequence"),
    ("no windows npy", BATCH, npy(np.zeros((0, WINDOW, N_FEATURES), np.float32)), 422, "invalid_sequence"),
    ("x-shape not numbers", PREDICT, octets(windows(1), **{"X-Shape": "one window"}), 422, "invalid_shape_header"),
    (
        "x-shape other model",
        PREDICT,
        octets(windows(1), **{"X-Shape": f"1,60,{N_FEATURES}"}),
        422,
        "invalid_shape_header",
    ),
    (
        "x-shape zero windows",
        BATCH,
        octets(windows(1), **{"X-Shape": f"0,{WINDOW},{N_FEATURES}"}),
        422,
        "invalid_shape_header",
    ),
    (
        "x-shape vs length",
        BATCH,
        octets(windows(1), **{"X-Shape": f"2,{WINDOW},{N_FEATURES}"}),
        422,
        "invalid_shape_header",
    ),
    (
        "x-shape vs npy",
        BATCH,
        {**npy(windows(2)), "headers": {"Content-Type": NPY, "X-Shape": f"3,{WINDOW},{N_FEATURES}"}},
        422,
        "invalid_shape_header",
    ),
]
MALFORMED += [
    (name, PREDICT, {"content": body, "headers": {"Content-Type": NPY}}, 400, "invalid_binary_body")
    for name, body in corrupt_npy_bodies().items()
]


@pytest.mark.parametrize(
    ("route", "kwargs", "status", "code"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_a_malformed_binary_body_gets_a_4xx_that_says_how_to_fix_it(
    settings: Settings, route: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    (response,) = post(settings, [(route, kwargs)])
    message = assert_error(response, status, code)
    assert len(message) > 40  # a sentence with the remedy, not a bare code


def test_the_messages_name_the_fix(settings: Settings) -> None:
    length, nan, shape, dtype = post(
        settings,
        [
            (PREDICT, {**octets(windows(1)), "content": bytes(WINDOW_BYTES + 4)}),
            (PREDICT, octets(with_nan())),
            (BATCH, octets(windows(1), **{"X-Shape": f"1,60,{N_FEATURES}"})),
            (PREDICT, npy(np.zeros((WINDOW, N_FEATURES), bool))),
        ],
    )
    assert f"not a multiple of one window's {WINDOW_BYTES}" in assert_error(length, 400, "invalid_binary_body")
    assert "np.asarray(windows, '<f4').tobytes()" in length.json()["error"]["message"]
    assert "not finite float32 numbers (first at window 0, row 2, column 1)" in assert_error(
        nan, 422, "invalid_sequence"
    )
    assert nan.json()["error"]["details"] == {"window": 0, "row": 2, "column": 1}
    assert f"{WINDOW} x {N_FEATURES}" in assert_error(shape, 422, "invalid_shape_header")
    assert "float32" in assert_error(dtype, 422, "invalid_sequence")


def test_an_object_array_is_refused_without_being_unpickled(settings: Settings) -> None:
    body = npy_bytes(np.array([Boom()] * (WINDOW * N_FEATURES), dtype=object).reshape(WINDOW, N_FEATURES), True)
    (response,) = post(settings, [(PREDICT, {"content": body, "headers": {"Content-Type": NPY}})])
    assert "never unpickled" in assert_error(response, 422, "invalid_sequence")  # an UnpickledError would be a 500


# -- media types ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("media_type", [OCTET_STREAM, NPY])
def test_explain_takes_only_json(settings: Settings, media_type: str) -> None:
    body = npy_bytes(windows(1)[0]) if media_type == NPY else windows(1).tobytes()
    (response,) = post(settings, [(EXPLAIN, {"content": body, "headers": {"Content-Type": media_type}})])
    message = assert_error(response, 415, "unsupported_media_type")
    assert PREDICT in message and BATCH in message and "application/json" in message
    assert response.json()["error"]["details"] == {"accepted": ["application/json"]}


def test_other_media_types_on_predict_list_the_binary_ones(settings: Settings) -> None:
    (response,) = post(settings, [(PREDICT, {"content": b"1,2,3", "headers": {"Content-Type": "text/csv"}})])
    assert_error(response, 415, "unsupported_media_type")
    assert response.json()["error"]["details"] == {"accepted": ["application/json", OCTET_STREAM, NPY]}


def test_the_media_type_ignores_case_and_parameters(settings: Settings) -> None:
    x = windows(1)
    (response,) = post(
        settings, [(PREDICT, {**octets(x), "headers": {"Content-Type": "Application/Octet-Stream; x=1"}})]
    )
    assert response.status_code == 200, response.text


def test_openapi_documents_the_binary_bodies(settings: Settings) -> None:
    async def scenario() -> dict[str, Any]:
        async with running(create_app(settings)) as client:
            schema: dict[str, Any] = (await client.get("/api/openapi.json")).json()
            return schema

    paths = asyncio.run(scenario())["paths"]
    for path in (PREDICT, BATCH):
        content = paths[path]["post"]["requestBody"]["content"]
        assert list(content) == ["application/json", OCTET_STREAM, NPY]
        assert content[OCTET_STREAM]["schema"]["format"] == content[NPY]["schema"]["format"] == "binary"
        assert f"{WINDOW} x {N_FEATURES}" in content[OCTET_STREAM]["schema"]["description"]
        assert f"{WINDOW}, {N_FEATURES})" in content[NPY]["schema"]["description"]
        assert "415" in paths[path]["post"]["responses"]
    assert list(paths[EXPLAIN]["post"]["requestBody"]["content"]) == ["application/json"]


# -- fuzz ---------------------------------------------------------------------------------------------------------------
DESCRS = [
    "'<f4'",
    "'>f8'",
    "'<i2'",
    "'|O'",
    "'|b1'",
    "'<c8'",
    "'<U3'",
    "[('a', '<f4')]",
    "('<f4', (2,))",
    "'xyz'",
    "3",
    "'\\d'",
    "1if 1 else 2",
]


@st.composite
def npy_like(draw: st.DrawFn) -> bytes:
    """A .npy preamble and a header built from plausible and broken pieces, then arbitrary data."""
    descr = draw(st.sampled_from(DESCRS))
    shape = tuple(draw(st.lists(st.sampled_from([-1, 0, 1, 2, WINDOW, N_FEATURES, 10**12]), max_size=4)))
    fortran = draw(st.sampled_from(["True", "False", "1"]))
    header = f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}".encode()
    header = draw(st.sampled_from([header, header[:-3], header + b"x"]))
    version = draw(st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x07\x00"]))
    length = struct.pack("<H" if version[0] == 1 else "<I", len(header) + 1)
    data = draw(st.sampled_from([bytes(4 * WINDOW * N_FEATURES), b"", bytes(7)]) | st.binary(max_size=200))
    return b"\x93NUMPY" + version + length + header + b"\n" + data


@hypothesis_settings(max_examples=400, deadline=None)
@given(
    body=st.binary(max_size=4 * WINDOW * N_FEATURES * 2 + 8) | npy_like(),
    media_type=st.sampled_from([OCTET_STREAM, NPY]),
    shape=st.none() | st.text(st.characters(max_codepoint=255), max_size=12) | st.just(f"1,{WINDOW},{N_FEATURES}"),
)
def test_any_binary_body_decodes_to_finite_windows_or_a_4xx(body: bytes, media_type: str, shape: str | None) -> None:
    try:
        x = decode_windows(bytearray(body), media_type, shape, WINDOW, N_FEATURES)
    except ApiError as exc:
        assert 400 <= exc.status_code < 500 and len(exc.message) > 30
        return
    assert x.dtype == np.float32 and x.ndim == 3 and x.shape[1:] == (WINDOW, N_FEATURES) and len(x) >= 1
    assert np.isfinite(x).all()


@pytest.mark.parametrize("shape", ["1,5,4\u00b2", "\u0661,5,4", "1" * 5000 + ",5,4", "1,5", "1;5;4", ""])
def test_an_x_shape_that_is_not_three_ascii_integers_is_a_422(shape: str) -> None:
    with pytest.raises(ApiError) as caught:
        decode_windows(bytearray(windows(1).tobytes()), OCTET_STREAM, shape, WINDOW, N_FEATURES)
    assert caught.value.status_code == 422 and caught.value.code == "invalid_shape_header"


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 4), }",  # what np.save writes
        '{"shape": (1, 5, 4), "descr": "<f4", "fortran_order": False}',  # other writers: any order, double quotes
        "{'descr':'<f4','fortran_order':False,'shape':(5,4)}",
    ],
)
@pytest.mark.parametrize("version", [1, 2])
def test_npy_headers_of_other_writers_are_read(header: str, version: int) -> None:
    x = windows(1)
    encoded = header.encode() + b"\n"
    length = struct.pack("<H" if version == 1 else "<I", len(encoded))
    body = b"\x93NUMPY" + bytes([version, 0]) + length + encoded + x.tobytes()
    np.testing.assert_array_equal(decode_windows(bytearray(body), NPY, None, WINDOW, N_FEATURES), x)

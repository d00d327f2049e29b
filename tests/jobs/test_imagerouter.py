"""The ImageRouter client against the simulator over real sockets: every outcome, typed."""

import base64
import io
import json
import logging
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from PIL import Image

from jobs import imagerouter

KEY = "test-key-" + "x" * 55


def png_bytes(width=64, height=48, color=(200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def is_mp4(data: bytes) -> bool:
    return data[4:8] == b"ftyp"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Success: both encodings, all three response formats ------------------------------------------


def test_a_url_result_carries_the_link_cost_latency_and_created(client_for):
    result = client_for().generate(model="ir/test-video", prompt="a red fox in snow")

    assert result.url and result.url.startswith("http://127.0.0.1:")
    assert result.video is None
    assert result.cost == Decimal("0")
    assert isinstance(result.latency_ms, int) and result.latency_ms >= 0
    assert abs(result.created - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize("response_format", ["b64_json", "b64_ephemeral"])
def test_a_base64_result_is_decoded_to_an_mp4_file(client_for, response_format):
    result = client_for().generate(
        model="ir/test-video", prompt="waves at dusk", response_format=response_format
    )
    try:
        assert result.url is None
        assert is_mp4(result.video.read())
    finally:
        result.close()


def test_an_uploaded_image_goes_as_multipart(client_for):
    result = client_for().generate(
        model="ir/test-video",
        prompt="slow zoom",
        image=io.BytesIO(png_bytes()),
        image_name="photo.png",
        image_content_type="image/png",
        response_format="b64_json",
    )
    try:
        assert is_mp4(result.video.read())
    finally:
        result.close()


def test_an_image_as_a_data_uri_goes_in_json(client_for):
    data_uri = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    result = client_for().generate(model="ir/test-video", prompt="pan", image=data_uri)
    assert result.url


def test_a_priced_model_reports_its_cost_as_a_decimal(client_for):
    result = client_for().generate(model="kling/kling-2.1-standard", prompt="city", seconds="5")

    assert isinstance(result.cost, Decimal)
    assert Decimal("0.18") <= result.cost <= Decimal("0.50")


def test_created_is_normalised_from_seconds_and_from_milliseconds(client_for):
    # ir/test-video sends seconds, the priced stand-ins send milliseconds, as the provider does.
    client = client_for()
    in_seconds = client.generate(model="ir/test-video", prompt="a")
    in_millis = client.generate(model="kling/kling-2.1-standard", prompt="b", seconds="5")

    for result in (in_seconds, in_millis):
        assert abs(result.created - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_20_mb_base64_result_arrives_whole(client_for, simulator):
    simulator.inject({"kind": "large_result", "bytes": 20_000_000})

    result = client_for(deadline=120, read_timeout=60).generate(
        model="ir/test-video", prompt="big", response_format="b64_json"
    )
    try:
        data = result.video.read()
        assert len(data) >= 20_000_000
        assert is_mp4(data)
    finally:
        result.close()


# --- Certainly not processed: safe to retry ---------------------------------------------------------


def test_a_refused_connection_is_not_processed(client_for):
    client = client_for(base_url=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(imagerouter.NotProcessedError) as caught:
        client.generate(model="ir/test-video", prompt="x")
    assert not isinstance(caught.value, imagerouter.RateLimitedError)


def test_429_is_rate_limited_with_its_retry_after(client_for, simulator):
    simulator.inject({"kind": "rate_limit", "retry_after": 7})

    with pytest.raises(imagerouter.RateLimitedError) as caught:
        client_for().generate(model="ir/test-video", prompt="x")
    assert caught.value.retry_after == 7
    assert simulator.stats()["paid_calls"] == 0


# --- Refused or failed with refund: not charged, do not retry ---------------------------------------


def test_a_validation_error_is_refused_with_the_providers_message(client_for):
    with pytest.raises(imagerouter.RefusedError) as caught:
        client_for().generate(model="no/such-model", prompt="x")
    assert caught.value.status == 400
    assert "no/such-model" in caught.value.message


def test_a_missing_key_is_refused(client_for):
    with pytest.raises(imagerouter.RefusedError) as caught:
        client_for(api_key="").generate(model="ir/test-video", prompt="x")
    assert caught.value.status == 401


@pytest.mark.parametrize("status", [502, 503])
def test_a_5xx_is_refused(client_for, simulator, status):
    simulator.inject({"kind": "http_error", "status": status, "message": "upstream failed"})

    with pytest.raises(imagerouter.RefusedError) as caught:
        client_for().generate(model="ir/test-video", prompt="x")
    assert caught.value.status == status


def test_a_200_with_an_error_body_is_refused(client_for, simulator):
    simulator.inject({"kind": "error_after", "seconds": 0.5, "message": "The provider failed"})

    with pytest.raises(imagerouter.RefusedError) as caught:
        client_for().generate(model="ir/test-video", prompt="x")
    assert caught.value.status == 200
    assert "The provider failed" in caught.value.message
    assert not isinstance(caught.value, imagerouter.InsufficientCreditsError)


@pytest.mark.parametrize("status", [500, 200])
def test_insufficient_credits_is_its_own_refusal(client_for, simulator, status):
    simulator.inject({"kind": "insufficient_credits", "status": status})

    with pytest.raises(imagerouter.InsufficientCreditsError):
        client_for().generate(model="ir/test-video", prompt="x")


# --- Outcome unknown: may have been charged, never retried ------------------------------------------


def test_a_connection_dropped_mid_response_is_outcome_unknown(client_for, simulator):
    simulator.inject({"kind": "drop", "after_seconds": 0.3})

    with pytest.raises(imagerouter.OutcomeUnknownError) as caught:
        client_for().generate(model="kling/kling-2.1-standard", prompt="x", seconds="5")
    assert "may have charged" in caught.value.message
    assert "(the connection dropped)" in caught.value.message
    assert simulator.stats()["paid_calls"] == 1


def test_a_silent_connection_times_out_as_outcome_unknown_saying_it_went_silent(
    client_for, simulator
):
    """A read timeout is not a dropped connection: the message says which it was."""
    simulator.inject({"kind": "slow", "seconds": 4, "keepalive": False})

    with pytest.raises(imagerouter.OutcomeUnknownError) as caught:
        client_for(read_timeout=1).generate(model="ir/test-video", prompt="x")
    assert "may have charged" in caught.value.message
    assert "(it sent nothing for 1 s)" in caught.value.message
    assert "dropped" not in caught.value.message


def test_keep_alive_spaces_cannot_stretch_a_call_past_the_deadline(client_for, simulator):
    simulator.inject({"kind": "slow", "seconds": 4, "keepalive": True})

    with pytest.raises(imagerouter.OutcomeUnknownError) as caught:
        client_for(read_timeout=1, deadline=1.5).generate(model="ir/test-video", prompt="x")
    assert "deadline" in caught.value.message


def test_malformed_json_is_outcome_unknown(client_for, simulator):
    simulator.inject({"kind": "malformed"})

    with pytest.raises(imagerouter.OutcomeUnknownError):
        client_for().generate(model="ir/test-video", prompt="x")


# --- Downloads, catalog, credits ---------------------------------------------------------------------


def test_a_url_result_downloads_in_full(client_for):
    client = client_for()
    result = client.generate(model="ir/test-video", prompt="download me")
    destination = io.BytesIO()

    written = client.download(result.url, destination)

    assert written == len(destination.getvalue()) > 0
    assert is_mp4(destination.getvalue())


@pytest.mark.parametrize("mode", ["error", "truncate"])
def test_a_failed_or_truncated_download_raises_then_a_retry_works(client_for, simulator, mode):
    simulator.inject({"kind": "download_fail", "times": 1, "mode": mode})
    client = client_for()
    result = client.generate(model="ir/test-video", prompt="flaky storage")

    with pytest.raises(imagerouter.DownloadError):
        client.download(result.url, io.BytesIO())
    retry = io.BytesIO()
    client.download(result.url, retry)
    assert is_mp4(retry.getvalue())
    assert simulator.stats()["paid_calls"] == 1


def test_list_models_gives_video_models_in_the_providers_shape(client_for):
    models = client_for().list_models()

    assert "ir/test-video" in models
    assert all("video" in info["output"] for info in models.values())
    assert models["ir/test-video"]["seconds"] == [5]


def test_credits_are_decimals_and_count_what_was_charged(client_for):
    client = client_for()
    before = client.credits()
    client.generate(model="kling/kling-2.1-standard", prompt="paid", seconds="5")
    after = client.credits(by_api_key=True)

    assert isinstance(after["remaining_credits"], Decimal)
    assert after["credit_usage"] > before["credit_usage"]
    assert after["usage_by_api_key"]


# --- The key stays secret ------------------------------------------------------------------------


def test_the_key_appears_in_no_repr_error_or_log_line(client_for, simulator, caplog):
    caplog.set_level(logging.DEBUG)
    client = client_for()
    messages = [repr(client)]
    for fault in (
        {"kind": "drop", "after_seconds": 0.1},
        {"kind": "http_error", "status": 502},
        {"kind": "rate_limit", "retry_after": 1},
    ):
        simulator.inject(fault)
        with pytest.raises(imagerouter.ImageRouterError) as caught:
            client.generate(model="ir/test-video", prompt="x")
        messages += [str(caught.value), repr(caught.value), caught.value.message]

    for text in [*messages, caplog.text]:
        assert KEY not in text


# --- The streaming base64 scanner, on bodies the simulator would never send --------------------------


def scan(body: bytes):
    sink = io.BytesIO()
    skeleton, found = imagerouter._extract_b64(io.BytesIO(body), sink)
    return json.loads(skeleton), found, sink.getvalue()


def test_the_scanner_unescapes_slashes_and_line_breaks():
    payload = b"\xfb\xff\xfe" * 1000  # base64 full of "/" and "+"
    encoded = base64.encodebytes(payload).decode().replace("/", "\\/").replace("\n", "\\n")
    body = ('{"data": [{"b64_json": "' + encoded + '"}], "cost": 0}').encode()

    parsed, found, video = scan(body)

    assert found and video == payload
    assert parsed["data"][0]["b64_json"] == ""


def test_the_scanner_is_not_fooled_by_a_prompt_that_mentions_b64_json():
    body = json.dumps(
        {
            "data": [
                {
                    "revised_prompt": 'say "b64_json": "AAAA"',
                    "b64_json": base64.b64encode(b"ok").decode(),
                }
            ]
        }
    ).encode()

    parsed, found, video = scan(body)

    assert found and video == b"ok"
    assert parsed["data"][0]["revised_prompt"] == 'say "b64_json": "AAAA"'


# --- Memory: a video never passes through memory whole (bench/memory.py measures it) -------------


class WriteSizes(io.RawIOBase):
    """A destination that keeps nothing but the size of each write."""

    def __init__(self):
        self.sizes = []

    def writable(self):
        return True

    def write(self, data):
        self.sizes.append(len(data))
        return len(data)


def test_a_url_result_is_downloaded_in_chunks(client_for, simulator):
    simulator.inject({"kind": "large_result", "bytes": 5_000_000})
    client = client_for(deadline=60, read_timeout=30)
    result = client.generate(model="ir/test-video", prompt="big")
    destination = WriteSizes()

    written = client.download(result.url, destination)

    assert written == sum(destination.sizes) == 5_000_000
    assert max(destination.sizes) <= imagerouter.CHUNK_BYTES


def test_a_base64_result_is_decoded_in_pieces():
    video = bytes(range(256)) * 20_000  # 5 MB, 6.8 MB once encoded
    body = b'{"data": [{"b64_json": "' + base64.b64encode(video) + b'"}], "cost": 0}'
    sink = WriteSizes()

    _, found = imagerouter._extract_b64(io.BytesIO(body), sink)

    assert found and sum(sink.sizes) == len(video)
    assert max(sink.sizes) <= imagerouter.CHUNK_BYTES

"""The store step's check that a result is a whole MP4, read from its box headers: a real video
passes, a cut-short or padded-with-junk download and anything that is not an MP4 are refused."""

import io
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jobs import services
from jobs.models import Job
from jobs.mp4 import NotMP4Error, check_mp4
from simulator.render import pad_with_free_box, render_text_video


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("mp4") / "clip.mp4"
    render_text_video("a lighthouse at dusk", 320, 180, 1.0, out)
    return out.read_bytes()


def box(kind: bytes, body: bytes = b"") -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def test_a_video_ffmpeg_made_is_a_whole_mp4(video):
    check_mp4(io.BytesIO(video))


def test_a_trailing_box_of_any_size_still_tiles_the_file(video, tmp_path):
    # The simulator's big videos end with a `free` box; past 4 GiB its size takes 64 bits.
    path = tmp_path / "big.mp4"
    path.write_bytes(video)
    pad_with_free_box(path, 2**32 + 1024)  # sparse: no 4 GiB is written
    with path.open("rb") as f:
        check_mp4(f)


def test_a_last_box_whose_size_is_zero_runs_to_the_end():
    check_mp4(io.BytesIO(box(b"ftyp", b"isom") + box(b"moov") + b"\0\0\0\0mdat" + b"x" * 100))


@pytest.mark.parametrize(
    ("cut", "problem"),
    [
        (lambda v: v[: len(v) // 2], "cut short"),
        (lambda v: v[:-1], "cut short"),
        (lambda v: v + b"\0\0\0", "cut short"),  # junk after the last box
        (lambda v: b"", "empty"),
        (lambda v: b"\x89PNG\r\n\x1a\n" + v, "not an MP4"),
        (lambda v: b"<html>Access denied</html>", "not an MP4"),
    ],
    ids=["half", "last-byte-missing", "junk-appended", "empty", "png", "html-error-page"],
)
def test_a_damaged_or_foreign_file_is_refused_with_a_reason(video, cut, problem):
    with pytest.raises(NotMP4Error, match=problem):
        check_mp4(io.BytesIO(cut(video)))


@pytest.mark.parametrize(
    ("boxes", "problem"),
    [
        (box(b"ftyp", b"isom") + box(b"mdat", b"frames"), "no moov index"),
        (box(b"ftyp", b"isom") + box(b"moov"), "no media data"),
        (box(b"ftyp", b"isom") + (4).to_bytes(4, "big") + b"moov", "impossible size"),
    ],
    ids=["no-index", "no-media", "size-below-header"],
)
def test_a_file_missing_what_a_player_needs_is_refused(boxes, problem):
    with pytest.raises(NotMP4Error, match=problem):
        check_mp4(io.BytesIO(boxes))


@pytest.fixture
def cdn(video):
    """A provider's file host that answers with the first half of a video, its length declared
    honestly, so the download itself succeeds and only the store's check can catch it."""
    half = video[: len(video) // 2]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(half)))
            self.end_headers()
            self.wfile.write(half)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v/cut.mp4"
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_a_result_cut_short_at_the_source_fails_the_store_and_is_not_generated_again(
    alice, cdn, settings, simulator, media_root
):
    settings.STORE_RETRY_DELAY = 0
    job = Job.objects.create(
        owner=alice, prompt="a lighthouse at dusk", model="ir/test-video",
        status=Job.Status.STORING, provider_url=cdn, cost=Decimal("0.10"),
    )  # fmt: skip

    services.job_store(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "made (and paid for) but could not be stored" in job.error
    assert "not a complete MP4 video" in job.error
    assert not job.video and not list(media_root.rglob("*.mp4"))
    assert simulator.stats()["generation_requests"] == 0

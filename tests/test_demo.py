"""The demo page over real HTTP: upload, see the labels; bad uploads are messages, and the
server keeps serving."""

import io
import threading
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
from PIL import Image

from tinysegnet import demo, engine
from tinysegnet.data import load_synthetic_split


@pytest.fixture(scope="module")
def server():
    model, config, _ = engine.load_pretrained("camvid")
    httpd = demo.make_server(model, config, "camvid.npz", port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _post(url, data, filename="street.png", fields=None):
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in (fields or {}).items():
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").encode()
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\n"
             f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    request = urllib.request.Request(url + "/segment", body, headers)
    try:
        with urllib.request.urlopen(request) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _encode(array, format="PNG", **options):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format, **options)
    return buffer.getvalue()


STREET = load_synthetic_split("val", (90, 120)).images[0]


def test_the_page_and_an_upload(server):
    with urllib.request.urlopen(server + "/") as r:
        assert r.status == 200 and "enctype='multipart/form-data'" in r.read().decode()
    status, text = _post(server, _encode(STREET))
    assert status == 200 and "id='labels'" in text and "data:image/png;base64," in text
    assert "120x90 image segmented in" in text and "Pixels per class" in text
    assert any(name in text for name in ("Road", "Sky", "Building"))


@pytest.mark.parametrize("data,message", [
    (b"this is not an image", "not an image PIL can read"),
    (b"", "the upload was empty"),
    (_encode(np.zeros((1, 1, 3), np.uint8)), "the image is 1x1: at least 16 pixels"),
])
def test_bad_uploads_are_messages_and_the_server_goes_on(server, data, message):
    status, text = _post(server, data)
    assert status == 400 and message in text
    assert _post(server, _encode(STREET))[0] == 200  # the next one is served


def test_cmyk_and_exif_rotated_images(server):
    cmyk = io.BytesIO()
    Image.fromarray(STREET).convert("CMYK").save(cmyk, format="JPEG")
    assert _post(server, cmyk.getvalue(), "street.jpg")[0] == 200
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees on display
    rotated = io.BytesIO()
    Image.fromarray(STREET).save(rotated, format="JPEG", exif=exif)
    status, text = _post(server, rotated.getvalue(), "phone.jpg")
    assert status == 200 and "90x120 image segmented" in text  # shown as a viewer shows it: upright


def test_a_huge_upload_is_refused_and_the_sender_reads_why(server, monkeypatch):
    """Refused by its Content-Length, never decoded; its body is read and dropped so that the
    client, still sending, gets the answer instead of a broken pipe. Past DRAIN_BYTES the
    connection is closed under it, and the server goes on."""
    monkeypatch.setattr(demo, "MAX_BYTES", 2_000_000)
    big = _encode(np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), np.uint8))  # about 3 MB
    status, text = _post(server, big)
    assert status == 413 and "at most 2 MB" in text
    monkeypatch.setattr(demo, "DRAIN_BYTES", 100_000)
    with pytest.raises(OSError):  # a broken pipe or a reset: the answer is not waited for
        _post(server, big * 4)
    assert _post(server, _encode(STREET))[0] == 200


def test_a_bayesian_model_shows_its_uncertainty(tiny_set, tmp_path):
    from tinysegnet import train
    train.main(["--model", "bayesian-segnet-basic", "--data-dir", tiny_set, "--size", "32", "48", "--epochs", "1",
                "--batch-size", "3", "--quiet", "--device", "cpu", "--out", str(tmp_path / "run")])
    model, config, _ = engine.load_run(str(tmp_path / "run" / "best.npz"))
    httpd = demo.make_server(model, config, "best.npz", port=0, samples=2)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        status, text = _post(url, _encode(STREET), fields={"samples": "3"})
        assert status == 200 and "id='uncertainty'" in text and "3 Monte Carlo samples" in text
        status, text = _post(url, _encode(STREET), fields={"samples": "500"})
        assert status == 400 and "between 0 and 50" in text
    finally:
        httpd.shutdown()
        httpd.server_close()

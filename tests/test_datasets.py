"""`semlink data kodak` (issue 34.7): downloads over real HTTP, checks pixels, says what to
do where it cannot reach the source."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from semlink.eval.datasets import KODAK_PIXELS_SHA256, DataError, fetch_kodak, pixels_sha256

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
needs_kodak = pytest.mark.skipif(not KODAK.is_dir(), reason="../shared/data/kodak is absent")


@pytest.fixture
def kodak_server() -> Iterator[str]:
    """A real HTTP server on a free localhost port serving the suite."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(KODAK))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{{name}}"
    server.shutdown()


@needs_kodak
def test_the_suite_downloads_and_checks_out(kodak_server: str, tmp_path: Path) -> None:
    folder = fetch_kodak(tmp_path / "kodak", urls=[kodak_server])
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == sorted(KODAK_PIXELS_SHA256)
    assert all(pixels_sha256((folder / n).read_bytes()) == KODAK_PIXELS_SHA256[n] for n in names)


@needs_kodak
def test_a_changed_pixel_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(KODAK, copy)
    with Image.open(copy / "kodim05.png") as im:
        pixels = np.asarray(im.convert("RGB")).copy()
    pixels[10, 10] ^= 1
    Image.fromarray(pixels).save(copy / "kodim05.png")
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match=r"kodim05.png .* does not have the Kodak suite's pixels"):
        fetch_kodak(dest, source=copy)
    assert list(dest.glob("*.png")) == []


@needs_kodak
def test_a_recompressed_copy_with_the_same_pixels_passes(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(KODAK, copy)
    with Image.open(copy / "kodim01.png") as im:
        im.convert("RGB").save(copy / "kodim01.png", compress_level=9)
    assert (KODAK / "kodim01.png").read_bytes() != (copy / "kodim01.png").read_bytes()
    fetch_kodak(tmp_path / "dest", source=copy)


def test_an_unreachable_source_says_what_to_do(tmp_path: Path) -> None:
    from services.cli import app

    closed = "http://127.0.0.1:9/{name}"  # the discard port: nothing listens there
    with pytest.raises(DataError, match="semlink data kodak --from DIR"):
        fetch_kodak(tmp_path / "net", urls=[closed], timeout=5)
    result = CliRunner().invoke(app, ["data", "kodak", "--from", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "Traceback" not in result.output

"""Public evaluation data fetched on demand: the Kodak Lossless True Color Image Suite.

``semlink data kodak`` downloads the 24 PNGs from Rich Franzen's page (the suite's usual
public home, released by Eastman Kodak for unrestricted research use) or copies them from
a folder, and checks every picture against a pinned SHA-256 of its decoded pixels (width x
height and RGB rows): a re-compressed copy with the same pixels passes, a changed pixel
does not, so plain HTTP mirrors are safe. Nothing is kept unless all 24 check out.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

KODAK_PIXELS_SHA256 = {
    "kodim01.png": "004a507bffa5f68a426cf10c614782a9db7eed10629ec8756644b5b6422b2801",
    "kodim02.png": "3a7f3f70eae6bfd7d9ec1a8658bff1840f8e7b4faf615487295b1e89e1455877",
    "kodim03.png": "1b0a957337ce570521593753c905a7b637bb4a2555ff5d78551e6ceaac0d2730",
    "kodim04.png": "1ae24b987d62ae60b0d98885c0f4386c9e223159d1ab65fbe675f549902c44df",
    "kodim05.png": "de12aface3c12352e89724e4980b33dc2a92e088979ce5033635d760beb72d00",
    "kodim06.png": "b301f74c83f100007f55947812a2550601b3fb5a5e8b997b44f69f44cba1a584",
    "kodim07.png": "c0001be41cdf110c41d0c361b1c150e2ef94d6d12f43ca7376b032b579467e18",
    "kodim08.png": "32d2bfe018e9b20dbbb36d8f1083de5407eb5e9b1654e973199be4941bcff437",
    "kodim09.png": "6b40f359b0c11c9fc3ed67981b5893011592dcbf377a65c80bcbf588d86c4811",
    "kodim10.png": "b17c59eb11f048775cf5967025bddf4ca91a4d29bb4a3b58a2d06b4f1df222c5",
    "kodim11.png": "40ecaf92473aee15449590bb6321f16d72fbdb19697728ca1565c69148cdd515",
    "kodim12.png": "d8e72c00387888051df1b0c1ea7e92e26e8a18b0aca710f0856ebbae0cda5a5d",
    "kodim13.png": "1afa15848609f07784aae95cbf73f254d0dd5b16cc2645f17cd28abbd495e605",
    "kodim14.png": "40d6457cce2e646bfce89bec12a29b7c6a3cda291a18f74ff1ec6c2876fd6c5b",
    "kodim15.png": "bef72664fabbfd8476f021c1a387a5f1270ad616daa67a6934b7ffed1495c251",
    "kodim16.png": "fcfebf20dae7c1ead9567ef52655c5a0282fa117c79b8ef7a7a39c136867a9f6",
    "kodim17.png": "78ed465a052269c97a07ac75a1ddffb570e5523ef5f2eb67ad15340a12e1992e",
    "kodim18.png": "016bc77cbfcf863893b5bd26968775f2c668a78f4a908033cf332b90c70e5382",
    "kodim19.png": "0b8d59998d424772316d579ece201b4431bfbecf75da6a4df4c44d66bb831ffe",
    "kodim20.png": "ed49cf6afae30adb3c0d361bfba68d5385f8e66e0fb61bf8dd822390369c51a5",
    "kodim21.png": "3acf4e9dc912cb5c0670f0aa7244d5108d69365cf84180171063f7b2c64af7bf",
    "kodim22.png": "fe0cb7cba1cd3301a92516b753a4591fc8af38a1b57d87dc7feea2974a186afc",
    "kodim23.png": "9305902457f985e6fd0bda4303e6533a84b18e392090b217c48e60cd71b7bad9",
    "kodim24.png": "1d36a4dfdbee25c0c585a820e5c664d054a10dff77cf6d856dca7e9e8609dcde",
}
"""Per file: sha256 of b"WxH:" + its RGB pixels (computed from the suite as
github.com/Zelex/images@0b8a89d keeps it; the same pixels as r0k.us's PNGs)."""

KODAK_SOURCES = (
    "https://r0k.us/graphics/kodak/kodak/{name}",
    "http://r0k.us/graphics/kodak/kodak/{name}",
)
"""Where the files are looked for, in order (``{name}``: kodim01.png ... kodim24.png)."""

DEFAULT_DEST = Path.home() / ".cache" / "semlink" / "data" / "kodak"


class DataError(RuntimeError):
    """A data set could not be fetched or did not check out; the message says what to do."""


def pixels_sha256(data: bytes) -> str:
    """The pinned kind of hash: sha256 of b"WxH:" and the decoded RGB rows."""
    with Image.open(io.BytesIO(data)) as im:
        rgb = np.asarray(im.convert("RGB"))
    return hashlib.sha256(f"{rgb.shape[1]}x{rgb.shape[0]}:".encode() + rgb.tobytes()).hexdigest()


def _download(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "semlink-data"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return bytes(response.read())


def fetch_kodak(
    dest: Path = DEFAULT_DEST,
    source: Path | None = None,
    urls: Sequence[str] = KODAK_SOURCES,
    timeout: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """The 24 Kodak PNGs, checked, in ``dest`` (returned). ``source``: a folder to copy
    them from instead of downloading. Files already in ``dest`` that check out are kept.
    :class:`DataError` names the file and the way out when a picture is missing, cannot be
    downloaded or does not match its pinned pixels."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as staging:
        for name, expected in KODAK_PIXELS_SHA256.items():
            target = dest / name
            if target.exists() and pixels_sha256(target.read_bytes()) == expected:
                continue
            data = _fetch_one(name, source, urls, timeout)
            if pixels_sha256(data) != expected:
                where = source / name if source is not None else "the download"
                raise DataError(
                    f"{name} from {where} does not have the Kodak suite's pixels (pinned "
                    f"sha256 {expected[:16]}...); use an untouched copy of the suite"
                )
            (Path(staging) / name).write_bytes(data)
            if progress is not None:
                progress(name)
        for staged in Path(staging).iterdir():
            shutil.move(str(staged), dest / staged.name)
    return dest


def _fetch_one(name: str, source: Path | None, urls: Sequence[str], timeout: float) -> bytes:
    if source is not None:
        path = source / name
        if not path.is_file():
            raise DataError(f"{path} does not exist: --from needs a folder with kodim01-24.png")
        return path.read_bytes()
    failures = []
    for template in urls:
        url = template.format(name=name)
        try:
            return _download(url, timeout)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
    raise DataError(
        f"could not download {name} ({'; '.join(failures)}). Where this machine cannot reach "
        f"them, download the 24 PNGs elsewhere (http://r0k.us/graphics/kodak/) and run "
        f"`semlink data kodak --from DIR`: each is checked against its pinned pixels"
    )

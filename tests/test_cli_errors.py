"""A user mistake on the command line ends in one clear line and exit status 2, never a
traceback, and before any work: output paths and extensions are checked first, a cut-short
packet is called truncated, and --help reads as sentences."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import skimage.data
from click.testing import Result
from PIL import Image
from typer.testing import CliRunner

from semlink.cli import app
from semlink.cli._common import _paragraphs
from semlink.packet import Layer, Packet, PacketTruncatedError, parse, serialize

runner = CliRunner()


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "cat.png"
    Image.fromarray(skimage.data.chelsea()[::2, ::2][:96, :128]).save(path)
    return path


@pytest.fixture(scope="module")
def packet(photo: Path) -> Path:
    path = photo.with_suffix(".slk")
    result = runner.invoke(app, ["encode", str(photo), "-o", str(path), "--bpp", "0.4"])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """encode and decode must not run: the mistake is found before the work."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the work ran before the output was checked")

    monkeypatch.setattr("semlink.codec.Codec.encode", refuse)
    monkeypatch.setattr("semlink.codec.Codecs.decode", refuse)


def fails_clearly(result: Result, *expected: str) -> str:
    """One error line, exit status 2, no traceback; returns the output."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for text in expected:
        assert text in result.output, result.output
    return result.output


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may create files in (root ignores permissions: /sys refuses it)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # root
            folder = Path("/sys")
            try:
                (folder / "semlink-probe").open("ab").close()
            except OSError:
                pass
            else:
                pytest.skip("no unwritable folder on this machine")
        yield folder
    finally:
        (tmp_path / "locked").chmod(0o700)


def test_encode_to_a_missing_folder_fails_before_encoding(
    photo: Path, tmp_path: Path, no_work: None
) -> None:
    out = tmp_path / "missing_dir" / "x.slk"
    result = runner.invoke(app, ["encode", str(photo), "-o", str(out)])
    fails_clearly(result, f"cannot write {out}", "missing_dir does not exist")


def test_decode_to_a_missing_folder_fails_before_decoding(
    packet: Path, tmp_path: Path, no_work: None
) -> None:
    out = tmp_path / "missing_dir" / "out.png"
    result = runner.invoke(app, ["decode", str(packet), "-o", str(out)])
    fails_clearly(result, f"cannot write {out}", "does not exist")


def test_unwritable_outputs_fail_before_the_work(
    photo: Path, packet: Path, unwritable: Path, no_work: None
) -> None:
    result = runner.invoke(app, ["encode", str(photo), "-o", str(unwritable / "x.slk")])
    fails_clearly(result, f"cannot write {unwritable / 'x.slk'}", "ermission denied")
    result = runner.invoke(app, ["decode", str(packet), "-o", str(unwritable / "x.png")])
    fails_clearly(result, f"cannot write {unwritable / 'x.png'}", "ermission denied")


def test_an_output_that_is_a_folder_fails(
    photo: Path, packet: Path, tmp_path: Path, no_work: None
) -> None:
    fails_clearly(runner.invoke(app, ["encode", str(photo), "-o", str(tmp_path)]), "is a folder")
    fails_clearly(runner.invoke(app, ["decode", str(packet), "-o", str(tmp_path)]), "is a folder")


@pytest.mark.parametrize("name", ["out.txt", "out.xbm", "out"])
def test_decode_to_a_name_pillow_cannot_write_lists_the_extensions(
    packet: Path, tmp_path: Path, no_work: None, name: str
) -> None:
    result = runner.invoke(app, ["decode", str(packet), "-o", str(tmp_path / name)])
    fails_clearly(result, "cannot write an image to", ".png, .webp, .jpg", ".tiff", ".qoi")
    assert not (tmp_path / name).exists()


def test_decode_writes_the_format_its_extension_names(packet: Path, tmp_path: Path) -> None:
    for name, image_format in (("out.webp", "WEBP"), ("OUT.JPG", "JPEG"), ("out.tif", "TIFF")):
        result = runner.invoke(app, ["decode", str(packet), "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        with Image.open(tmp_path / name) as image:
            assert image.format == image_format and image.size == (128, 96)


def test_encode_refuses_an_image_name_and_warns_about_other_names(
    photo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "x.png"
    result = runner.invoke(app, ["encode", str(photo), "-o", str(out)])
    fails_clearly(result, "image extension (.png)", "writes a semlink packet", "x.slk")
    assert not out.exists()
    # The photo itself as the output: refused before it is overwritten.
    before = photo.read_bytes()
    fails_clearly(runner.invoke(app, ["encode", str(photo), "-o", str(photo)]), "cat.slk")
    assert photo.read_bytes() == before
    out = tmp_path / "x.bin"
    result = runner.invoke(app, ["encode", str(photo), "-o", str(out), "--bpp", "0.4"])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "*.slk" in result.output
    assert parse(out.read_bytes()).width == 128


def test_a_truncated_packet_is_called_truncated(packet: Path, tmp_path: Path) -> None:
    data = packet.read_bytes()
    cut = tmp_path / "cut.slk"
    cut.write_bytes(data[:100])
    expected = f"packet is truncated: 100 bytes, layer 0 says {len(data)}"
    fails_clearly(runner.invoke(app, ["decode", str(cut), "-o", str(tmp_path / "x.png")]), expected)
    fails_clearly(runner.invoke(app, ["info", str(cut)]), expected)
    assert not (tmp_path / "x.png").exists()


def test_every_cut_inside_a_layer_is_truncated_and_garbage_is_not_a_packet() -> None:
    packet = Packet(
        640, 480, 0, 0xDEADBEEF, 0, (Layer(0, 1, bytes(range(200))), Layer(1, 0, b"caption"))
    )
    wire = serialize(packet)
    first = len(serialize(Packet(640, 480, 0, 0xDEADBEEF, 0, packet.layers[:1])))
    for cut in range(first - 200, len(wire)):
        if cut == first:
            continue  # between the layers: a whole packet with one layer
        with pytest.raises(PacketTruncatedError, match=f"packet is truncated: {cut} bytes, layer"):
            parse(wire[:cut])
    with pytest.raises(PacketTruncatedError, match=f"layer 1 says {len(wire)}"):
        parse(wire[:-1])
    with pytest.raises(PacketTruncatedError, match="header's model fingerprint"):
        parse(wire[:3])
    for garbage in (b"\xff\xff\xff", b"\xff\x00garbage", b"\x08\x01 not a packet"):
        with pytest.raises(Exception, match="not a semlink packet") as info:
            parse(garbage)
        assert not isinstance(info.value, PacketTruncatedError)


def test_an_image_or_a_folder_given_as_a_packet(photo: Path, tmp_path: Path) -> None:
    expected = (f"{photo} is a PNG image, not a semlink packet", "semlink encode")
    fails_clearly(runner.invoke(app, ["info", str(photo)]), *expected)
    fails_clearly(
        runner.invoke(app, ["decode", str(photo), "-o", str(tmp_path / "x.png")]), *expected
    )
    fails_clearly(runner.invoke(app, ["info", str(tmp_path)]), f"cannot read {tmp_path}")
    result = runner.invoke(app, ["decode", str(tmp_path), "-o", str(tmp_path / "x.png")])
    fails_clearly(result, f"cannot read {tmp_path}")


def _commands(typer_app: object) -> Iterator[tuple[list[str], object]]:
    """([group, command], callback) of every command, groups included, recursively."""
    for command in typer_app.registered_commands:  # type: ignore[attr-defined]
        yield [command.name], command.callback
    for group in typer_app.registered_groups:  # type: ignore[attr-defined]
        for path, callback in _commands(group.typer_instance):
            yield [group.name, *path], callback


def test_help_reads_as_sentences() -> None:
    env = {"COLUMNS": "400"}
    commands = list(_commands(app))
    assert len(commands) >= 15
    groups = {tuple(path[:-1]) for path, _ in commands}
    listings = {group: runner.invoke(app, [*group, "--help"], env=env).output for group in groups}
    for path, callback in commands:
        paragraphs = _paragraphs(inspect.getdoc(callback) or "").split("\n\n")
        # The command's listing in its group shows its first paragraph on one line ...
        assert paragraphs[0] in listings[tuple(path[:-1])], (path, paragraphs[0])
        # ... and its own --help every paragraph, each on one line.
        own = runner.invoke(app, [*path, "--help"], env=env)
        assert own.exit_code == 0, own.output
        for paragraph in paragraphs:
            assert paragraph in own.output, (path, paragraph)
    for recipe in ("restorer", "perceptual"):
        own = runner.invoke(app, ["train", recipe, "--help"], env=env).output
        assert "--ship-to" not in own and "--ship DIR evaluates" in own and "--ship " in own

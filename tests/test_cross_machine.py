"""Learned reference codecs across machines (issue 13.2).

Their entropy coding reads floating-point network outputs (CDF tables from ``update()``,
scale indexes from the hyper-synthesis), so an encoder and a decoder whose arithmetic
differs (another CPU vector capability, another thread count) could rebuild other latents
than were coded. Every such codec id is encoded under ``ATEN_CPU_CAPABILITY=default`` with one
torch thread (a subprocess) and decoded here, under the machine's native capability: the
decoder gives the encoder's picture (within float noise of the synthesis network) or refuses
the layer with ``EntropyMismatchError`` (DATA_LOSS), never another picture.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from semlink.models.codecs import (
    LearnedCodec,
    LearnedCodecConfig,
    _ready,
    architecture_digest,
    build,
    listing_digest,
    tiny_codecs,
    tiny_digest,
)
from semlink.packet import EntropyMismatchError
from semlink.serving.errors import message_of, status_for
from semlink.streams.reference import LEARNED, ReferenceCodec, decode_reference, pack_learned
from semlink.streams.reference.base import small_size

ROOT = Path(__file__).resolve().parent.parent
K = 128  # the payload's scale: the coded picture is half the packet's width and height


def learned_codecs() -> list[LearnedCodec]:
    """One tiny random model per learned codec id: the two compressai pixel codecs and a
    scale hyperprior over the packaged TAEF2's latents."""
    from semlink.models.taef2 import packaged_taef2

    taef2 = packaged_taef2()
    assert taef2 is not None, "the package ships TAEF2 (issue 13.3)"
    config = LearnedCodecConfig(architecture="taef2-latent-hyperprior", quality=1, N=8, M=12)
    torch.manual_seed(2)
    model = build(config)
    latent = _ready(config, model, architecture_digest(f"test {config}", model), taef2)
    return [*tiny_codecs(0), latent]


def picture() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.chelsea()[::5, ::5])  # 91 x 60


_ENCODER = """
import json, sys
import numpy as np
import torch
from tests.test_cross_machine import K, learned_codecs, picture
from semlink.streams.reference import LEARNED, pack_learned
out = {"capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}
image = picture()
for codec_id, codec in zip(LEARNED, learned_codecs(), strict=True):
    coded = codec.compress(image)
    h, w = image.shape[:2]
    np.save(f"{sys.argv[1]}/{int(codec_id)}.npy", codec.decompress(coded, w, h))
    out[int(codec_id)] = pack_learned(K, 0, *coded).hex()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def encoded_elsewhere(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """Packets and the encoder's own reconstructions, made under ATEN_CPU_CAPABILITY=default
    with one thread."""
    where = tmp_path_factory.mktemp("encoded")
    env = {
        **os.environ,
        "ATEN_CPU_CAPABILITY": "default",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", _ENCODER, str(where)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), where


@pytest.mark.slow
@pytest.mark.parametrize("codec_id", [int(c) for c in LEARNED])
def test_decoding_under_another_capability_gives_the_picture_or_data_loss(
    encoded_elsewhere: tuple[dict[str, str], Path], codec_id: int
) -> None:
    packets, where = encoded_elsewhere
    assert packets["capability"] == "DEFAULT" and packets["threads"] == 1
    here = torch.backends.cpu.get_cpu_capability()
    image = picture()
    h, w = image.shape[:2]
    payload = bytes.fromhex(packets[str(codec_id)])
    assert payload[0] == K and len(payload) >= 7
    codecs = learned_codecs()
    try:
        # The packet describes the full-size picture, whose half the layer codes.
        decoded = decode_reference(codec_id, payload, 2 * w, 2 * h, codecs)
    except EntropyMismatchError as exc:
        assert status_for(exc) == grpc.StatusCode.DATA_LOSS
        assert "floating-point arithmetic" in message_of(exc)
        print(f"codec {codec_id}: encoded under DEFAULT, refused under {here}: {exc}")
        return
    assert decoded.shape[1::-1] == small_size(2 * w, 2 * h, K) == (w, h)
    encoder_saw = np.load(where / f"{codec_id}.npy")
    diff = np.abs(decoded.astype(int) - encoder_saw.astype(int))
    # The same integer latents went through a float synthesis network on both ends.
    assert diff.max() <= 2, f"codec {codec_id}: max difference {diff.max()} levels"
    print(
        f"codec {codec_id}: encoded under DEFAULT/1 thread, decoded under {here}/"
        f"{torch.get_num_threads()} threads: max difference {diff.max()} level(s)"
    )


@pytest.mark.parametrize("codec_id", [int(c) for c in LEARNED])
def test_other_entropy_parameters_are_refused_not_decoded(codec_id: int) -> None:
    """A decoder whose hyper-synthesis computes other scales (here: one weight nudged, as
    other arithmetic would) refuses the layer instead of decoding other latents."""
    image = picture()
    h, w = image.shape[:2]
    index = list(LEARNED).index(ReferenceCodec(codec_id))
    encoder = learned_codecs()[index]
    payload = pack_learned(K, 0, *encoder.compress(image))
    decoder = learned_codecs()
    with torch.no_grad():
        for parameter in decoder[index].model.h_s.parameters():
            parameter.mul_(1.5)
    decoder[index]._h_s64 = None  # the float64 copy is made from the nudged weights
    with pytest.raises(EntropyMismatchError, match="would give a") as caught:
        decode_reference(codec_id, payload, 2 * w, 2 * h, decoder)
    assert caught.value.packet_check == int.from_bytes(payload[2:6], "big")
    assert caught.value.decoder_check != caught.value.packet_check
    # The same decoder with the encoder's models decodes it.
    decode_reference(codec_id, payload, 2 * w, 2 * h, learned_codecs())


def test_the_check_is_counted_in_the_payload() -> None:
    image = picture()
    h, w = image.shape[:2]
    coded = tiny_codecs(0)[0].compress(image)
    payload = pack_learned(K, 0, *coded)
    # scale, model index, 4-byte check, 1-byte varint len(z), z, y: every byte is in it.
    assert len(payload) == 2 + 4 + 1 + len(coded.z) + len(coded.y)
    small = decode_reference(int(ReferenceCodec.HYPERPRIOR), payload, 2 * w, 2 * h, tiny_codecs())
    assert small.shape == (h, w, 3)


def test_the_layer_format_enters_the_model_digests(tmp_path: Path) -> None:
    """Packets of the format before the check are refused as made for another model set."""
    codecs = tiny_codecs(0)
    before = hashlib.sha256("".join(c.digest for c in codecs).encode()).hexdigest()
    assert tiny_digest(codecs) != before
    (tmp_path / "manifest.json").write_text("{}")
    assert listing_digest(tmp_path) != hashlib.sha256(b"{}").hexdigest()

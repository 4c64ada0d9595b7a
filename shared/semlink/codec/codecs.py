"""The codec as an object built from its components (diffusers' ``Pipeline(**components)``).

:class:`Codec` is one profile's encoder and decoder over that profile's models
(:class:`~semlink.resolver.Models`); :class:`Codecs` holds every profile's for one process
(a :class:`~semlink.resolver.Resolver`), encoding with the profile asked for and decoding
each packet with the models its header names. Both are built once where a program starts
(a command, a service's ``main``, a Ray replica, a test fixture) and passed on: nothing
below picks models behind the caller's back.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from semlink.budget import Budget
from semlink.codec import batch, decoder, encoder
from semlink.codec.results import DecodeCall, DecodeResult, EncodeResult, ObjectHint
from semlink.config import Settings
from semlink.packet import Packet
from semlink.profiles import Profile, get_profile
from semlink.resolver import Models, Resolver


class _Decodes(ABC):
    """The decode calls, over the models :meth:`_pick` chooses for a packet's profile."""

    @abstractmethod
    def _pick(self, profile: Profile) -> Models: ...

    def decode(
        self,
        data: bytes | Packet,
        *,
        check: Callable[[], None] | None = None,
        steps: int | None = None,
        seed: int | None = None,
        restorer: bool | None = None,
        max_pixels: int | None = None,
        realism: float | None = None,
    ) -> DecodeResult:
        """Rebuild the image from a packet (bytes or parsed), using whatever layers it holds.

        Raises a ``semlink.packet.PacketError`` subclass for malformed, damaged,
        unknown-version or wrong-model packets. ``check`` is called between stages; a
        service passes one that raises once the caller's deadline has passed. ``steps`` and
        ``seed`` override DynDiff's step count and the header's seed for generative
        profiles. ``restorer=False`` upsamples lite's reference with Lanczos instead of the
        learned restorer (default: the models' choice, ``SEMLINK_LITE_RESTORER``); a packet
        written for other models is refused. ``max_pixels``: the largest picture the header
        may claim (default: the models' settings, ``SEMLINK_MAX_DECODE_PIXELS``); a larger
        one raises ``PacketLimitError`` before anything is allocated or any model loaded.
        ``realism`` (0 fidelity .. 1 texture) overrides the header's for lite's learned
        restorer.
        """
        decoding = decoder.read_layers(
            data, self._pick, check=check, restorer=restorer, max_pixels=max_pixels, realism=realism
        )
        reference = None
        if decoding.small is not None:  # upsampled last: the learned restorer reads the segmap
            start = time.perf_counter()
            reference = decoder.upsample(decoding)
            decoding.result.stage_seconds["reference"] += time.perf_counter() - start
        return decoder.finish(decoding, reference, steps, seed, check)

    def decode_batch(
        self,
        calls: Sequence[bytes | Packet | DecodeCall],
        *,
        restorer: bool | None = None,
        max_pixels: int | None = None,
        threads: int | None = None,
    ) -> list[DecodeResult | Exception]:
        """:meth:`decode` for several packets at once, each result what ``decode`` gives
        for that packet alone, or the exception it raises: one packet's error never fails
        another.

        Layers are read on up to ``threads`` threads at once (default: one per packet, at
        most the CPU count), then lite's learned restorer runs once per group of pictures
        of the same size, at most :data:`~semlink.codec.batch.BATCH_PIXELS` pixels a run.
        """
        return batch.decode_batch(
            calls, self._pick, restorer=restorer, max_pixels=max_pixels, threads=threads
        )

    def decode_preview(
        self, data: bytes | Packet, *, max_pixels: int | None = None
    ) -> DecodeResult:
        """A fast first look: the reference layer alone, bilinear upsampling, no other
        layers. ``max_pixels`` bounds the header's picture size as in :meth:`decode`."""
        return decoder.decode_preview(data, self._pick, max_pixels)


class Codec(_Decodes):
    """One profile's codec over that profile's ``models``: ``encode`` writes its packets,
    ``decode`` reads them (a packet written for other models is refused)."""

    def __init__(self, models: Models) -> None:
        self.models = models

    @property
    def profile(self) -> Profile:
        return self.models.profile

    def _pick(self, profile: Profile) -> Models:
        return self.models  # another profile's packet: its fingerprint is refused

    def encode(
        self,
        image: NDArray[np.generic] | Image.Image,
        budget: Budget,
        *,
        caption: str | None = None,
        objects: Sequence[ObjectHint] = (),
        segmap: NDArray[np.integer] | None = None,
        mask_scale: int = 8,
        realism: float | None = None,
        semantics_only: bool = False,
    ) -> EncodeResult:
        """Encode ``image`` into a packet within ``budget``: the whole serialized packet,
        header and framing included. One beyond the largest packet, 4 MiB, is that size.

        Profiles that extract (``sedic``) caption, ground and segment the image themselves
        when given neither ``caption`` nor ``objects``. Hints (caption, objects most
        salient first, segmentation map) are coded first and dropped from the least salient
        object up if they alone would overflow the budget; the reference image takes every
        remaining byte. ``realism`` (profiles with the learned restorer, from 0 for
        fidelity to 1 for texture) is written into the header for the decoder (default:
        the shipped restorer's chosen value).

        A budget too small for any picture of ``image`` is a :class:`BudgetError` that
        names the smallest budget that holds one, unless ``semantics_only`` asks for a
        packet of the hints alone (no reference picture is then coded at all).
        """
        return encoder.encode(
            self.models,
            image,
            budget,
            caption=caption,
            objects=objects,
            segmap=segmap,
            mask_scale=mask_scale,
            realism=realism,
            semantics_only=semantics_only,
        )


class Codecs(_Decodes):
    """Every profile's :class:`Codec` for one process, all over one ``resolver``'s models.
    ``codecs["lite"]`` is lite's; ``decode`` reads a packet of any profile with that
    profile's models."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Codecs:
        """Over the models ``settings`` name (default: the process's,
        :func:`semlink.config.settings`): what a program's start builds."""
        return cls(Resolver.from_settings(settings))

    @property
    def settings(self) -> Settings:
        return self.resolver.settings

    def __getitem__(self, profile: Profile | str | int) -> Codec:
        """The codec of ``profile`` (a profile, its name or its header id); ``KeyError``
        names the known profiles."""
        spec = profile if isinstance(profile, Profile) else get_profile(profile)
        return Codec(self.resolver.models(spec))

    def _pick(self, profile: Profile) -> Models:
        return self.resolver.models(profile)

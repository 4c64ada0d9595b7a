"""The model resolver: which models fill a profile's roles, decided once and passed in.

:class:`Models` holds one profile's models, built from one :class:`~semlink.config.Settings`:
the learned reference codecs, the lite restorer, the diffusion stack, the edge extractor
and the parts of the fingerprint. Each is loaded on first use (an edge encoder never loads
the decoder's diffusion weights, only hashes their manifest) and then held. A profile's
roles (:class:`~semlink.profiles.Role`) say which of them it has; the others are empty.

:class:`Resolver` holds every profile's ``Models`` for one process. A program builds one
where it starts (a command, a service's ``main``, a Ray replica, a test) and hands it to
its codecs (:class:`semlink.codec.Codecs`); nothing below picks models by itself.

This module is where settings turn into models: the loaders it calls (``semlink.models``,
``semlink.restore``, ``semlink.extract``) take directories and configs (the diffusion
decoder's, ``semlink.models.registry``, the settings it is handed) and never read the
process's settings themselves. It imports them when a model is first needed, so importing
the library (and ``semlink --help``) does not import torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import google_crc32c
import imagecodecs
import PIL
import pillow_heif

from semlink.profiles import Profile, Role, get_profile
from semlink.streams.reference.vvc import ffmpeg_version

if TYPE_CHECKING:
    from semlink.config import Settings
    from semlink.extract.pipeline import Extractor
    from semlink.models.catalog import Backend, ExtractionConfig
    from semlink.models.codecs import LearnedCodec
    from semlink.models.registry import DecoderModels
    from semlink.models.taef2 import TAEF2
    from semlink.restore.generative import GenerativeDecoder
    from semlink.restore.pixel import ShippedRestorer


def library_parts(profile: Profile) -> list[str]:
    """The fingerprint's parts that need no model: the profile's name, its package data and
    the codec libraries' versions."""
    parts = [profile.name]
    for name in profile.data_files:
        data = resources.files("semlink").joinpath(name).read_bytes()
        parts.append(f"{name}={hashlib.sha256(data).hexdigest()}")
    # Classical codecs are models too: a reference layer decodes with the library
    # family that wrote it. Major versions only, so bug-fix releases interoperate.
    parts.append(f"pillow={PIL.__version__.split('.')[0]}")
    parts.append(f"pillow_heif={pillow_heif.__version__.split('.')[0]}")
    parts.append(f"imagecodecs={imagecodecs.__version__.split('.')[0]}")
    # VVC's parameter sets are rebuilt by the decoder's own vvenc: the same build
    # (imageio-ffmpeg pins ffmpeg, vvenc and the VVC decoder). The encoder configuration's
    # version travels in the layer's codec id (a decoder refuses versions it lacks), so a
    # new configuration leaves the fingerprint alone and older packets keep decoding; the
    # "1" is the first configuration's, kept so their fingerprint is unchanged.
    parts.append(f"vvc=1:{ffmpeg_version()}")
    return parts


def configured_codecs(settings: Settings) -> list[LearnedCodec]:
    """The learned reference codecs ``settings`` name (tiny ones, or a directory's), with
    their PyTorch analysis transforms; empty when none are configured."""
    from semlink.models.codecs import load_codecs, tiny_codecs

    if settings.tiny_models:
        return tiny_codecs(0)
    if settings.reference_models is not None:
        return load_codecs(settings.reference_models)
    return []


def extraction_config(settings: Settings) -> ExtractionConfig | None:
    """The edge's extraction backends ``settings`` name, or None when the edge has none (and
    is not in tiny mode). Unset fields keep the catalogue's defaults."""
    from semlink.models.catalog import (
        ChatConfig,
        ExtractionConfig,
        GroundingConfig,
        SamConfig,
        TransformersConfig,
    )

    if settings.tiny_models:
        return ExtractionConfig()
    if not settings.captioner:
        return None
    backend, _, source = settings.captioner.partition(":")
    captioner: ChatConfig | TransformersConfig
    if backend == "chat":
        captioner = ChatConfig(
            base_url=source, api_key=settings.chat_api_key, **_set(model=settings.chat_model)
        )
    elif backend == "transformers":
        captioner = TransformersConfig(source=source)
    else:
        raise ValueError(
            f"SEMLINK_CAPTIONER={settings.captioner!r}: use transformers:<dir or hub id> or "
            "chat:<base URL of an OpenAI-compatible API>"
        )
    if settings.sam_checkpoint is None:
        raise ValueError("segmenter 'sam' needs sam_checkpoint (SEMLINK_SAM_CHECKPOINT)")
    return ExtractionConfig(
        captioner=captioner,
        grounder=GroundingConfig(**_set(source=settings.grounder)),
        segmenter=SamConfig(
            checkpoint=settings.sam_checkpoint, **_set(variant=settings.sam_variant)
        ),
    )


def catalogue() -> dict[str, Backend]:
    """Every model backend by public name: the models' own and those the packages above
    register (the edge's extraction, ``semlink.extract.backends``)."""
    from semlink.extract.backends import EXTRACTION_BACKENDS
    from semlink.models.catalog import BACKENDS

    return {**BACKENDS, **{backend.name: backend for backend in EXTRACTION_BACKENDS}}


@contextmanager
def packages_for(profile: Profile) -> Iterator[None]:
    """A model role's third-party package missing (an install without the package's ``full``
    extra, such as the edge encoder's image): a ``WeightsError`` (FAILED_PRECONDITION) that
    says so, instead of a ``ModuleNotFoundError`` from deep inside a loader. The fingerprint
    (computed first by encode and decode) and the reference codecs go through it."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "semlink").split(".")[0] == "semlink":
            raise
        from semlink.models.weights import WeightsError

        raise WeightsError(
            f"the {profile.name} profile needs the Python package {exc.name!r}, which this "
            "install lacks: install requirements.lock (make install) or semlink's `full` extra "
            "(the edge encoder's image holds the lite profile's packages only)"
        ) from exc


def _set(**fields: Any) -> dict[str, Any]:
    """The fields that are set: the others keep the catalogue's defaults."""
    return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True, eq=False)
class Models:
    """One profile's models, built from ``settings``; each loaded on first use, then held.

    ``shipped_dirs``: the shipped learned-codec directories (default: the package's)."""

    profile: Profile
    settings: Settings
    shipped_dirs: tuple[Path, ...] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, profile: Profile | str | int) -> Models:
        return cls(profile if isinstance(profile, Profile) else get_profile(profile), settings)

    def holding(
        self, *, diffusion: DecoderModels | None = None, extractor: Extractor | None = None
    ) -> Models:
        """These models with some already loaded (a caller that loads its own; tests). The
        diffusion models given enter the fingerprint with their own digest."""
        copy = replace(self)
        given = {"diffusion": diffusion, "extractor": extractor}
        copy.__dict__.update({name: model for name, model in given.items() if model is not None})
        return copy

    # -- the roles ------------------------------------------------------------------------
    @cached_property
    def reference_codecs(self) -> tuple[LearnedCodec, ...]:
        """The learned reference codecs both ends hold (they compete in rate control)."""
        with packages_for(self.profile):
            codecs: list[LearnedCodec] = []
            if self.profile.holds(Role.SHIPPED_CODECS):
                from semlink.models.codecs import load_shipped, needs_taef2

                dirs = self._shipped_dirs
                taef2 = self.taef2 if any(needs_taef2(d) for d in dirs) else None
                codecs += load_shipped(dirs, self._taef2_dir, taef2)
            if self.profile.holds(Role.REFERENCE_CODECS):
                codecs += self._configured_codecs
                self._run_analysis_in_onnx(self._configured_codecs)
            return tuple(codecs)

    @cached_property
    def restorer(self) -> ShippedRestorer | None:
        """lite's learned restorer (the package's weights, so every machine decodes with
        the same network), or None: Lanczos (switched off, or the package has none)."""
        if not self.profile.holds(Role.RESTORER) or not self.settings.lite_restorer:
            return None
        from semlink.restore.pixel import load_shipped

        return load_shipped()

    @cached_property
    def diffusion(self) -> DecoderModels | None:
        """The diffusion decoder's models (loads the weights: decoder side only); None for
        profiles without the role, ``WeightsError`` when the settings name none."""
        if not self.profile.holds(Role.DIFFUSION):
            return None
        from semlink.models.registry import decoder_models

        return decoder_models(self.settings)

    @cached_property
    def generative(self) -> GenerativeDecoder | None:
        """The diffusion stack: :attr:`diffusion` with its ORAG pipeline."""
        models = self.diffusion
        if models is None:
            return None
        from semlink.restore.generative import GenerativeDecoder

        return GenerativeDecoder(models)

    @cached_property
    def extractor(self) -> Extractor | None:
        """The edge's captioner, grounder and segmenter; None when the settings name none."""
        config = extraction_config(self.settings) if self.profile.holds(Role.EXTRACTOR) else None
        if config is None:
            return None
        from semlink.extract.pipeline import Extractor

        return Extractor.from_config(config)

    @cached_property
    def taef2(self) -> TAEF2 | None:
        """TAEF2 from the weights directory (``SEMLINK_WEIGHTS_DIR``/taef2), for the TAEF2
        latent codec, which is pinned to those files; the restorer uses the package's."""
        from semlink.models.taef2 import available_taef2

        return available_taef2(self._taef2_dir)

    # -- the fingerprint --------------------------------------------------------------------
    @cached_property
    def digest_parts(self) -> tuple[str, ...]:
        """What the fingerprint covers: library parts, then one digest per model role (the
        weights' manifests, so an edge encoder needs no weights)."""
        with packages_for(self.profile):
            parts = library_parts(self.profile)
            if self.profile.holds(Role.DIFFUSION):
                parts.append(f"diffusion={self._diffusion_digest()}")
            if self.profile.holds(Role.REFERENCE_CODECS):
                parts.append(f"reference={self._reference_digest()}")
            if self.profile.holds(Role.SHIPPED_CODECS):
                from semlink.models.codecs import shipped_digest

                shipped = shipped_digest(self._shipped_dirs)
                if shipped is not None:
                    parts.append(f"shipped={shipped}")
            return tuple(parts)

    @property
    def fingerprint(self) -> int:
        """32-bit fingerprint of the model set: profile name, data, codecs, model weights."""
        return int(google_crc32c.value("|".join(self.digest_parts).encode()))

    # -- helpers ----------------------------------------------------------------------------
    @property
    def _taef2_dir(self) -> Path:
        return self.settings.weights_dir / "taef2"

    @cached_property
    def _shipped_dirs(self) -> tuple[Path, ...]:
        if self.shipped_dirs is not None:
            return self.shipped_dirs
        from semlink.models.codecs import shipped_dirs

        return shipped_dirs()

    @cached_property
    def _configured_codecs(self) -> list[LearnedCodec]:
        return configured_codecs(self.settings)

    def _run_analysis_in_onnx(self, codecs: list[LearnedCodec]) -> None:
        """``SEMLINK_EDGE_ONNX``: the codecs' analysis transforms run in onnxruntime."""
        directory = self.settings.edge_onnx
        if directory is None:
            return
        from semlink.models.onnx_edge import use_onnx
        from semlink.models.weights import WeightsError

        for codec in codecs:
            path = directory / f"{codec.name}.onnx"
            if not path.exists():
                raise WeightsError(
                    f"{path} not found: run `semlink weights export-onnx {directory}` "
                    "with the same models, or unset SEMLINK_EDGE_ONNX"
                )
            if codec.analysis_runner is None:
                use_onnx(codec, path)

    def _diffusion_digest(self) -> str:
        # Tiny models have no manifest (their digest is over their seed and architecture:
        # build them); models given with holding() bring their own digest.
        if self.settings.tiny_models or "diffusion" in vars(self):
            models = self.diffusion
            assert models is not None
            return models.digest
        from semlink.models.registry import weights_digest

        return weights_digest(self.settings)

    def _reference_digest(self) -> str:
        from semlink.models.codecs import listing_digest, tiny_digest

        if self.settings.tiny_models:
            return tiny_digest(self._configured_codecs)
        if self.settings.reference_models is not None:
            return listing_digest(self.settings.reference_models)
        return "none"


class Resolver:
    """Every profile's :class:`Models` for one process, all from one ``Settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._models: dict[int, Models] = {}

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Resolver:
        """From ``settings`` (default: the process's, :func:`semlink.config.settings`)."""
        if settings is None:
            from semlink.config import settings as current

            settings = current()
        return cls(settings)

    def models(self, profile: Profile | str | int) -> Models:
        """The models of ``profile`` (a profile, its name or its header id)."""
        spec = profile if isinstance(profile, Profile) else get_profile(profile)
        found = self._models.get(spec.id)
        if found is None:  # setdefault: two threads asking at once get the same Models
            found = self._models.setdefault(spec.id, Models(spec, self.settings))
        return found

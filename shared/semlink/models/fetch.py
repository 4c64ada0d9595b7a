"""``semlink weights fetch`` / ``verify``: get a profile's weights into a local directory.

From the Hugging Face hub when online (real code, offline it fails with a message that
names --mirror), or from a mirror directory (an air-gapped ground station). Either way
the result gets a sha256 manifest, and only safetensors, JSON and tokenizer text files
are taken (no pickles).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from semlink.models.weights import MANIFEST, WeightsError, verify_manifest, write_manifest

ALLOWED = ("*.safetensors", "*.json", "*.txt", "*.model")


@dataclass(frozen=True)
class HubComponent:
    subfolder: str
    repo_id: str
    repo_subfolder: str | None


SEDIC_COMPONENTS = (
    HubComponent("unet", "stable-diffusion-v1-5/stable-diffusion-v1-5", "unet"),
    HubComponent("vae", "stable-diffusion-v1-5/stable-diffusion-v1-5", "vae"),
    HubComponent("text_encoder", "stable-diffusion-v1-5/stable-diffusion-v1-5", "text_encoder"),
    HubComponent("tokenizer", "stable-diffusion-v1-5/stable-diffusion-v1-5", "tokenizer"),
    HubComponent("scheduler", "stable-diffusion-v1-5/stable-diffusion-v1-5", "scheduler"),
    HubComponent("controlnet", "lllyasviel/control_v11f1e_sd15_tile", None),
)
PROFILE_COMPONENTS = {"sedic": SEDIC_COMPONENTS}


def _components(profile: str) -> tuple[HubComponent, ...]:
    try:
        return PROFILE_COMPONENTS[profile]
    except KeyError:
        known = ", ".join(PROFILE_COMPONENTS)
        raise WeightsError(
            f"profile {profile!r} needs no downloaded weights; ones that do: {known}"
        ) from None


def fetch(profile: str, dest: Path, mirror: Path | None = None) -> dict[str, str]:
    """Put ``profile``'s weights under ``dest`` and write its manifest; return the manifest."""
    dest.mkdir(parents=True, exist_ok=True)
    for component in _components(profile):
        target = dest / component.subfolder
        if mirror is not None:
            source = mirror / component.subfolder
            if not source.is_dir():
                raise WeightsError(f"mirror {mirror} has no {component.subfolder}/ directory")
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(
                source,
                target,
                ignore=lambda _d, names: [
                    n
                    for n in names
                    if not (Path(_d, n).is_dir() or any(Path(n).match(p) for p in ALLOWED))
                ],
            )
            continue
        try:
            from huggingface_hub import snapshot_download

            patterns = [
                f"{component.repo_subfolder}/{p}" if component.repo_subfolder else p
                for p in ALLOWED
            ]
            snapshot_download(component.repo_id, allow_patterns=patterns, local_dir=dest / ".hub")
        except Exception as exc:
            raise WeightsError(
                f"could not download {component.repo_id} ({type(exc).__name__}: {exc}); "
                f"without internet, copy the weights to a directory and run "
                f"`semlink weights fetch --mirror DIR`"
            ) from exc
        source = dest / ".hub" / (component.repo_subfolder or "")
        shutil.copytree(source, target, dirs_exist_ok=True)
    shutil.rmtree(dest / ".hub", ignore_errors=True)
    (dest / MANIFEST).unlink(missing_ok=True)
    return write_manifest(dest)


def verify(dest: Path) -> dict[str, str]:
    return verify_manifest(dest)

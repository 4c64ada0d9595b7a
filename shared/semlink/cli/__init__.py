"""The ``semlink`` command line, one module per command group.

- ``codec``: ``encode`` (image -> packet), ``decode`` (packet -> image), ``info`` (a packet's
  header and layers)
- ``eval``: lite against classical codecs at equal real bytes on a folder of images
- ``weights``: ``fetch``, ``perceptual``, ``verify``, ``synth``, ``list``, ``export-onnx``
- ``train``: ``restorer``, ``perceptual``, ``latent-restorer``, ``ref-codec``,
  ``latent-codec``, ``size-model``
- ``demo``: encoder, link and decoder services with sample photos pushed through them
- ``data``: ``kodak`` (the evaluation suite, downloaded or copied and checked)

``serve`` (``encoder``, ``decoder``, ``link``) belongs to the deployables: ``services/cli.py``
adds it to an app built here, and that app is the ``semlink`` console script. The library
never imports services/. Modules import heavy libraries (torch, the codecs) inside their
commands, so ``semlink --help`` starts cold without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

HELP = (
    "semlink: semantic image coding for bandwidth-starved links.\n\n"
    "Command groups: codec (encode, decode, info), eval, "
    "weights (fetch, perceptual, verify, synth, list, export-onnx), train (restorer, "
    "perceptual, latent-restorer, ref-codec, latent-codec, size-model), "
    "demo, data (kodak), and serve (encoder, decoder, link), which the services add."
)


def build_app() -> typer.Typer:
    """A fresh root app with the library's command groups registered."""
    import typer

    from semlink.cli import codec, data, demo, train, weights
    from semlink.cli import eval as evaluation
    from semlink.cli._common import reflow_help

    app = typer.Typer(help=HELP, no_args_is_help=True)
    codec.register(app)
    evaluation.register(app)
    weights.register(app)
    train.register(app)
    demo.register(app)
    data.register(app)
    reflow_help(app)
    return app


def __getattr__(name: str) -> Any:
    """``app``, the library's commands (everything but ``serve``), built on first use: a
    plain ``semlink info`` (``semlink.cli.info``) imports this package without typer."""
    if name == "app":
        app = globals()["app"] = build_app()
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "build_app"]

"""``python -m semlink.cli``: the library's commands (``serve`` comes with ``services.cli``)."""

from semlink.cli import app

app()

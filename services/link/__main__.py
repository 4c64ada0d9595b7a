"""``python -m services.link [options]`` = ``semlink serve link [options]``."""

from services.cli import serve_main

serve_main("link")

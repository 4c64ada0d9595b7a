"""``python -m services.link [options]`` = ``semlink serve link [options]``."""

from semlink.cli import serve_main

serve_main("link")

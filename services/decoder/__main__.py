"""``python -m services.decoder [options]`` = ``semlink serve decoder [options]``."""

from services.cli import serve_main

serve_main("decoder")

"""``python -m services.decoder [options]`` = ``semlink serve decoder [options]``."""

from semlink.cli import serve_main

serve_main("decoder")

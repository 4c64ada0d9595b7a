"""``python -m services.encoder [options]`` = ``semlink serve encoder [options]``."""

from services.cli import serve_main

serve_main("encoder")

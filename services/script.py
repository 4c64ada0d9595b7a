"""The ``semlink`` console script.

A plain ``semlink info PACKET`` is answered before typer is imported (``semlink.cli.info``:
typer's parameter parsing builds pydantic adapters, which cost more than the command, and
``semlink info`` should start in well under half a second); every other command line goes to
the typer app in ``services.cli``, which is the command line itself (options, help, errors).
"""

from __future__ import annotations

import sys


def main() -> None:
    from semlink.cli.info import answer

    status = answer(sys.argv[1:])
    if status is not None:
        sys.exit(status)
    from services.cli import app

    app()


if __name__ == "__main__":
    main()

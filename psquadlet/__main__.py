"""Allow ``python -m psquadlet`` where the console script is not on PATH."""

from psquadlet.cli import main

main()

"""``python -m socklab.cli``."""

from socklab.cli import main

main()

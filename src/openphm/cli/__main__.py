"""`python -m openphm.cli`: the same as the `openphm` console script."""

from openphm.cli import main

main()

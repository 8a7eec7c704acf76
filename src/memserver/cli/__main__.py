"""`python -m memserver.cli`: the command line."""

from memserver.cli import main

main()

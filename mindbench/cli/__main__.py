"""`python -m mindbench.cli ...`, as the tests and CI call it."""

from mindbench.cli import main

main()

"""`python -m mindbench.cli ...`, as the tests and CI call it."""

from . import main

main()

"""User-facing errors. Each is one line that names the fix; the CLI prints it without a traceback.

They subclass click.ClickException so every command gets that behaviour for free (click is a
light import, unlike torch).
"""

import click


class MindbenchError(click.ClickException):
    """A problem the user can fix; the message says how."""


class InputError(MindbenchError):
    """A command-line value that cannot work (unknown suite or precision, unwritable --out, a
    broken suite file), found before anything starts: exit 2, like click's own usage errors, so
    scripts can tell "you asked for something impossible" from "the run went wrong" (exit 1)."""
    exit_code = 2


class ModelNotFoundError(MindbenchError):
    pass


class GatedModelError(MindbenchError):
    pass


class OfflineError(MindbenchError):
    pass


class MissingDependencyError(MindbenchError):
    pass


class PrecisionError(MindbenchError):
    pass


class OutOfMemoryError(MindbenchError):
    """Raised when loading or running does not fit; carries the user's document's advice."""

    ADVICE = ("try --precision int4 (or load_in_4bit=True), a smaller model, or fewer tokens "
              "(max_tokens); close other programs using the GPU")

    def __init__(self, what: str):
        super().__init__(f"out of memory while {what}: {self.ADVICE}")

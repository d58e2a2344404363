"""User-facing errors. Each is one line that names the fix; the CLI prints it without a traceback.

Plain exceptions, so the library never imports click: the command layer (mindbench/cli, its
`Command` class) turns one into click's one-line "Error: ..." with the error's exit_code.
"""


class MindbenchError(Exception):
    """A problem the user can fix; the message says how. Exit 1 from the CLI unless a subclass
    says otherwise."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def format_message(self) -> str:
        # the name click's exceptions use, which callers (and tests) already read
        return self.message


class InputError(MindbenchError):
    """A command-line value that cannot work (unknown suite or precision, unwritable --out, a
    broken suite file), found before anything starts: exit 2, like click's own usage errors, so
    scripts can tell "you asked for something impossible" from "the run went wrong" (exit 1)."""

    exit_code = 2


class ModelNotFoundError(InputError):
    """A model the user named that is not there (unknown id, missing folder or file): exit 2."""


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

    ADVICE = (
        "try --precision int4 (or load_in_4bit=True), a smaller model, or fewer tokens "
        "(max_tokens); close other programs using the GPU"
    )

    def __init__(self, what: str):
        super().__init__(f"out of memory while {what}: {self.ADVICE}")


def is_oom(e: BaseException) -> bool:
    """Out of memory, however it was said: ours, Python's MemoryError, torch's OutOfMemoryError
    (matched by name, so torch need not be imported), or a RuntimeError whose text says so (CUDA
    and bitsandbytes: "out of memory"; torch's CPU allocator: "can't/cannot allocate memory").
    The one test the worker, the loader's fallback and the engine's guard share."""
    if isinstance(e, (MemoryError, OutOfMemoryError)) or type(e).__name__ == "OutOfMemoryError":
        return True
    low = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in low or "allocate memory" in low)


def faults(precision: str | None = None) -> list[str]:
    """Fault injection for tests: the kinds in MINDBENCH_FAULT="kind[@precision],..." that apply
    to a cell at `precision` (None: every kind, whatever precision it names), in the order given.
    The one parser of the variable (the worker's faults and the engine's corrupt_prompt)."""
    import os

    out = []
    for item in os.environ.get("MINDBENCH_FAULT", "").split(","):
        kind, _, only = item.strip().partition("@")
        if kind and (precision is None or not only or only == precision):
            out.append(kind)
    return out

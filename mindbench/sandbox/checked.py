"""Checked programs: the model's code answers calls in the sandbox; trusted tests judge the answers.

A verdict computed in the same interpreter as the code it judges can be forged by that code (an
object whose __eq__ says yes, a patched assert helper, a frame rewritten through sys.settrace, a
proof token read from /proc/self/fd). So a checked program is two processes:

- the program, in the sandbox (sandbox/serve.py): it runs the model's code, then only answers
  calls; each return value crosses back as plain data (sandbox/wire.py: None, bool, int, float,
  complex, str, bytes and lists/tuples/dicts/sets of them, depth and size capped), or it fails
  with the reason ("add returned a _ANY, not data");
- the checker (sandbox/judge.py), a separate interpreter that never executes the model's code:
  it runs the `prelude` (trusted code the tests use, such as a HumanEval prompt's helpers, taken
  from the task, never from the model) and the `tests`, in which each function the program
  defined is a proxy whose calls go to the sandbox. Asserts, tolerances and helpers therefore run
  on decoded built-in values, in a process the model cannot reach.

The verdict is the checker's, sent to the runner on a pipe of its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Checked:
    """What to run and how to judge it.

    `code`: the model's program (run as __main__ in the sandbox).
    `tests`: trusted test code run by the checker; the program's functions are in its namespace
      (those the prelude defines are the prelude's unless named in `need`). Empty: the program
      only has to load (run to its end) without an error.
    `prelude`: trusted code run by the checker before the tests.
    `need`: names the program must define; the tests get the program's, never the prelude's.
    `answer`: a variable of the program whose value is fetched as data (SandboxResult.answer).
    `packages`: installed distributions the sandbox shows the program (e.g. ("pandas",));
      by default it sees the standard library only.
    `objects`: the tests may instantiate the program's classes (`s = Stack(); s.push(1)`): the
      instance stays in the sandbox, its methods run there and return data; it has no truth
      value or equality in the tests. Off for the suites, whose tests call functions only."""

    code: str
    tests: str = ""
    prelude: str = ""
    need: tuple[str, ...] = ()
    answer: str | None = None
    packages: tuple[str, ...] = ()
    objects: bool = False

    def layout(self) -> str:
        """The program and its tests as a reader sees them (tests line numbers are the tests')."""
        if not self.tests:
            return self.code
        return f"{self.code.rstrip()}\n\n\n{self.tests.strip()}\n"

    def __str__(self) -> str:
        return self.layout()

"""Checked programs: a pass must prove that the checks ran to their end.

"Exit status 0" is not a verdict: `sys.exit(0)` or `os._exit(0)` in a model's code, at module
level or inside the function under test, ends the program with status 0 before a single assert
ran. So a checked program is run by a fixed wrapper (`_WRAPPER`, written by mindbench, never by a
model) that:

1. keeps the functions it needs (os.write, os.read, os._exit, exec, a copy of the builtins)
   before any model code runs, so patching `print`, `sys.stdout`, `builtins` or `os` afterwards
   changes nothing it uses;
2. runs the model's code, then the checks in their own namespace with pristine builtins (so
   `builtins.abs = lambda x: 0` cannot make `assert abs(got - want) < 1e-6` pass), and for the
   code suite refuses return values whose comparison methods the model's code wrote (an object
   whose `__eq__` always returns True passes any `assert f(x) == y`);
3. catches every exception, SystemExit included (in a `finally`, at module level, anywhere):
   those end with status 1;
4. only after the checks returned, reads a random token from a pipe the sandbox opened for this
   run and writes it on one line with the answer (data suite) straight to file descriptor 1, then
   ends with os._exit(0), so atexit handlers and finalizers of the model's code never run.

The runner (sandbox.run_python) made the token with `secrets` in its own process; it is not in the
program's text, its arguments, its environment or its memory until the checks are over. A pass is
exit 0 *and* that token's line in the output; a forged marker, an early exit of any kind, killing
the runner (contained by the sandbox), or closing/redirecting stdout gives no token line: no pass.

Not covered (and not something a model writes by accident): code that deliberately reaches into
the interpreter while the checks run (reading the token pipe by scanning /proc/self/fd, rewriting
the checks' frames through sys._getframe or sys.settrace, patching attributes of a module the
checks import). Model code and checks share one interpreter, so no in-process check can rule
that out; the sandbox still contains whatever such a program does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

FILENAME = "program.py"  # the name tracebacks show (the model sees them: a short, stable name)
ANSWER_CHARS = 2000      # the tail of the answer's text kept; one short line stays one write


@dataclass(frozen=True)
class Checked:
    """What to run and how it proves success. `code` is the model's program (run as __main__);
    `tests` run after it in a copy of its namespace with pristine builtins (empty: the code only
    has to run to its end); `answer` names a variable of `code` whose str() is reported after the
    proof (SandboxResult.answer); `plain_returns` refuses values of classes whose comparison or
    conversion methods the model's code wrote (for tests that compare return values)."""
    code: str
    tests: str = ""
    answer: str | None = None
    plain_returns: bool = False

    def layout(self) -> str:
        """The program as a reader sees it: code, then tests. Traceback line numbers refer to it."""
        if not self.tests:
            return self.code
        return f"{self.code.rstrip()}\n\n\n{self.tests.strip()}\n"

    def __str__(self) -> str:
        return self.layout()

    def wrapper(self) -> str:
        """The Python source the sandbox runs (argv[1] names the token pipe's descriptor)."""
        layout = self.layout()
        offset = self.code.rstrip().count("\n") + 3  # the tests' first line number in layout, - 1
        cfg = {"code": self.code, "tests": "\n" * offset + self.tests.strip() + "\n" if self.tests else "",
               "answer": self.answer, "plain": self.plain_returns, "layout": layout,
               "filename": FILENAME, "answer_chars": ANSWER_CHARS}
        return _WRAPPER.replace("CFG_JSON", repr(json.dumps(cfg)))


def read_proof(stdout: str, token: str) -> tuple[bool, str | None, str]:
    """(proved, answer, stdout without the proof line) from a checked program's output."""
    lines = stdout.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        head, _, rest = lines[i].partition(" ")
        if head == token:
            try:
                answer = json.loads(rest)
            except ValueError:
                return False, None, stdout
            # the wrapper starts its line with "\n"; drop that too
            before = lines[:i]
            if before and before[-1] == "":
                before = before[:-1]
            return True, answer, "\n".join(before + lines[i + 1:])
    return False, None, stdout


_WRAPPER = r'''
import builtins, json, linecache, os, sys, traceback
CFG = json.loads(CFG_JSON)


def _main(cfg, fd, *, write=os.write, read=os.read, close=os.close, exit_=os._exit, exec_=exec,
          compile_=compile, str_=str, dict_=dict, type_=type, isinstance_=isinstance,
          pristine=dict(builtins.__dict__), print_exc=traceback.print_exception,
          out=sys.stdout, err=sys.stderr, dumps=json.dumps, isfile=os.path.isfile,
          realpath=os.path.realpath):
    prefixes = tuple(realpath(p) + "/" for p in (sys.prefix, sys.base_prefix))
    name = cfg["filename"]
    layout = cfg["layout"]
    linecache.cache[name] = (len(layout), None, layout.splitlines(True), name)
    function = type_(_main)
    special = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__len__",
               "__hash__", "__abs__", "__float__", "__int__", "__index__", "__round__",
               "__contains__", "__iter__", "__getitem__", "__str__", "__repr__", "__format__",
               "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
               "__truediv__", "__rtruediv__", "__neg__", "__class__", "__getattribute__")

    def own(cls):
        # a special method written in Python outside the installed interpreter and libraries
        for attr in special:
            f = cls.__dict__.get(attr)
            code = getattr(f, "__code__", None) or getattr(getattr(f, "__func__", None), "__code__", None)
            if f is not None and (code is None and not type_(f).__module__ in (None, "builtins")
                                  or code is not None and not (isfile(code.co_filename) and
                                  realpath(code.co_filename).startswith(prefixes))):
                return attr
        return None

    def plain(value):
        # the value and what it contains (exact built-in containers only: iterating anything
        # else would run the solution's code), up to 200000 objects
        todo, seen = [value], 0
        while todo and seen < 200000:
            v = todo.pop()
            seen += 1
            for cls in type_(v).__mro__:
                attr = own(cls)
                if attr:
                    raise TypeError("the solution returned a %s whose %s it wrote itself; "
                                    "return built-in values" % (cls.__name__, attr))
            t = type_(v)
            if t in (list, tuple, set, frozenset):
                todo.extend(v)
            elif t is dict:
                todo.extend(v.keys())
                todo.extend(v.values())

    def guard(f):
        def guarded(*args, **kwargs):
            result = f(*args, **kwargs)
            plain(result)
            return result
        guarded.__name__, guarded.__doc__ = f.__name__, f.__doc__
        return guarded

    ns = {"__name__": "__main__", "__builtins__": builtins, "__file__": name}
    try:
        exec_(compile_(cfg["code"], name, "exec"), ns)
        if cfg["tests"]:
            checks = dict_(ns)
            checks["__builtins__"] = dict_(pristine)
            if cfg["plain"]:
                for k, v in list(checks.items()):
                    if type_(v) is function:
                        checks[k] = guard(v)
            exec_(compile_(cfg["tests"], name, "exec"), checks)
        answer = None
        if cfg["answer"]:
            if cfg["answer"] not in ns:
                raise NameError("the code did not set %r" % cfg["answer"])
            answer = str_(ns[cfg["answer"]])
            if type_(answer) is not str:
                raise TypeError("str() of the answer did not return text")
            answer = answer[-cfg["answer_chars"]:]
        line = b"\n" + read(fd, 64) + b" " + dumps(answer).encode() + b"\n"
    except BaseException as e:
        try:
            if isinstance_(e, SystemExit):
                write(2, b"SystemExit: the program exited before its checks completed\n")
            else:
                print_exc(type_(e), e, e.__traceback__.tb_next, file=err)
                err.flush()
        finally:
            exit_(1)
    for stream in (out, err):  # what the program printed comes before the proof line
        try:
            stream.flush()
        except BaseException:
            pass
    while line:
        line = line[write(1, line):]
    exit_(0)


_fd = int(sys.argv[1])
del sys.argv[1:]  # the model's code sees the argv of a plain `python program.py`
_main(CFG, _fd)
'''

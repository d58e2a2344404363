"""The trusted side of a checked program: the tests, run against calls into the sandbox.

Runs as its own process (`python -I -S`), started by sandbox.run_python and kept for the next
programs; it never executes the model's code. Each task (see main) is JSON: the prelude
(trusted code the tests rely on, e.g. a HumanEval prompt's helper functions, with the entry
point's body left empty), the tests, the names the tests must find in the program, and the
variable to fetch as the answer. Every callable the program defined becomes a `Remote` here:
calling it sends the arguments (data only) to the sandbox and returns the decoded reply, or
raises the exception the model's function raised (a built-in exception type by name, else
RemoteError). The verdict goes to the runner on a pipe of its own, as one JSON object.
"""

from mindbench.sandbox.wire import NotData, WireError, encode, recv, send  # (stripped: run as one source)

TESTS_NAME = "program.py"  # the tests' lines are numbered as in Checked.layout()
PRELUDE_NAME = "prelude.py"


class ProgramFailed(BaseException):
    """The program did not load, or its side of the pipe failed: no test can pass. A
    BaseException, so that a test's `except Exception` cannot swallow it."""


class RemoteError(Exception):
    """An exception the model's function raised that is not a built-in type."""


class Remote:
    """A function of the sandboxed program, as the tests see it."""

    def __init__(self, link, name):
        self._link, self.__name__ = link, name

    def __repr__(self):
        return f"<function {self.__name__} in the sandbox>"

    def __call__(self, *args, _check_only=False, **kwargs):
        try:
            encode([list(args), kwargs])
        except NotData as e:
            what = str(e).replace(", not data", "")
            raise NotData(f"the tests passed {what} to {self.__name__}: only data crosses into the sandbox") from None
        if not _check_only:
            return self._link.ask(["call", self.__name__, list(args), kwargs])


class RemoteClass(Remote):
    """A class of the sandboxed program: calling it makes an instance that stays in the sandbox."""

    def __call__(self, *args, **kwargs):
        Remote.__call__(self, *args, _check_only=True, **kwargs)
        return RemoteObject(
            self._link, self._link.ask(["new", self.__name__, list(args), kwargs], "obj"), self.__name__
        )


class RemoteObject:
    """An instance living in the sandbox. Its attributes are read and its methods called there;
    what they return crosses as data. It has no truth value and no equality of its own: a test
    compares the data its methods return, never the object."""

    def __init__(self, link, index, cls):
        self._link, self._index, self._cls = link, index, cls

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        got = self._link.ask(["attr", self._index, attr], "method")
        return RemoteMethod(self, attr) if got is METHOD else got

    def __repr__(self):
        return f"<{self._cls} object in the sandbox>"

    def _refuse(self, *other):
        raise TypeError(f"a {self._cls} in the sandbox has no truth value or equality here; compare its data")

    __bool__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __hash__ = object.__hash__


class RemoteMethod:
    def __init__(self, obj, name):
        self._obj, self.__name__ = obj, name

    def __call__(self, *args, **kwargs):
        Remote.__call__(self, *args, _check_only=True, **kwargs)
        o = self._obj
        return o._link.ask(["callm", o._index, self.__name__, list(args), kwargs])


METHOD = object()  # the reply to "attr" when the attribute is a method


class Link:
    def __init__(self, rfd, wfd, deadline):
        self.rfd, self.wfd, self.deadline = rfd, wfd, deadline
        self.failure = None  # the first reply that fails the program, even if a test catches it

    def recv(self):
        try:
            return recv(self.rfd, self.deadline)
        except WireError as e:
            if "closed" in str(e):
                raise ProgramFailed("the program ended before the tests finished") from None
            raise ProgramFailed(f"the program failed to answer: {e}") from None

    def ask(self, msg, also=None):
        """Send a request; the value it returns (also: "obj" -> the index, "method" -> METHOD)."""
        import builtins

        try:
            send(self.wfd, msg)
        except OSError:
            raise ProgramFailed("the program exited while the tests were calling it") from None
        reply = self.recv()
        if type(reply) is not list or not reply or reply[0] not in ("ret", "raise", "notdata", also):
            raise ProgramFailed("the program sent a malformed reply")
        if reply[0] == "ret" and len(reply) == 2:
            return reply[1]
        if reply[0] == "obj" and also == "obj" and len(reply) == 2 and type(reply[1]) is int:
            return reply[1]
        if reply[0] == "method" and also == "method" and len(reply) == 1:
            return METHOD
        if reply[0] == "notdata" and len(reply) == 2 and type(reply[1]) is str:
            self.failure = self.failure or NotData(reply[1])
            raise NotData(reply[1])
        if reply[0] == "raise" and len(reply) == 3 and all(type(x) is str for x in reply[1:]):
            cls = getattr(builtins, reply[1], None)
            if not (isinstance(cls, type) and issubclass(cls, Exception)) or issubclass(
                cls, (StopIteration, StopAsyncIteration)
            ):
                cls = RemoteError
            raise cls(f"{msg[1]} raised {reply[1]}: {reply[2]}" if cls is RemoteError else reply[2])
        raise ProgramFailed("the program sent a malformed reply")


def _reason(e, tests):
    """One line: what failed, and where in the tests."""
    import traceback

    where = ""
    for fs in traceback.extract_tb(e.__traceback__):
        if fs.filename == TESTS_NAME and 0 < fs.lineno <= len(tests):
            where = f" at line {fs.lineno}: {tests[fs.lineno - 1].strip()[:160]}"
    msg = str(e).replace("\n", " ")[:300]
    if isinstance(e, ProgramFailed):
        return msg
    if isinstance(e, NotData):
        return msg + where
    return "{}{}{}".format(type(e).__name__, ": " + msg if msg else "", where)


def judge(task, rfd, wfd):
    """Run the tests; return the verdict dict (never raises)."""
    import builtins
    import linecache
    import time
    import traceback

    link = Link(rfd, wfd, time.monotonic() + task["timeout_s"])
    tests = task["tests"] or ""
    for name, text in ((TESTS_NAME, task["layout"]), (PRELUDE_NAME, task["prelude"] or "")):
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)
    verdict = {"ok": False}
    try:
        first = link.recv()
        if type(first) is not list or not first or first[0] not in ("ready", "loadfail"):
            raise ProgramFailed("the program sent a malformed first message")
        if first[0] == "loadfail":
            raise ProgramFailed(f"the program failed before the tests ran: {first[1:]}")
        names, classes = (first + [None, None])[1:3]
        if not all(type(x) is list and all(type(n) is str for n in x) for x in (names, classes)):
            raise ProgramFailed("the program sent a malformed list of names")
        missing = [n for n in task["need"] if n not in names]
        if missing:
            raise ProgramFailed("the program does not define {}".format(", ".join(missing)))
        ns = {"__name__": "__tests__", "__builtins__": builtins}
        if task["prelude"]:
            exec(compile(task["prelude"], PRELUDE_NAME, "exec"), ns)
        for n in names:
            if n in task["need"] or n not in ns:
                ns[n] = (RemoteClass if task["objects"] and n in classes else Remote)(link, n)
        if tests:
            exec(compile(tests, TESTS_NAME, "exec"), ns)
        if task["answer"]:
            verdict["answer"] = link.ask(["get", task["answer"]])
        if link.failure is not None:  # a test caught it; it still fails the program
            raise link.failure
        verdict.update(ok=True, reason="ok")
    except BaseException as e:
        lines = task["layout"].splitlines()
        verdict.update(
            ok=False,
            reason=_reason(e, lines),
            detail="".join(traceback.format_exception(type(e), e, e.__traceback__.tb_next))[-4000:],
        )
    return verdict


def main():
    """Serve tasks from the runner, one at a time, for as long as it keeps the socket open.

    Each task arrives on the socket (fd 0) as a 4-byte length and JSON, with three descriptors
    attached: the program's reply pipe, its call pipe, and the pipe for the verdict. A checker
    outlives a program, so its start-up is paid once per runner thread, not once per program;
    it holds nothing of a program after the verdict but what the trusted tests kept."""
    import json
    import os
    import resource
    import socket
    import sys

    sock = socket.socket(fileno=0)
    sys.stdout = sys.stderr  # what the tests print is not the verdict
    limit = None
    while True:
        try:
            head, fds, _, _ = socket.recv_fds(sock, 4, 3)
        except OSError:
            return
        if not head:
            return  # the runner is gone
        while len(head) < 4:
            head += sock.recv(4 - len(head))
        n, body = int.from_bytes(head, "big"), b""
        while len(body) < n:
            chunk = sock.recv(n - len(body))
            if not chunk:
                return
            body += chunk
        task = json.loads(body)
        if limit != task["memory_mb"]:
            limit = task["memory_mb"]
            resource.setrlimit(resource.RLIMIT_AS, (limit << 20,) * 2)
        rfd, wfd, out = fds
        verdict = judge(task, rfd, wfd)
        try:
            raw = encode(verdict)
        except NotData:
            verdict.pop("answer", None)
            raw = encode(verdict)
        os.close(wfd)  # the program's cue to end
        os.close(rfd)
        try:
            while raw:
                raw = raw[os.write(out, raw) :]
        except OSError:  # the runner stopped waiting
            pass
        os.close(out)


if __name__ == "__main__":
    main()

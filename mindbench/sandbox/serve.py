"""The sandboxed side of a checked program: run the model's program, then answer calls.

Runs inside the sandbox, after the bootstrap dropped privileges, as source text appended to
wire.py's (so it imports nothing from mindbench). It executes the program as __main__, reports
the names of the callables it defined, then serves the checker's requests until the checker
closes the pipe: ["call", name, args, kwargs] -> ["ret", value] | ["raise", type, message] |
["notdata", why]; ["get", name] -> the same for a variable's value; ["new", class, args, kwargs]
-> ["obj", index] (an instance kept here), then ["attr", index, name] -> ["ret", value] or
["method"], and ["callm", index, name, args, kwargs] -> as "call".

Nothing here is trusted: the model's code runs in this interpreter and may rewrite any of it.
That is fine, because all it can change is which data it sends back; the checker decides.
"""

from mindbench.sandbox.wire import NotData, WireError, recv, send  # (stripped: run as one source)

PROGRAM_NAME = "program.py"


def _one_line(e):
    try:
        text = str(e)
    except BaseException:
        text = "<unprintable>"
    return text.replace("\n", " ")[:1000]


def serve(code, rfd, wfd):
    import builtins
    import linecache
    import os
    import sys
    import traceback
    import types

    exit_, flush = os._exit, (sys.stdout.flush, sys.stderr.flush)
    main = types.ModuleType("__main__")
    main.__file__ = PROGRAM_NAME
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    sys.argv[:] = [PROGRAM_NAME]
    linecache.cache[PROGRAM_NAME] = (len(code), None, code.splitlines(True), PROGRAM_NAME)
    ns = main.__dict__

    def finish(status):
        for f in flush:
            try:
                f()
            except BaseException:
                pass
        exit_(status)

    try:
        exec(compile(code, PROGRAM_NAME, "exec"), ns)
    except BaseException as e:
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        try:
            send(wfd, ["loadfail", f"{type(e).__name__}: {_one_line(e)}"])
        finally:
            finish(1)
    names = sorted(
        k
        for k, v in list(ns.items())
        if type(k) is str and not k.startswith("__") and callable(v) and not isinstance(v, types.ModuleType)
    )[:1000]
    classes = [k for k in names if isinstance(ns[k], type)]
    send(wfd, ["ready", names, classes])
    objects = []  # instances the checker created by calling a class: it refers to them by index
    while True:
        try:
            msg = recv(rfd)
        except WireError:  # the checker is done (or gone)
            finish(0)
        op, what = msg[0], msg[1]
        try:
            if op == "call":
                result = ns[what](*msg[2], **msg[3])
            elif op == "get":
                result = ns[what]
            elif op == "new":
                objects.append(ns[what](*msg[2], **msg[3]))
                send(wfd, ["obj", len(objects) - 1])
                continue
            else:  # "attr" or "callm" on an object: [op, index, attribute(, args, kwargs)]
                obj = objects[what]
                what = f"{type(obj).__name__}.{msg[2]}"
                result = getattr(obj, msg[2])
                if op == "callm":
                    result = result(*msg[3], **msg[4])
                elif callable(result):
                    send(wfd, ["method"])
                    continue
        except BaseException as e:
            reply = ["raise", type(e).__name__, _one_line(e)]
        else:
            try:
                send(wfd, ["ret", result])
                continue
            except NotData as e:
                reply = ["notdata", "{} {} {}".format(what, "is" if op in ("get", "attr") else "returned", e)]
        send(wfd, reply)

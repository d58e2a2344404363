"""What crosses the sandbox boundary: plain data in a strict, typed JSON encoding, in framed messages.

A value is data when it is None, bool, int, float (nan and infinities included), complex, str,
bytes, or a list, tuple, dict, set or frozenset of data, at most MAX_DEPTH deep, MAX_ITEMS objects
and MAX_MESSAGE bytes encoded. Anything else (a Mock, an object with its own __eq__, a str
subclass, a generator) is not data: `encode` raises NotData naming its type.

The encoding is JSON in which every non-JSON type carries a one-key tag ({"t": [...]} a tuple,
{"d": [[k, v], ...]} a dict, ...), so `decode` rebuilds exactly the built-in values and nothing
else: it never imports, calls or constructs anything but those types (no pickle, no marshal).
Both sides of the boundary run this file: the sandboxed program to send its answers, the trusted
checker to read them. Only the reading side is trusted, so only `decode` has to be strict;
`encode` also turns numpy scalars into Python numbers (a pandas answer is often one).

This module is stdlib-only and self-contained: the sandbox and the checker run its source text
(they cannot import mindbench, which the sandbox does not show).
"""

import os
from _json import encode_basestring_ascii as _quote
from _json import make_scanner

MAX_DEPTH = 100
MAX_ITEMS = 1_000_000
MAX_MESSAGE = 16 << 20

# Both sides use only the C half of `json` (the `_json` module, imported above): `json` itself
# pulls in `re`, which would cost a sandboxed program as much CPU as the rest of its start-up.


class NotData(TypeError):
    """A value that may not cross the boundary; the message says why ("returned a Mock, not data")."""


class WireError(Exception):
    """The other side closed the pipe, sent a malformed message, or did not answer in time."""


_NUMPY_SCALARS = ("numpy", "numpy.core", "numpy._core")
_INF = float("inf")


def _write(value, out, depth, budget):
    """Append value's JSON to out; budget is a one-element list counting objects left."""
    budget[0] -= 1
    if budget[0] < 0:
        raise NotData(f"a value with more than {MAX_ITEMS} objects")
    if depth > MAX_DEPTH:
        raise NotData(f"a value nested deeper than {MAX_DEPTH} levels")
    t = type(value)
    if value is None:
        out.append("null")
    elif t is bool:
        out.append("true" if value else "false")
    elif t is int:
        try:
            out.append(int.__repr__(value))
        except ValueError as e:  # more digits than int-to-str allows
            raise NotData(f"an int too large to write out ({e})") from None
    elif t is str:
        out.append(_quote(value))
    elif t is float:
        if value != value or value in (_INF, -_INF):
            out.append(f'{{"f":"{float.__repr__(value)}"}}')
        else:
            out.append(float.__repr__(value))
    elif t is list or t is tuple or t is set or t is frozenset:
        if t is not list:
            out.append('{{"{}":'.format({tuple: "t", set: "s", frozenset: "fs"}[t]))
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _write(v, out, depth + 1, budget)
        out.append("]" if t is list else "]}")
    elif t is dict:
        out.append('{"d":[')
        for i, (k, v) in enumerate(value.items()):
            out.append(",[" if i else "[")
            _write(k, out, depth + 1, budget)
            out.append(",")
            _write(v, out, depth + 1, budget)
            out.append("]")
        out.append("]}")
    elif t is bytes:
        out.append(f'{{"b":"{value.hex()}"}}')
    elif t is complex:
        out.append('{"c":[')
        _write(value.real, out, depth + 1, budget)
        out.append(",")
        _write(value.imag, out, depth + 1, budget)
        out.append("]}")
    elif getattr(t, "__module__", None) in _NUMPY_SCALARS and getattr(value, "ndim", None) == 0:
        plain = value.item()
        if type(plain) not in (bool, int, float, complex, str, bytes):
            raise NotData(f"a {t.__name__}, not data")
        budget[0] += 1
        _write(plain, out, depth, budget)
    else:
        raise NotData("a {}, not data".format(getattr(t, "__name__", "value")))


def encode(value) -> bytes:
    """The value's bytes on the wire; NotData when it is not plain data."""
    out = []
    _write(value, out, 0, [MAX_ITEMS])
    raw = "".join(out).encode()
    if len(raw) > MAX_MESSAGE:
        raise NotData(f"a value of {len(raw)} bytes (more than {MAX_MESSAGE})")
    return raw


def _bad_constant(name):
    raise ValueError(f"bare {name} is not allowed; non-finite floats are tagged")


def _hook(pairs):
    if len(pairs) != 1:
        raise ValueError("an object on the wire has exactly one tag")
    tag, v = pairs[0]
    if tag == "t" and type(v) is list:
        return tuple(v)
    if tag == "d" and type(v) is list and all(type(p) is list and len(p) == 2 for p in v):
        return {k: x for k, x in v}
    if tag == "s" and type(v) is list:
        return set(v)
    if tag == "fs" and type(v) is list:
        return frozenset(v)
    if tag == "b" and type(v) is str and v.isascii() and v.isalnum():
        return bytes.fromhex(v)
    if tag == "f" and v in ("nan", "inf", "-inf"):
        return float(v)
    if tag == "c" and type(v) is list and len(v) == 2 and all(type(x) in (int, float) for x in v):
        return complex(v[0], v[1])
    raise ValueError(f"unknown tag {tag!r}")


class _Rules:
    """What the C JSON scanner reads from a json.JSONDecoder, without importing json (and re)."""

    strict = True
    object_hook = None
    object_pairs_hook = staticmethod(_hook)
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_bad_constant)
    memo = None


_scan = make_scanner(_Rules())


def decode(raw: bytes):
    """The value `encode` wrote. Raises WireError for anything that is not such a message."""
    if len(raw) > MAX_MESSAGE:
        raise WireError(f"a message of {len(raw)} bytes (more than {MAX_MESSAGE})")
    try:
        text = raw.decode("utf-8")
        value, end = _scan(text, 0)
    except StopIteration:
        raise WireError("malformed message: not JSON") from None
    except (ValueError, TypeError, RecursionError, MemoryError) as e:
        # TypeError: an unhashable key or set member
        raise WireError(f"malformed message: {type(e).__name__}: {str(e)[:200]}") from None
    if end != len(text):
        raise WireError("malformed message: data after the value")
    return value


# --- framing: a 4-byte length, then the encoded message ------------------------------------------


def send(fd: int, value, *, write=os.write) -> None:
    raw = encode(value)
    buf = len(raw).to_bytes(4, "big") + raw
    while buf:
        buf = buf[write(fd, buf) :]


def _read_exact(fd, n, deadline, read=os.read):
    out = b""
    while len(out) < n:
        if deadline is not None:
            import select
            import time

            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WireError("no answer in time")
        chunk = read(fd, min(n - len(out), 1 << 20))
        if not chunk:
            raise WireError("the other side closed the pipe")
        out += chunk
    return out


def recv(fd: int, deadline: float | None = None, *, read=os.read):
    """One message from fd, decoded strictly; WireError on EOF, a timeout or a bad message."""
    n = int.from_bytes(_read_exact(fd, 4, deadline, read), "big")
    if n > MAX_MESSAGE:
        raise WireError(f"a message of {n} bytes (more than {MAX_MESSAGE})")
    return decode(_read_exact(fd, n, deadline, read))

"""A small HTTP client for OpenAI-compatible servers (vLLM, SGLang, llama.cpp's server,
llama-cpp-python's server, Ollama, LM Studio, TGI), on the standard library only.

Why no SDK or httpx: the measurement is the time each streamed chunk arrives, so the client must
hand back every server-sent event as its line is read, with its own clock reading, and add
nothing of its own in between; `http.client` does exactly that, is always installed, and a
thread per request in flight is cheap next to the milliseconds a token takes.

Two parts:
  * pure parsing, with no I/O (tested on recorded chunk sequences): `sse_events` turns the lines
    of a `text/event-stream` body into its events' data, `parse_chunk` turns one event of
    /v1/completions or /v1/chat/completions into a `Chunk`;
  * `Client`: GET/POST JSON and `stream` (the timed events of one streamed request), with every
    failure mapped to one line (`EndpointError`) that names the endpoint and the fix. The API key
    goes into the Authorization header only: it is never part of a message, a record or a log.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mindbench.errors import InputError

DONE = "[DONE]"


class EndpointError(InputError):
    """The endpoint cannot be used as given (wrong URL, refused, 401, unknown model): a
    command-line value that cannot work, so exit 2 before any cell; inside a cell the worker
    records it as that cell's status."""


# --- server-sent events (pure) ---------------------------------------------------------------


def sse_events(lines: Iterable) -> Iterator[str]:
    """The data of each event in an SSE body, in order (the WHATWG event-stream rules that
    matter here): `data:` lines of one event are joined with newlines, a blank line ends the
    event, lines starting with ':' are comments (llama-cpp-python's pings), `event:`/`id:`/
    `retry:` fields carry no data. Lines may be bytes or str, with or without their line end;
    an event not closed by a blank line before the body ends is still delivered."""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            name, value = line, ""
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
    if data:
        yield "\n".join(data)


@dataclass
class Chunk:
    """What one streamed event says."""

    text: str = ""  # new text (completions: choices[0].text; chat: delta.content)
    finish_reason: str | None = None
    usage: dict | None = None  # {"prompt_tokens", "completion_tokens", ...} when sent
    done: bool = False  # the [DONE] sentinel
    error: str | None = None  # an error event inside the stream
    logprobs: object = None  # choices[0].logprobs as sent
    raw: dict = field(default_factory=dict)


def parse_chunk(data: str) -> Chunk:
    """One event's data as a `Chunk`. Handles both endpoints' shapes, the final usage-only chunk
    (`stream_options.include_usage`: vLLM, OpenAI, llama.cpp; `choices` is empty there), chat
    deltas that carry only the role or reasoning text, and an `{"error": ...}` event."""
    if data.strip() == DONE:
        return Chunk(done=True)
    obj = json.loads(data)
    if not isinstance(obj, dict):
        return Chunk(error=f"unexpected event {data[:80]!r}")
    if obj.get("error"):
        err = obj["error"]
        msg = err.get("message") if isinstance(err, dict) else str(err)
        return Chunk(error=str(msg)[:300], raw=obj)
    out = Chunk(usage=obj.get("usage") or None, raw=obj)
    choices = obj.get("choices") or []
    if choices:
        c = choices[0]
        if "delta" in c:  # chat completions
            out.text = (c.get("delta") or {}).get("content") or ""
        else:  # completions
            out.text = c.get("text") or ""
        out.finish_reason = c.get("finish_reason")
        out.logprobs = c.get("logprobs")
    return out


# --- the client --------------------------------------------------------------------------------


@dataclass
class Timed:
    """One streamed event and when its line was read (time.perf_counter seconds)."""

    t: float
    chunk: Chunk


class Client:
    """One OpenAI-compatible endpoint. `base_url` is what users pass as --endpoint, normally
    ending in /v1 (http://host:8000/v1); `root` paths (/props, /health, /metrics, /version)
    are resolved against the part before /v1. Thread-safe: a new connection per request."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 600.0):
        url = urlsplit(base_url.strip())
        if url.scheme not in ("http", "https") or not url.hostname:
            raise EndpointError(f"--endpoint {base_url!r} is not an http(s) URL: use e.g. http://127.0.0.1:8000/v1")
        try:
            port = url.port
        except ValueError:
            raise EndpointError(f"--endpoint {base_url!r} has a bad port") from None
        self.base_url = base_url.rstrip("/")
        self.https = url.scheme == "https"
        self.host = url.hostname
        self.port = port or (443 if self.https else 80)
        self.path = url.path.rstrip("/")
        self.root_path = self.path[:-3] if self.path.endswith("/v1") else self.path
        self._key = api_key
        self.timeout_s = timeout_s

    def __repr__(self) -> str:  # never the key
        return f"<Client {self.base_url}>"

    def _connection(self, timeout: float):
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _url(self, path: str, root: bool) -> str:
        return (self.root_path if root else self.path) + path

    def _open(self, method: str, path: str, body: dict | None, *, root: bool, timeout: float | None):
        headers = {"Accept": "application/json, text/event-stream"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        conn = self._connection(timeout or self.timeout_s)
        try:
            conn.request(method, self._url(path, root), body=payload, headers=headers)
            return conn, conn.getresponse()
        except ConnectionRefusedError:
            conn.close()
            raise EndpointError(
                f"{self.base_url}: connection refused (nothing listens on {self.host}:{self.port}): "
                f"start the server or fix --endpoint"
            ) from None
        except socket.gaierror:
            conn.close()
            raise EndpointError(f"{self.base_url}: unknown host {self.host!r}: fix --endpoint") from None
        except TimeoutError:
            conn.close()
            raise EndpointError(f"{self.base_url}: no answer within {timeout or self.timeout_s:g} s") from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise EndpointError(f"{self.base_url}: {type(e).__name__}: {e}") from None

    def _fail(self, resp, path: str) -> EndpointError:
        """One line for an HTTP error status, the server's own message included (never the key)."""
        try:
            body = resp.read(4000).decode("utf-8", "replace")
        except Exception:
            body = ""
        msg = body.strip()
        try:
            obj = json.loads(body)
            err = obj.get("error") if isinstance(obj, dict) else None
            msg = (
                (err.get("message") if isinstance(err, dict) else err) or obj.get("detail") or obj.get("message") or msg
            )
        except (ValueError, AttributeError):
            pass
        msg = " ".join(str(msg).split())[:200]
        if resp.status == 401 or resp.status == 403:
            return EndpointError(
                f"{self.base_url}: HTTP {resp.status} (not authorized): set the API key in the "
                f"environment variable named by --api-key-env" + (f" ({msg})" if msg else "")
            )
        if resp.status == 404:
            return EndpointError(
                f"{self.base_url}{path}: HTTP 404: not an OpenAI-compatible endpoint here "
                f"(the URL usually ends in /v1)" + (f" ({msg})" if msg else "")
            )
        return EndpointError(f"{self.base_url}{path}: HTTP {resp.status}" + (f": {msg}" if msg else ""))

    def get_json(self, path: str, *, root: bool = False, timeout: float | None = None):
        conn, resp = self._open("GET", path, None, root=root, timeout=timeout)
        try:
            if resp.status != 200:
                raise self._fail(resp, path)
            return json.loads(resp.read().decode("utf-8"))
        except ValueError:
            raise EndpointError(f"{self.base_url}{path}: the answer is not JSON") from None
        finally:
            conn.close()

    def get_text(self, path: str, *, root: bool = False, timeout: float | None = None) -> str:
        conn, resp = self._open("GET", path, None, root=root, timeout=timeout)
        try:
            if resp.status != 200:
                raise self._fail(resp, path)
            return resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def post_json(self, path: str, body: dict, *, root: bool = False, timeout: float | None = None):
        conn, resp = self._open("POST", path, body, root=root, timeout=timeout)
        try:
            if resp.status != 200:
                raise self._fail(resp, path)
            return json.loads(resp.read().decode("utf-8"))
        except ValueError:
            raise EndpointError(f"{self.base_url}{path}: the answer is not JSON") from None
        finally:
            conn.close()

    def stream(self, path: str, body: dict, *, timeout: float | None = None) -> Iterator[Timed]:
        """POST `body` with stream=True; yield each event as its line is read, stamped with
        perf_counter at that moment. Ends after [DONE] or when the server closes the body. The
        first stamp the caller needs, the send time, is taken by the caller before calling."""
        conn, resp = self._open("POST", path, {**body, "stream": True}, root=False, timeout=timeout)
        try:
            if resp.status != 200:
                raise self._fail(resp, path)
            for data in sse_events(_lines(resp)):
                t = time.perf_counter()
                chunk = parse_chunk(data)
                if chunk.error:
                    raise EndpointError(
                        f"{self.base_url}{path}: the server ended the stream with an error: {chunk.error}"
                    )
                yield Timed(t, chunk)
                if chunk.done:
                    return
        finally:
            conn.close()


def _lines(resp) -> Iterator[bytes]:
    """The body's lines as they arrive (http.client undoes the chunked transfer encoding)."""
    while True:
        line = resp.readline()
        if not line:
            return
        yield line

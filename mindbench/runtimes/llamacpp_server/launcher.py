"""Start a llama.cpp OpenAI-compatible server on a GGUF file, on 127.0.0.1 and a free port, and
make sure it goes away. Two servers, one launcher (only the command and the health check differ):

  llama.cpp's own C++ `llama-server` (the default where one is found: find_llama_server) runs
  `slots` requests at once, each in its own slot of n_ctx tokens, batched together each step
  (continuous batching): the server people run, and the one whose throughput grows with users.
  llama-cpp-python's Python server (`python -m llama_cpp.server`, binary=None: the fallback) runs
  one request at a time (a lock around its one model): there are no slots, requests in flight
  queue; `slots` says so.

Why the server is never left behind: a benchmark that leaks a model server leaves a process
spinning on the cores the next measurement needs. So the server runs in its own process group
(stopped as a group: SIGTERM, then SIGKILL after a grace period), is told by the kernel to die
with the thread that started it (PR_SET_PDEATHSIG, so a SIGKILLed parent still takes it along),
and `stop` is also called at interpreter exit and on SIGTERM of the parent.

Settings that matter for what is measured (each one written into `settings`):
  threads / threads_batch   every core this process may use, as the in-process engine.
  n_ctx 4096 per slot       the in-process engine's context; llama-server gets -c n_ctx*slots,
                            which it splits evenly between its slots (no unified KV cache).
  llama-server only:
    flash-attn off, batch 512/512  what llama-cpp-python's in-process Llama uses (its defaults):
                            the same kernels on both sides, so greedy answers and speeds compare
                            (llama-server's own defaults are flash attention "auto" and batch 2048).
    metrics                 /metrics publishes KV-cache use (the record's server memory).
  llama-cpp-python only:
    interrupt_requests False  the server's default (True) ends a streaming request as soon as
                            another one waits: with several in flight, answers would be cut.
    logits_all False        prompt log-probabilities are not needed for generation, and computing
                            the output layer for every prompt token slows prefill.
Both reuse a cached prompt prefix between requests (llama-server's cache_prompt); the timed
requests open with a fresh number so none is reused there (runtimes/openai/engine.py).

The server's stdout/stderr go to a log file; its last lines come back in any start error, and the
whole log is copied to this process's stderr (the cell's log) when the server stops.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mindbench.errors import InputError, MindbenchError

ENV_BINARY = "MINDBENCH_LLAMA_SERVER"  # a llama-server to use instead of the one found
START_TIMEOUT_S = 180.0  # model load on a busy 2-core machine; a 7B file from disk takes longer
STOP_GRACE_S = 5.0
_LIVE: set = set()  # servers started by this process and not yet stopped


class ServerStartError(MindbenchError):
    """The server did not come up: the message carries its exit status and its log's last lines."""


def find_llama_server() -> tuple[Path | None, str]:
    """(llama.cpp's llama-server, where it was found), or (None, why none) when there is none,
    and llama-cpp-python's server is the fallback. In order: $MINDBENCH_LLAMA_SERVER (a path; set
    but not an executable file is an InputError, before any cell), `llama-server` next to this
    Python (`make llama-server` installs it into the venv), then on PATH."""
    env = os.environ.get(ENV_BINARY, "").strip()
    if env:
        p = Path(env).expanduser()
        if not (p.is_file() and os.access(p, os.X_OK)):
            raise InputError(
                f"{ENV_BINARY}={env}: no executable file there; point it at llama.cpp's llama-server "
                f"(`make llama-server` builds one into {Path(sys.executable).parent}) or unset it"
            )
        return p, f"${ENV_BINARY}"
    beside = Path(sys.executable).parent / "llama-server"  # the venv's bin/, not the resolved interpreter's
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside, "next to python (make llama-server)"
    found = shutil.which("llama-server")
    if found:
        return Path(found), "PATH"
    return None, f"no llama-server (${ENV_BINARY}, {beside}, PATH)"


def binary_version(binary: str | Path) -> str | None:
    """`llama-server --version` on one line ("version: 0.5.0-dev (build 1, commit 0c1e570) |
    built with GNU 12.2.0 for Linux x86_64"); None when it does not say."""
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    return " | ".join(lines) or None


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the thread that forked it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    except Exception:
        pass


def _on_sigterm(signum, frame):
    stop_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


atexit.register(stop_all)


class LlamaCppServer:
    """One running server. `with LlamaCppServer(path, alias=..., binary=...) as s: s.base_url ...`
    binary: llama.cpp's llama-server (find_llama_server), or None for llama-cpp-python's server.
    slots: requests the server runs at once (llama-server's --parallel; llama-cpp-python's has 1).
    extra: more settings, in llama-server's long flags ({"api-key": K} -> --api-key K) or
    llama-cpp-python's ({"api_key": K})."""

    def __init__(
        self,
        gguf: str | Path,
        *,
        alias: str,
        binary: str | Path | None = None,
        slots: int = 1,
        threads: int | None = None,
        n_ctx: int = 4096,
        n_gpu_layers: int = 0,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: str | Path | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        extra: dict | None = None,
    ):
        self.gguf = Path(gguf)
        self.alias = alias
        self.host = host
        self.port = port or free_port(host)
        self.start_timeout_s = start_timeout_s
        if threads is None:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.binary = Path(binary) if binary else None
        if self.binary is None:
            slots = 1  # one request at a time: no slots to set
            self.settings = {
                "n_ctx": n_ctx,
                "n_threads": threads,
                "n_threads_batch": threads,
                "n_gpu_layers": n_gpu_layers,
                "interrupt_requests": False,
                "logits_all": False,
                "seed": 0,
                **(extra or {}),
            }
        else:
            self.settings = {
                "ctx-size": n_ctx * slots,
                "parallel": slots,
                "threads": threads,
                "threads-batch": threads,
                "n-gpu-layers": "all" if n_gpu_layers < 0 else n_gpu_layers,
                "flash-attn": "off",
                "batch-size": 512,
                "ubatch-size": 512,
                "metrics": True,
                "seed": 0,
                **(extra or {}),
            }
        self.slots = max(1, int(slots))
        self.n_ctx = n_ctx  # per slot
        self.n_threads = threads
        self._own_log = log_path is None
        self.log_path = (
            Path(log_path)
            if log_path
            else Path(tempfile.mkstemp(prefix="mindbench-llamacpp-server-", suffix=".log")[1])
        )
        self.proc: subprocess.Popen | None = None
        self.start_s: float | None = None
        self._stopped = False
        self._peak_rss_kb: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def name(self) -> str:
        return "llama.cpp llama-server" if self.binary else "llama-cpp-python's server (python -m llama_cpp.server)"

    def command(self) -> list[str]:
        return self._llama_server_command() if self.binary else self._python_command()

    def _llama_server_command(self) -> list[str]:
        cmd = [str(self.binary), "--model", str(self.gguf), "--alias", self.alias, "--host", self.host]
        cmd += ["--port", str(self.port)]
        for k, v in self.settings.items():
            if v is True:  # a switch (--metrics)
                cmd.append(f"--{k}")
            elif v is not False and v is not None:
                cmd += [f"--{k}", str(v)]
        return cmd

    def _python_command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.gguf),
            "--model_alias",
            self.alias,
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        for k, v in self.settings.items():
            cmd += [f"--{k}", str(v)]
        return cmd

    def start(self) -> LlamaCppServer:
        if not self.gguf.is_file():
            raise ServerStartError(f"GGUF file {self.gguf} not found")
        env = dict(os.environ)
        for k in list(env):  # the server needs no credentials: none travel into it
            if k.endswith("API_KEY") or k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
                env.pop(k)
        t0 = time.perf_counter()
        log = open(self.log_path, "ab")
        try:
            # start_new_session: its own process group, stopped as one; preexec: PDEATHSIG
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        _LIVE.add(self)
        if threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                    signal.signal(signal.SIGTERM, _on_sigterm)
            except ValueError:
                pass
        try:
            self._wait_healthy()
        except BaseException:
            self.stop(copy_log=False)
            raise
        self.start_s = time.perf_counter() - t0
        return self

    def _wait_healthy(self) -> None:
        """Poll until the server is ready; a server that exits first, or never answers, is an
        error naming its exit status and its log's last lines. llama-server answers GET /health
        with 503 while it loads the model and 200 once it is ready (no API key needed there);
        llama-cpp-python's server has no /health and answers GET /v1/models once loaded (401
        behind an API key)."""
        import http.client

        path, ready = ("/health", (200,)) if self.binary else ("/v1/models", (200, 401, 403))
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise ServerStartError(f"llama.cpp server exited with status {rc} while starting: {self.log_tail(3)}")
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
                conn.request("GET", path)
                ok = conn.getresponse().status in ready
                conn.close()
                if ok:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise ServerStartError(f"llama.cpp server did not answer within {self.start_timeout_s:g} s: {self.log_tail(3)}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        tail = [ln for ln in text.splitlines() if ln.strip()][-lines:]
        return " | ".join(tail) if lines <= 5 else "\n".join(tail)

    def _read_peak(self) -> None:
        """The kernel's own peak resident set of the server (VmHWM), read while it still runs."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self._peak_rss_kb = int(line.split()[1])
        except (OSError, ValueError, AttributeError):
            pass

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far (all its threads), for the contention
        probe: the server's work is this measurement's, not someone else's."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    def memory_report(self) -> dict:
        return {
            "server_peak_rss_mb": round(self._peak_rss_kb / 1024, 1) if self._peak_rss_kb else None,
            "server_memory_how": "the server process's peak resident set (VmHWM, /proc)",
        }

    def stop(self, copy_log: bool = True) -> None:
        """SIGTERM to the whole group, SIGKILL after STOP_GRACE_S; idempotent."""
        if self._stopped or self.proc is None:
            return
        self._stopped = True
        _LIVE.discard(self)
        self._read_peak()
        try:
            pgid = os.getpgid(self.proc.pid)
        except ProcessLookupError:
            pgid = None
        if pgid is not None:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        if pgid is not None:
            try:
                os.killpg(pgid, signal.SIGKILL)  # whatever is left of the group, children included
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        if copy_log:
            try:
                sys.stderr.write(f"--- llama.cpp server log ({self.log_path}) ---\n{self.log_tail(200)}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
        if self._own_log:
            try:
                self.log_path.unlink()
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

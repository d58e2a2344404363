"""Run untrusted, model-generated Python and tell whether it passed.

Every program gets a fresh temp directory as its working dir (removed afterwards), runs as
`python -I program.py` with the same interpreter as mindbench, and is read through capped pipes.
What is contained, by tier (the tier used is in `SandboxResult.isolation["mode"]`):

``uid`` (mindbench runs as root on Linux; the tier on this project's machines)
  - a throw-away uid from a private range, unique to this run across threads and processes
    (lock files), no supplementary groups, no_new_privs: it cannot write, delete or chmod files
    it does not own, read other processes' environments, signal anything outside the sandbox,
    or gain privileges through setuid binaries;
  - a PID namespace: it sees only its own processes (/proc is remounted), and when the program
    exits or is killed the kernel kills everything it started, double-forked or setsid-ed
    alike (the uid is also swept with kill(-1) after a kill);
  - RLIMIT_NPROC counts only this run's uid, so a fork bomb stops at `max_processes`;
  - a network namespace with only a downed loopback: no network at all, not even 127.0.0.1;
  - a mount namespace where the whole filesystem is read-only except the working dir, and
    /tmp, /var/tmp, /dev/shm, /run/user are small private tmpfs mounts (max_file_mb each);
    the user's home, $HF_HOME and mindbench's current dir are hidden behind empty mounts (no
    ~/.cache/huggingface/token, no project .env), only the interpreter's folders bound back;
  - rlimits: address space (`memory_mb`), CPU seconds (time limit + 1), file size
    (`max_file_mb`), open files (256), no core dumps;
  - environment: only PATH, LANG, HOME and TMPDIR (both the working dir) and thread-count caps
    for BLAS/OpenMP; no tokens, keys or credentials;
  - the whole process group is SIGKILLed at the wall-clock time limit or when stdout or stderr
    passes `max_output_bytes`; a program that exits 0 but leaves processes behind fails.
``userns`` (not root, Linux with unprivileged user namespaces)
  - the same namespaces, read-only view, hidden folders, rlimits and environment, but the
    program keeps the user's uid: it can read files the user can read outside the hidden
    folders, and RLIMIT_NPROC counts all the user's processes (current count + max_processes).
``plain`` (no namespaces: other OSes, or the OS refuses them)
  - process group, rlimits, scrubbed environment and capped output only: network open, and the
    program can reach the user's files and signal the user's other processes.

Not contained in any tier: it is not a VM and has no seccomp filter. The program shares the
kernel (a kernel exploit escapes), reads world-readable files (installed packages, /etc), uses
CPU and memory up to its limits without a cgroup (RLIMIT_AS is per process; max_processes x
memory_mb bounds the total), and may fill its working dir with many files below max_file_mb.
`sandboxed=False` is the knowing opt-out: a plain subprocess of the current environment with a
time limit and capped output, nothing else.
"""

from __future__ import annotations

import marshal
import os
import random
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mindbench.sandbox.checked import Checked, read_proof
from mindbench.errors import MindbenchError

PROGRAM = "program.py"
UID_BASE = int(os.environ.get("MINDBENCH_SANDBOX_UID_BASE", "2000000000"))  # far from real users
UID_SLOTS = 256
SETUP_TIMEOUT_S = 20.0  # bootstrap (unshare, mounts, setuid): milliseconds normally; generous


@dataclass
class SandboxResult:
    passed: bool              # exit 0, not timed out, output not capped, nothing left behind
    returncode: int | None    # negative: killed by that signal
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float
    reason: str               # "ok", "timeout", "exit 1", "killed by signal 9", "output capped", ...
    isolation: dict = field(default_factory=dict)  # what was really contained this time
    proved: bool | None = None  # a Checked program: its checks ran to the end (None: plain code)
    answer: str | None = None   # a Checked program's reported answer (its `answer` variable)


# The bootstrap runs as `python -I -S -c _BOOT <config>` in the child (single-threaded, so no
# preexec_fn hazards in run_many's threads). It sets rlimits, enters namespaces, drops to the
# sandbox uid, reports what it achieved on the status pipe, then execs the program. With a PID
# namespace it forks twice: an init (pid 1) that reaps everything and reports leftovers, and the
# program; the outer process stays in our PID namespace and passes on the program's exit status.
_BOOT = r'''
import ctypes, marshal, os, resource, signal, sys
cfg = marshal.loads(bytes.fromhex(sys.argv[1]))  # marshal, not json: no import, ~25 ms less
SFD = cfg["status_fd"]
os.set_inheritable(SFD, False)
libc = ctypes.CDLL(None, use_errno=True)
NEWNS, NEWUSER, NEWPID, NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18

def prctl(*args):  # Linux only; elsewhere these protections are simply absent
    return getattr(libc, "prctl", lambda *a: -1)(*args)

def say(**kw):
    os.write(SFD, marshal.dumps(kw).hex().encode() + b"\n")

def mount(src, tgt, fs, flags, data=None):
    enc = lambda s: s.encode() if s else None
    if libc.mount(enc(src), enc(tgt), enc(fs), ctypes.c_ulong(flags), enc(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount %s: %s" % (tgt, os.strerror(e)))

def under(p, d):
    return p == d or p.startswith(d.rstrip("/") + "/")

def outermost(paths):
    out = []
    for p in sorted(set(paths), key=len):
        if not any(under(p, q) for q in out):
            out.append(p)
    return out

def closed_ancestor(p):
    # the highest folder above p that others cannot enter (e.g. /root, 0700), or None
    cur = ""
    for part in p.strip("/").split("/")[:-1]:
        cur += "/" + part
        if not os.stat(cur).st_mode & 0o001:
            return cur
    return None

def set_readonly(path, on, recursive):
    # mount_setattr(2) (Linux 5.12+; syscall 442 on every architecture): flip MOUNT_ATTR_RDONLY
    attr = (ctypes.c_uint64 * 4)(1 if on else 0, 0 if on else 1, 0, 0)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(ctypes.c_long(442), ctypes.c_int(-100), path.encode(),
                    ctypes.c_uint(0x8000 if recursive else 0), attr, ctypes.c_size_t(32)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount_setattr %s: %s" % (path, os.strerror(e)))

def private_mounts(iso):
    # Our own mount tree, made private first so that nothing below propagates to the host.
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    work, keep = cfg["workdir"], cfg["keep"]
    tmps = [d for d in ("/tmp", "/var/tmp", "/dev/shm", "/run/user") if os.path.isdir(d)]
    covers = tmps + cfg["hide"]
    if cfg["uid"] is not None:  # the sandbox uid must reach the interpreter: cover the closed
        covers += [a for a in map(closed_ancestor, keep) if a]  # folder, bind the paths back
    covers = outermost(covers)
    binds = outermost([p for p in keep if any(under(p, c) for c in covers)] + [work])
    fds = [(p, os.open(p, os.O_PATH)) for p in binds]  # reachable after the covers go on
    for c in covers:
        mode, mb = ("1777", cfg["tmp_mb"]) if c in tmps else ("0755", 1)
        mount("tmpfs", c, "tmpfs", MS_NOSUID | MS_NODEV, "size=%dm,mode=%s" % (mb, mode))
    for p, fd in fds:
        src = "/proc/self/fd/%d" % fd
        if os.path.isdir(src):
            os.makedirs(p, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(p), exist_ok=True)
            open(p, "a").close()
        mount(src, p, None, MS_BIND | MS_REC)
        os.close(fd)
    os.chdir(work)
    iso["private_tmp"] = True
    try:  # everything read-only except the working dir and the private temp dirs
        set_readonly("/", True, True)
        for m in [work] + [c for c in covers if c in tmps]:
            set_readonly(m, False, False)
        iso["readonly_root"] = True
    except OSError as e:
        iso["readonly_root_error"] = str(e)

def enter_namespaces(iso):
    root = os.geteuid() == 0
    uid, gid = os.getuid(), os.getgid()
    tries = [NEWPID | NEWNET | NEWNS, NEWNET | NEWNS, NEWNET] if root else [NEWPID | NEWNET | NEWNS]
    for flags in tries:
        if libc.unshare(ctypes.c_int(flags | (0 if root else NEWUSER))) != 0:
            continue
        if not root:  # map our own uid to itself so files keep their owner
            for name, text in (("setgroups", "deny"), ("uid_map", "%d %d 1" % (uid, uid)),
                               ("gid_map", "%d %d 1" % (gid, gid))):
                with open("/proc/self/" + name, "w") as f:
                    f.write(text)
            iso["mode"] = "userns"
        iso["network_cut"] = True
        iso["pid_namespace"] = bool(flags & NEWPID)
        if flags & NEWNS:
            try:
                private_mounts(iso)
            except OSError as e:
                iso["private_mounts_error"] = str(e)
        return

def set_limits(iso):
    for name, want in cfg["rlimits"]:
        kind = getattr(resource, name)
        hard = resource.getrlimit(kind)[1]
        v = want if hard == resource.RLIM_INFINITY else min(want, hard)
        # CPU: the soft limit sends SIGXCPU, the hard one a second later SIGKILL.
        top = v + 1 if name == "RLIMIT_CPU" and (hard == resource.RLIM_INFINITY or v < hard) else v
        try:
            resource.setrlimit(kind, (v, top))
        except (ValueError, OSError):  # e.g. RLIMIT_AS on macOS
            iso.setdefault("rlimits_refused", []).append(name)

def run_init(w, prog):
    # pid 1 of the sandbox: reap everything; when the program ends, report whether anything
    # was still running. Exiting makes the kernel kill every remaining process in the namespace.
    status, leftovers = None, False
    try:
        while status is None:
            p, s = os.wait()
            status = s if p == prog else None
        while not leftovers:  # reap finished orphans; a running one is a leftover
            leftovers = os.waitpid(-1, os.WNOHANG)[0] == 0
    except ChildProcessError:
        pass
    os.write(w, marshal.dumps({"status": status, "leftovers": leftovers}))
    os._exit(0)

def relay(pid, r):
    # Outer process (our PID namespace): wait for init, pass on the program's fate.
    data = chunk = os.read(r, 4096)
    while chunk:
        chunk = os.read(r, 4096)
        data += chunk
    os.waitpid(pid, 0)
    msg = marshal.loads(data) if data else {"status": None, "leftovers": False}
    say(final=True, leftovers=msg["leftovers"])
    s = msg["status"]
    if s is None or os.WIFSIGNALED(s):
        sig = os.WTERMSIG(s) if s is not None else signal.SIGKILL
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(os.WEXITSTATUS(s))

try:
    prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG: die with the runner
    os.umask(0o022)
    iso = {"mode": "plain", "network_cut": False, "pid_namespace": False, "private_tmp": False,
           "readonly_root": False}
    set_limits(iso)
    if cfg["namespaces"]:
        enter_namespaces(iso)
    if iso["pid_namespace"]:
        r, w = os.pipe()
        pid = os.fork()
        if pid:
            os.close(w)
            relay(pid, r)
        os.close(r)
        prctl(1, int(signal.SIGKILL))
        try:  # a /proc that shows only the sandbox's processes
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            iso["private_proc"] = True
        except OSError:
            iso["private_proc"] = False
        prog = os.fork()
        if prog:
            run_init(w, prog)
        os.close(w)
    if cfg["uid"] is not None:
        os.setgroups([])
        os.setgid(cfg["gid"])
        os.setuid(cfg["uid"])
        iso["mode"] = "uid"
        iso["uid"] = cfg["uid"]
    prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: setuid binaries give nothing
    prctl(1, int(signal.SIGKILL))  # again: a credential change clears it
    py = cfg["python"]
    if not (os.access(py, os.X_OK) and os.access(cfg["stdlib"], os.R_OK | os.X_OK)):
        say(error="the sandbox user cannot run %s; make its folders readable by others "
                  "(chmod o+rx) or run with sandboxing disabled knowingly" % py)
        os._exit(125)
    say(ready=True, isolation=iso)
    os.execv(py, [py, "-I", cfg["program"]] + cfg["argv"])
except BaseException as e:
    import traceback
    try:
        say(error="sandbox setup failed: %s" % traceback.format_exception_only(type(e), e)[-1].strip())
    finally:
        os._exit(125)
'''


def _proc_table() -> list[tuple[int, str, int, int]]:
    """(pid, state, session, real uid) of every process, read from /proc; [] where there is none."""
    out = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{name}/status", "rb") as f:
                uid_line = next(line for line in f if line.startswith(b"Uid:"))
        except (OSError, StopIteration):
            continue  # it exited while we looked
        rest = stat[stat.rindex(b")") + 2:].split()  # comm may contain spaces and parentheses
        out.append((int(name), rest[0].decode(), int(rest[3]), int(uid_line.split()[1])))
    return out


def _alive(*, uid: int | None = None, session: int | None = None) -> list[int]:
    """Pids still running (zombies excluded) that belong to this sandbox uid or session."""
    return [pid for pid, state, sid, puid in _proc_table()
            if state not in ("Z", "X") and ((uid is not None and puid == uid) or
                                           (session is not None and sid == session))]


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of a sandbox uid. kill(-1) from a process of that uid is atomic in
    the kernel, so a fork bomb cannot outrun it the way it can outrun a kill-by-pid loop."""
    for _ in range(50):
        if not _alive(uid=uid):
            return
        # /bin/sh, not our interpreter: the sandbox uid may not be able to reach that one
        subprocess.run(["/bin/sh", "-c", "kill -9 -1"], user=uid, group=uid, extra_groups=[],
                       env={}, cwd="/", timeout=30, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        time.sleep(0.01)
    raise RuntimeError(f"processes of sandbox uid {uid} survive SIGKILL")


class _UidSlot:
    """A uid from a private range that no other run is using now (flock on a per-uid file,
    so it holds across threads and processes, and frees itself if the holder dies)."""

    def __init__(self) -> None:
        import fcntl

        base = Path("/run") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
        d = base / "mindbench-sandbox-slots"
        d.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(d)
        if st.st_uid != 0 or not Path(d).is_dir() or d.is_symlink() or st.st_mode & 0o022:
            raise MindbenchError(f"{d} is not a root-owned private folder; remove it and retry")
        deadline = time.monotonic() + 60
        while True:
            start = random.randrange(UID_SLOTS)  # spread out: a freed uid is rarely reused at once
            for i in ((start + k) % UID_SLOTS for k in range(UID_SLOTS)):
                fd = os.open(d / f"{UID_BASE + i}.lock", os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                self.fd, self.uid = fd, UID_BASE + i
                if os.pread(fd, 5, 0) != b"clean":  # a crashed holder may have left some behind
                    _kill_uid(self.uid)
                os.pwrite(fd, b"dirty", 0)
                return
            if time.monotonic() > deadline:
                raise MindbenchError(f"all {UID_SLOTS} sandbox uids are busy; run fewer programs at once")
            time.sleep(0.05)

    def release(self, clean: bool) -> None:
        if clean:
            os.pwrite(self.fd, b"clean", 0)
        os.close(self.fd)


def _interpreter_paths() -> list[str]:
    """Folders the program's interpreter needs: its binary, stdlib, and site-packages."""
    import site
    import sysconfig

    paths = [sys.executable, os.path.dirname(os.path.realpath(sys.executable)), sys.prefix,
             sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *site.getsitepackages(),
             *sysconfig.get_paths().values()]
    return sorted({os.path.realpath(p) for p in paths if p and os.path.exists(p)})


def _hidden_dirs() -> list[str]:
    """Folders where secrets live (the stored Hugging Face token, a project .env): the user's
    home, $HF_HOME and our current dir. System folders are never hidden: the program needs them."""
    system = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/boot")
    out = []
    try:
        cwd = os.getcwd()
    except OSError:  # our current dir was deleted
        cwd = None
    for p in (os.path.expanduser("~"), os.environ.get("HF_HOME"), cwd):
        p = os.path.realpath(p) if p else None
        if p and os.path.isdir(p) and p != "/" and not any(
                p == d or p.startswith(d + "/") for d in system):
            out.append(p)
    return out


def _workdir(code: str, files: dict | None) -> Path:
    work = Path(tempfile.mkdtemp(prefix="mindbench-sbx-"))
    (work / PROGRAM).write_text(code, encoding="utf-8")
    for name, src in (files or {}).items():
        dest = (work / name).resolve()
        if name == PROGRAM or work.resolve() not in dest.parents:
            shutil.rmtree(work)
            raise MindbenchError(f"sandbox file name {name!r} must be a relative path inside the "
                                 f"working dir, not {PROGRAM!r}")
        src = Path(src)
        if not src.exists():
            shutil.rmtree(work)
            raise MindbenchError(f"sandbox input file {src} does not exist; check the path")
        dest.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dest)
    return work


def _chown_tree(root: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for n in [dirpath, *(os.path.join(dirpath, x) for x in dirnames + filenames)]:
            os.lchown(n, uid, uid)


def _rmtree(path: Path) -> None:
    def fix(func, p, _exc):  # the program may have chmod-ed its own files to 000
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
        except OSError:
            pass
        func(p)
    try:
        shutil.rmtree(path, onerror=fix)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def _env(work: Path) -> dict:
    """The whole environment of a sandboxed program: an allowlist, so no token can leak in."""
    bindir = os.path.dirname(sys.executable)
    one = "1"  # BLAS/OpenMP threads count against RLIMIT_NPROC and reserve address space
    return {"PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            "HOME": str(work), "TMPDIR": str(work),
            "OMP_NUM_THREADS": one, "OPENBLAS_NUM_THREADS": one, "MKL_NUM_THREADS": one}


class _StatusPipe:
    """JSON lines from the bootstrap: "ready" (or "error") before the program starts, and with a
    PID namespace a "final" one (leftovers) after it ends. Both may arrive in one read."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buf = fd, b""

    def line(self, timeout_s: float) -> dict | None:
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(self.fd, selectors.EVENT_READ)
            while b"\n" not in self.buf:
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    return None
                chunk = os.read(self.fd, 4096)
                if not chunk:
                    return None
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return marshal.loads(bytes.fromhex(line.decode()))


def _pump(proc: subprocess.Popen, deadline: float, cap: int) -> tuple[bytes, bytes, str | None]:
    """Read stdout/stderr incrementally until the program exits, the deadline passes ("timeout")
    or a stream passes `cap` bytes ("output capped"). Never holds more than cap+64 kB."""
    sel = selectors.DefaultSelector()
    bufs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    for f in bufs:
        os.set_blocking(f.fileno(), False)
        sel.register(f, selectors.EVENT_READ)
    pidfd = None
    if hasattr(os, "pidfd_open"):  # wake the moment the program exits instead of polling
        try:
            pidfd = os.pidfd_open(proc.pid)
            sel.register(pidfd, selectors.EVENT_READ)
        except OSError:
            pidfd = None
    why = None
    try:
        while why is None and proc.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                why = "timeout"
                break
            for key, _ in sel.select(min(remaining, 1.0 if pidfd is not None else 0.02)):
                if key.fileobj is pidfd:
                    continue
                chunk = os.read(key.fd, 65536)
                buf = bufs[key.fileobj]
                if not chunk:
                    sel.unregister(key.fileobj)
                elif len(buf) + len(chunk) > cap:
                    buf += chunk[: cap - len(buf)]
                    why = "output capped"
                else:
                    buf += chunk
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
    return bytes(bufs[proc.stdout]), bytes(bufs[proc.stderr]), why


def _drain(proc: subprocess.Popen, out: bytes, err: bytes, cap: int) -> tuple[bytes, bytes]:
    """After the kill: collect what is still in the pipes (up to the cap), for at most 2 s."""
    bufs = {proc.stdout: bytearray(out), proc.stderr: bytearray(err)}
    deadline = time.monotonic() + 2.0
    with selectors.DefaultSelector() as sel:
        for f in bufs:
            sel.register(f, selectors.EVENT_READ)
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fileobj)
                buf = bufs[key.fileobj]
                buf += chunk[: max(0, cap - len(buf))]
    return bytes(bufs[proc.stdout]), bytes(bufs[proc.stderr])


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_python(code: str | Checked, *, timeout_s: float = 10.0, files: dict[str, str | Path] | None = None,
               memory_mb: int = 1024, max_output_bytes: int = 65536, sandboxed: bool = True,
               max_processes: int = 64, max_file_mb: int = 64) -> SandboxResult:
    """Run `code` as a Python program in the sandbox and report how it ended.

    `files` maps names in the working dir to paths to copy there (e.g. {"data.csv": path}).
    Example: run_python("print(1 + 1)").stdout == "2\\n".
    A `Checked` program passes only when its checks ran to the end (mindbench/sandbox/checked.py): this
    process makes a random token and hands it over through a pipe that the program reads after
    its checks; `passed` needs exit 0 and that token's line in the output.
    """
    if timeout_s <= 0 or memory_mb < 64 or max_output_bytes < 1 or max_processes < 1:
        raise MindbenchError("sandbox limits must be positive (timeout_s > 0, memory_mb >= 64)")
    token = proof_fd = None
    if isinstance(code, Checked):
        token = secrets.token_hex(16)
        proof_fd, tw = os.pipe()
        os.write(tw, token.encode())
        os.close(tw)
        code = code.wrapper()
    argv = [str(proof_fd)] if proof_fd is not None else []
    try:
        work = _workdir(code, files)
    except BaseException:
        if proof_fd is not None:
            os.close(proof_fd)
        raise
    slot = proc = r = status_pipe = None
    swept = False
    iso: dict = {"mode": "none"}
    try:
        if sandboxed:
            root = hasattr(os, "geteuid") and os.geteuid() == 0
            nproc = max_processes
            if root:
                slot = _UidSlot()
                _chown_tree(work, slot.uid)
            else:  # RLIMIT_NPROC counts all our processes: allow the ones already running
                nproc += sum(1 for _, _, _, u in _proc_table() if u == os.getuid())
            r, w = os.pipe()
            cfg = {"status_fd": w, "workdir": str(work), "program": PROGRAM,
                   "python": sys.executable, "stdlib": os.path.dirname(os.__file__),
                   "keep": _interpreter_paths(), "hide": _hidden_dirs(),
                   "uid": slot.uid if slot else None, "gid": slot.uid if slot else None,
                   "namespaces": sys.platform.startswith("linux"), "tmp_mb": max_file_mb,
                   "argv": argv,
                   "rlimits": [("RLIMIT_AS", memory_mb << 20), ("RLIMIT_CPU", int(timeout_s) + 1),
                               ("RLIMIT_NPROC", nproc), ("RLIMIT_FSIZE", max_file_mb << 20),
                               ("RLIMIT_NOFILE", 256), ("RLIMIT_CORE", 0)]}
            cmd = [sys.executable, "-I", "-S", "-c", _BOOT, marshal.dumps(cfg).hex()]
            env, pass_fds = _env(work), (w,)
        else:
            r = w = None
            cmd, env, pass_fds = [sys.executable, "-I", PROGRAM, *argv], None, ()
        if proof_fd is not None:
            pass_fds += (proof_fd,)
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, pass_fds=pass_fds)
        if proof_fd is not None:  # only the program holds the token now
            os.close(proof_fd)
            proof_fd = None
        if w is not None:
            os.close(w)
            status_pipe = _StatusPipe(r)
            status = status_pipe.line(SETUP_TIMEOUT_S)
            if not status or "error" in status:
                _killpg(proc.pid)
                err = proc.stderr.read(4096).decode(errors="replace").strip().splitlines()
                raise MindbenchError((status or {}).get("error") or
                                     f"sandbox did not start: {err[-1] if err else 'no output'}")
            iso = status["isolation"]
        t0 = time.monotonic()
        out, err, why = _pump(proc, t0 + timeout_s, max_output_bytes)
        duration = time.monotonic() - t0
        leftovers = False
        pidns = iso.get("pid_namespace")
        if why is None and not pidns:
            # no PID namespace to catch stragglers: look for them by uid or session
            leftovers = bool(_alive(uid=slot.uid) if slot else _alive(session=proc.pid))
        _killpg(proc.pid)
        # A PID namespace whose init exited normally is empty; after a kill it may still be
        # tearing down, and without one only a sweep by uid finds processes that left the group.
        if slot and (why or not pidns):
            _kill_uid(slot.uid)
        out, err = _drain(proc, out, err, max_output_bytes)
        returncode = proc.wait()
        if status_pipe is not None:
            final = status_pipe.line(2.0) or {}
            leftovers = leftovers or bool(final.get("leftovers"))
            if slot and pidns and not why and not final:  # the relay died: not a clean teardown
                _kill_uid(slot.uid)
        swept = True
    finally:
        if proc is not None:
            if proc.poll() is None:
                _killpg(proc.pid)
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        if r is not None:
            os.close(r)
        if proof_fd is not None:
            os.close(proof_fd)
        try:
            if slot and not swept:
                _kill_uid(slot.uid)
                swept = True
        finally:
            if slot:
                slot.release(clean=swept)  # a dirty slot is swept by its next holder
            _rmtree(work)
    if why:
        reason = why
    elif returncode < 0:
        reason = f"killed by signal {-returncode}"
    elif returncode:
        reason = f"exit {returncode}"
    else:
        reason = "left processes behind" if leftovers else "ok"
    stdout = out.decode("utf-8", errors="replace")
    proved = answer = None
    if token is not None:
        proved, answer, stdout = read_proof(stdout, token)
        if reason == "ok" and not proved:
            reason = "exited before its checks completed"
    iso = {**iso, "leftovers_killed": leftovers}
    return SandboxResult(passed=reason == "ok", returncode=returncode, stdout=stdout,
                         stderr=err.decode("utf-8", errors="replace"),
                         timed_out=why == "timeout", duration_s=round(duration, 4),
                         reason=reason, isolation=iso, proved=proved, answer=answer)


def run_many(programs: list[str | Checked], *, timeout_s: float = 10.0, workers: int = 2,
             **kw) -> list[SandboxResult]:
    """Run programs in parallel (threads, each waiting on its own child process); results in
    input order. Extra keywords go to run_python."""
    if workers <= 1 or len(programs) <= 1:
        return [run_python(p, timeout_s=timeout_s, **kw) for p in programs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: run_python(p, timeout_s=timeout_s, **kw), programs))


def isolation_report() -> dict:
    """What the sandbox achieves on this machine, by running an empty program."""
    res = run_python("pass", timeout_s=10.0)
    return {k: v for k, v in res.isolation.items() if k != "leftovers_killed"}

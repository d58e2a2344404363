"""The Ray executor on a real local Ray cluster started on this machine, running real cells of the
packaged model. Skipped when Ray is not installed (CI installs it through `make extras`)."""

import json
import threading
import time

import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from mindbench.models import catalog  # noqa: E402
from mindbench.store import results  # noqa: E402
from mindbench.sweep import harness  # noqa: E402
from mindbench.sweep.executor_ray import RayExecutor  # noqa: E402

SMALL = dict(limit=1, repeats=1, prompt_tokens=32, new_tokens=8, batch_size=2)


@pytest.fixture(scope="module")
def local_ray():
    # A real cluster of one node with 2 CPUs: each cell asks for one, so two run side by side.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _shape(rec) -> dict:
    """The stored line's layout: the sections and their keys (a record from a Ray node is written as
    a local one is)."""
    d = rec.to_json()
    return {k: sorted(v) if isinstance(v, dict) else type(v).__name__ for k, v in d.items() if k not in ("quality",)}


def test_ray_records_match_local_fields(local_ray, tmp_path):
    out_local, out_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    local = harness.sweep(
        [catalog.DEFAULT_MODEL],
        ["fp32"],
        suites=["reasoning"],
        out=out_local,
        executor="local",
        device="cpu",
        progress=False,
        **SMALL,
    )
    t0 = time.perf_counter()
    got = harness.sweep(
        [catalog.DEFAULT_MODEL],
        ["fp32", "int4"],
        suites=["reasoning"],
        out=out_ray,
        executor=RayExecutor(cpus_per_cell=1),
        device="cpu",
        progress=False,
        **SMALL,
    )
    assert time.perf_counter() - t0 > 0
    assert [r.status for r in got] == ["ok", "ok"], [r.error for r in got]
    assert [r.config.precision for r in got] == ["fp32", "int4"]
    assert _shape(got[0]) == _shape(local[0])
    assert set(got[0].quality) == set(local[0].quality) == {"reasoning"}
    # every record carries the fingerprint of the node that ran it (here: this machine)
    assert all(r.hardware.fingerprint == local[0].hardware.fingerprint for r in got)
    # streamed into the one store as they finished, and --resume skips them all
    assert len(results.read(out_ray)) == 2
    again = harness.sweep(
        [catalog.DEFAULT_MODEL],
        ["fp32", "int4"],
        suites=["reasoning"],
        out=out_ray,
        executor=RayExecutor(cpus_per_cell=1),
        device="cpu",
        progress=False,
        resume=True,
        **SMALL,
    )
    assert len(again) == 2 and len(results.read(out_ray)) == 2


def _killer(kills_per_precision: dict, stop: threading.Event, killed: list, workers: set):
    """Kill the Ray worker process (the parent of `python -m mindbench.sweep.worker`) of matching cells."""
    seen = set()
    while not stop.is_set():
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmd = p.info["cmdline"] or []
            if "mindbench.sweep.worker" not in cmd or p.pid in seen:
                continue
            try:
                cfg = json.load(open(cmd[cmd.index("mindbench.sweep.worker") + 1]))
            except (OSError, ValueError, IndexError):
                continue
            prec = cfg["precision"]
            try:
                parent = p.parent()
                ours = parent is not None and (parent.cmdline() or [""])[0].startswith("ray::")
            except psutil.Error:
                continue
            # only cells run by this test's Ray cluster, never a `mindbench run` elsewhere on the machine
            if ours:
                workers.add(p.pid)
            if ours and kills_per_precision.get(prec, 0) > 0:
                seen.add(p.pid)
                kills_per_precision[prec] -= 1
                killed.append((prec, parent.pid))
                parent.kill()
        time.sleep(0.2)


def test_killed_ray_worker_is_retried_once_then_crashed(local_ray, tmp_path):
    """fp32's Ray worker is killed on both attempts -> crashed; int4's once -> retried -> ok."""
    stop, killed, workers = threading.Event(), [], set()
    kills = {"fp32": 2, "int4": 1}
    t = threading.Thread(target=_killer, args=(kills, stop, killed, workers), daemon=True)
    t.start()
    try:
        got = harness.sweep(
            [catalog.DEFAULT_MODEL],
            ["fp32", "int4"],
            suites=[],
            out=tmp_path / "r.jsonl",
            executor=RayExecutor(cpus_per_cell=1, timeout_s=300),
            device="cpu",
            progress=False,
            **SMALL,
        )
    finally:
        stop.set()
        t.join()
    status = {r.config.precision: r for r in got}
    assert sorted(p for p, _ in killed) == ["fp32", "fp32", "int4"]
    assert status["fp32"].status == "crashed" and "died 2 times" in status["fp32"].error
    assert status["int4"].status == "ok"
    assert len(results.read(tmp_path / "r.jsonl")) == 2

    # no orphaned cell worker is left behind (the worker dies with the Ray worker that started it);
    # waited for up to 30 s rather than slept on, since a loaded host may take a while to reap it
    def alive():
        out = []
        for pid in workers:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    out.append(pid)
            except psutil.NoSuchProcess:
                pass
        return out

    deadline = time.monotonic() + 30
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(workers) >= 3 and not alive()


def test_missing_ray_is_a_one_line_error(monkeypatch):
    import sys

    from click.testing import CliRunner

    from mindbench.cli import cli

    monkeypatch.setitem(sys.modules, "ray", None)
    r = CliRunner().invoke(cli, ["run", "--executor", "ray", "--suite", "code"])
    assert r.exit_code != 0 and "pip install 'mindbench[ray]'" in r.output
    assert "Traceback" not in r.output

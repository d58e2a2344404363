"""The sweep: every (model, runtime, precision) cell in its own worker process, one record each.

    mindbench run --suite code --precisions fp16,int8,int4

Flow: plan the cells -> drop the ones already done (--resume) -> an Executor runs each cell in a
worker process (mindbench/sweep/worker.py) and yields its record as soon as it finishes -> the record
is appended to the results store at once (so a killed sweep loses at most the running cell) ->
a table at the end.

The Executor is the seam for scale-out: `local` runs worker processes on this machine; another
executor (Ray) only has to turn cells into records the same way. Executors are looked up
by name in EXECUTORS, so adding one does not touch this file's sweep logic.

--resume policy: a cell whose key already has a record with status ok, oom or skipped is done
(those are facts about this machine and model: rerunning gives the same answer). Cells that
crashed, timed out or raised an error are run again (they may be transient). Records are only
ever appended, so a retried cell that succeeds supersedes the failed row in the report (latest
record per key wins), and a done cell is never run twice: no duplicates.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from mindbench.errors import InputError, MindbenchError
from mindbench.measure.device import is_cuda
from mindbench.registry import Registry
from mindbench.runtimes import DEFAULT_RUNTIME
from mindbench.store import results
from mindbench.store.record import Record
from mindbench.suites import DEFAULT_SUITE, SUITES

SUITE_CHOICES = SUITES  # the one list of suites lives in suites.py
# The full-precision baseline plus both bitsandbytes precisions. fp16 on GPUs; on a CPU fp32,
# because CPUs have no fast fp16 matmul: fp16 there is emulated and prefills several times slower
# than fp32, which would make the quick default run slow and say nothing a CPU user can use.
DEFAULT_LIMIT = 10  # tasks per suite in a quick run; --full runs every task
DEFAULT_TIMEOUT_S = 3600.0  # per cell; --full multiplies it (a whole suite on a CPU takes hours)


# --- executors --------------------------------------------------------------------------------


class Executor:
    """Runs cells and yields one finished record per cell, in completion order.

    `prepare(cell)` is called right before a cell starts (the harness uses it to pass on figures
    measured by earlier cells, e.g. the device bandwidth); `on_event(cell, event)` receives the
    worker's progress events (dicts) as they happen.
    """

    name = "base"

    def run(
        self,
        cells: list[dict],
        *,
        prepare: Callable[[dict], dict] | None = None,
        on_event: Callable[[dict, dict], None] | None = None,
    ) -> Iterator[Record]:
        raise NotImplementedError


class LocalExecutor(Executor):
    """Each cell in a fresh `python -m mindbench.sweep.worker` process on this machine.

    One cell at a time by default: cells running side by side share the memory bus and the cores,
    which would corrupt exactly the speed figures we are measuring. `workers > 1` is for quality
    sweeps where speed does not matter.
    """

    name = "local"

    def __init__(self, *, timeout_s: float | None = DEFAULT_TIMEOUT_S, workers: int = 1, env: dict | None = None):
        self.timeout_s = timeout_s
        self.workers = max(1, workers)
        self.env = env
        self._live: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def run(self, cells, *, prepare=None, on_event=None):
        from mindbench.paths import remove_stale_temp_dirs

        remove_stale_temp_dirs("cell")  # those of a sweep that was killed (-9 runs no cleanup)
        hw, sw = _host_info()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="mindbench-cell")
        try:
            futs = [pool.submit(self._run_one, c, prepare, on_event, hw, sw) for c in cells]
            for f in as_completed(futs):
                yield f.result()
        finally:
            # Ctrl-C or a closed generator: no worker may outlive the sweep (they run in their
            # own sessions, so the terminal's SIGINT does not reach them).
            pool.shutdown(wait=False, cancel_futures=True)
            self.kill_all()

    def kill_all(self) -> None:
        with self._lock:
            procs = list(self._live.values())
        for p in procs:
            _kill_group(p)

    def _run_one(self, cell: dict, prepare, on_event, hw: dict, sw: dict) -> Record:
        cell = prepare(cell) if prepare else cell
        t0 = time.perf_counter()
        from mindbench.paths import temp_prefix

        with tempfile.TemporaryDirectory(prefix=temp_prefix("cell")) as tmp:
            cfg_path, out_path, log_path = (os.path.join(tmp, n) for n in ("cell.json", "record.json", "worker.log"))
            with open(cfg_path, "w") as f:
                json.dump(cell, f)
            env = {**os.environ, **(self.env or {}), "MINDBENCH_PARENT_PID": str(os.getpid())}
            with open(log_path, "wb") as log:
                # start_new_session: the worker leads its own process group, so a timeout kills
                # it and anything it started (sandboxed programs, tokenizer threads) at once.
                proc = subprocess.Popen(
                    [sys.executable, "-m", "mindbench.sweep.worker", cfg_path, out_path],
                    stdout=subprocess.PIPE,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
            with self._lock:
                self._live[proc.pid] = proc
            reader = threading.Thread(target=_read_events, args=(proc.stdout, cell, on_event), daemon=True)
            reader.start()
            timed_out = False
            try:
                proc.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                proc.wait()
            finally:
                with self._lock:
                    self._live.pop(proc.pid, None)
            reader.join(timeout=5)
            if not timed_out and os.path.exists(out_path):
                with open(out_path) as f:
                    return Record.from_json(json.load(f))
            if timed_out:
                status, error = "timeout", f"no result within {self.timeout_s:g} s; the worker was killed"
            else:
                status, error = "crashed", _describe_exit(proc.returncode, log_path)
        from mindbench.sweep.worker import new_record

        rec = new_record(cell, hw, sw)
        rec.status, rec.error, rec.duration_s = status, error, round(time.perf_counter() - t0, 2)
        return rec


def _read_events(stream, cell: dict, on_event) -> None:
    for raw in stream:
        try:
            ev = json.loads(raw)
        except ValueError:
            continue
        if on_event:
            try:
                on_event(cell, ev)
            except Exception:
                pass  # a progress-bar hiccup must not lose the cell
    stream.close()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _describe_exit(rc: int, log_path: str) -> str:
    if rc is not None and rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        msg = f"killed by {name} ({-rc})"
        if -rc == signal.SIGKILL:
            msg += " - the kernel's out-of-memory killer, or another process"
    else:
        msg = f"worker exited with code {rc} without a result"
    tail = _last_line(log_path)
    return f"{msg}; last output: {tail}" if tail else msg


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


# Executors by name -> "module:class", in the one registry type (plug-ins: entry points in the
# group `mindbench.executors`). A missing module gives a one-line error with its install command.
EXECUTORS = Registry(
    "executor",
    "mindbench.executors",
    {
        "local": "mindbench.sweep.harness:LocalExecutor",
        "ray": "mindbench.sweep.executor_ray:RayExecutor",
    },
)
_EXECUTOR_INSTALL = {"ray": "pip install 'mindbench[ray]'"}


def get_executor(name: str, **kwargs) -> Executor:
    if name not in EXECUTORS:
        raise MindbenchError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS.names())}")
    try:
        cls = EXECUTORS.get(name)
    except (ImportError, AttributeError) as e:
        install = _EXECUTOR_INSTALL.get(name)
        raise MindbenchError(
            f"the {name} executor is not available here ({e})" + (f": {install}" if install else "")
        ) from None
    return cls(**kwargs)


# --- planning ---------------------------------------------------------------------------------

_HOST: dict = {}


def _host_info() -> tuple[dict, dict]:
    """Hardware and software of this machine, detected once per process."""
    if not _HOST:
        from mindbench.models.fingerprint import hardware, software

        _HOST["hw"], _HOST["sw"] = hardware(), software()
    return _HOST["hw"], _HOST["sw"]


def resolve_device(device: str, hw: dict) -> str:
    """'auto' -> 'cuda:0' or 'cpu', decided here (not in each worker) so that cell keys, and
    therefore --resume, are stable. A device the user names is trusted here: the cell's runtime
    checks it in the worker, where it becomes a `skipped` row with the reason."""
    from mindbench.runtimes.base import pick_device

    def problem(d):
        if d != "auto":
            return None
        if hw.get("cuda_available") or hw.get("gpus"):
            try:
                import torch  # NVML sees a GPU, but this torch build must be able to use it

                return None if torch.cuda.is_available() else "no usable GPU"
            except ImportError:
                return "no torch"
        return "no GPU"

    return pick_device(device, problem)


def plan(
    models: Iterable[str],
    precisions: Iterable[str],
    runtimes: Iterable[str] = (DEFAULT_RUNTIME,),
    suites: Iterable[str] = (DEFAULT_SUITE,),
    *,
    device: str = "cpu",
    no_weights: bool = False,
    limit: int | None = DEFAULT_LIMIT,
    repeats: int = 3,
    prompt_tokens: int = 256,
    new_tokens: int = 64,
    batch_size: int = 8,
    seed: int = 0,
    run_id: str | None = None,
    log_samples: str | None = None,
    sandboxed: bool = True,
    cache_dir: str | None = None,
    fingerprint: str | None = None,
    threads: int | None = None,
    code_protocol: str | None = None,
    fidelity: bool | None = None,
    fidelity_tokens: int | None = None,
    speed_ci: float | None = None,
    speed_max_s: float | None = None,
    llama_bench: bool = False,
    endpoints: Iterable[str] | None = None,
    api_key_env: str | None = None,
) -> list[dict]:
    """The cells of a sweep, each a complete worker config with its key. fidelity=None: on for
    pretrained weights (mindbench/suites/fidelity.py), off for random ones and for runtimes that
    cannot give full next-token distributions (served models). A served-model runtime (openai)
    gets one cell per endpoint: a sweep fans out over several servers."""
    from dataclasses import replace

    from mindbench.sweep.cellspec import CellSpec, SuiteChoice

    choices = () if no_weights else tuple(SuiteChoice.parse(s) for s in suites)  # split once, here
    cells = []
    for model in models:
        for runtime, endpoint, spec, logprobs in _targets(model, runtimes, endpoints):
            for precision in runtime_precisions(runtime, spec, precisions):
                cell = CellSpec(
                    model=spec.id,
                    runtime=runtime,
                    precision=precision,
                    device=device,
                    weights="random" if no_weights else "pretrained",
                    suites=choices,
                    limit=limit,
                    repeats=repeats,
                    prompt_tokens=prompt_tokens,
                    new_tokens=new_tokens,
                    batch_size=batch_size,
                    seed=seed,
                    run_id=run_id,
                    log_samples=log_samples,
                    sandboxed=sandboxed,
                    cache_dir=cache_dir,
                    threads=threads,
                    fidelity=_plans_fidelity(logprobs, fidelity, no_weights),
                    fidelity_tokens=fidelity_tokens,
                    speed_ci=speed_ci,
                    speed_max_s=speed_max_s,
                    llama_bench=llama_bench,
                    code_protocol=code_protocol or None,
                    endpoint=endpoint,
                    api_key_env=api_key_env if endpoint else None,
                )
                cells.append(replace(cell, cell=results.cell_key(cell.to_dict(), fingerprint)))
    cells = _reference_wanted(cells)
    # the executors pass the serialized form on, as the worker's job file
    return [c.to_dict() for c in cells]


def _plans_fidelity(logprobs, asked: bool | None, no_weights: bool) -> bool:
    """Whether a cell runs the fidelity track. Full distributions (in process): on unless
    --no-fidelity. Top-k only (a served model, suites/fidelity.measure_topk): only when --fidelity
    asks, since its reference is the model's transformers fp32 pass on this machine (a 7B model
    served on a GPU box would be loaded here) and the figure is a different, top-k one. Random
    weights: never."""
    if no_weights or not logprobs:
        return False
    if logprobs == "top-k":
        return bool(asked)
    return True if asked is None else bool(asked)


def _reference_wanted(cells: list) -> list:
    """A reference cell (fp32 transformers on a CPU) caches the model's next-token distributions
    only when another cell of this sweep will be compared with them: on `--precisions fp32`
    alone nothing is, and computing them was a third of the default run's time. A later sweep
    that needs them computes them then (every cell is self-sufficient: suites/fidelity.py)."""
    from dataclasses import replace

    from mindbench.suites.fidelity import is_reference

    compared = {(c.model, c.device) for c in cells if c.fidelity and not is_reference(c.to_dict())}
    return [
        replace(c, reference_wanted=(c.model, c.device) in compared) if c.fidelity and is_reference(c.to_dict()) else c
        for c in cells
    ]


def _targets(model: str, runtimes: Iterable[str], endpoints: Iterable[str] | None):
    """(runtime, endpoint or None, spec, log-probabilities: True full, "top-k", False none) for one model: a served-model
    runtime once per endpoint, under the server's own name for the model (no catalog entry
    needed); any other runtime once, the name resolved in the catalog (unknown names fail
    here, before any process starts)."""
    from mindbench.models.catalog import ModelSpec, resolve
    from mindbench.runtimes import get_runtime

    spec = None
    for runtime in runtimes:
        try:
            rt = get_runtime(runtime)
        except MindbenchError:  # an unknown runtime: its cells become visible error rows
            rt = None
        logprobs = getattr(rt, "full_logprobs", True) or ("top-k" if getattr(rt, "topk_logprobs", False) else False)
        if getattr(rt, "takes_endpoint", False):
            for endpoint in endpoints or [None]:
                yield runtime, endpoint, ModelSpec(model, "endpoint"), logprobs
        else:
            spec = spec or resolve(model)
            yield runtime, None, spec, logprobs


def default_precisions(runtimes: Iterable[str], device: str) -> list[str]:
    """The precisions a sweep measures when none are given: each runtime's own for `device`, in
    order, without repeats (a runtime with none, like llama.cpp, picks per model in plan)."""
    from mindbench.runtimes import get_runtime

    out: list[str] = []
    for rt in runtimes:
        out += [p for p in get_runtime(rt).default_precisions(device) if p not in out]
    return out


def runtime_precisions(runtime: str, spec, precisions: Iterable[str]) -> list[str]:
    """The precisions of a sweep that mean something on `runtime`.

    bitsandbytes precisions (fp16, int8, ...) belong to transformers and GGUF types (Q4_1, Q8_0,
    ...) to llama.cpp, so `--runtimes transformers,llamacpp --precisions fp16,int4` measures
    transformers at fp16/int4 and llama.cpp at the model's own GGUF type, instead of planning
    cells that can only fail. A list with nothing for a runtime is kept as given, so a wrong
    precision still becomes a visible `skipped` row rather than silently vanishing."""
    from mindbench.runtimes import get_runtime

    try:
        return get_runtime(runtime).select_precisions(spec, precisions)
    except InputError:  # a precision the runtime cannot give this model: exit 2 before any cell
        raise
    except MindbenchError:  # an unknown runtime: its cells become visible error rows
        return list(precisions)


# --- the sweep --------------------------------------------------------------------------------


def sweep(
    models,
    precisions,
    runtimes=(DEFAULT_RUNTIME,),
    suites=(DEFAULT_SUITE,),
    *,
    out: str | os.PathLike,
    resume: bool = False,
    executor: str | Executor = "local",
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    device: str = "auto",
    progress: bool | None = None,
    env: dict | None = None,
    **plan_kw,
) -> list[Record]:
    """Run the sweep and return one record per planned cell (records found by --resume included),
    in plan order. Every new record is appended to `out` the moment its cell finishes."""
    for name in suites:  # a broken suite file is an error now, never a stored `skipped` row
        _check_suite(name, load=not plan_kw.get("no_weights"))
    hw, _ = _host_info()
    dev = resolve_device(device, hw)
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    cells = plan(
        models, precisions, runtimes, suites, device=dev, run_id=run_id, fingerprint=hw.get("fingerprint"), **plan_kw
    )
    previous: dict[str, Record] = {}
    if resume and Path(out).exists():
        for r in results.read(out):  # latest final record per key
            if r.status in results.DONE_STATUSES and r.cell:
                previous[r.cell] = r
    todo = [c for c in cells if c["cell"] not in previous]
    if isinstance(executor, str):
        kwargs = {"timeout_s": timeout_s}
        if env:
            kwargs["env"] = env
        executor = get_executor(executor, **kwargs)

    bandwidth: dict[str, float] = {}  # device -> GB/s, measured by the first cell that runs there

    def prepare(cell: dict) -> dict:
        cell = {**cell, "bandwidth_gb_s": bandwidth.get(cell["device"])}
        bars.event(cell, {"event": "plan", "eta_s": first_estimates(cell)})  # the display's first ETAs
        return cell

    from mindbench.sweep.progress import Progress

    bars = Progress(len(cells), done=len(cells) - len(todo), enabled=progress)

    def on_event(cell: dict, ev: dict) -> None:
        if ev.get("event") == "bandwidth" and ev.get("gb_s"):
            bandwidth.setdefault(ev["device"], ev["gb_s"])
        bars.event(cell, ev)

    new: dict[str, Record] = {}
    try:
        for rec in executor.run(todo, prepare=prepare, on_event=on_event):
            results.append(out, rec)
            bw = rec.bandwidth_gb_s
            # only a read-bandwidth ceiling; an old record's copy figure is remeasured
            if bw and rec.config.device and rec.roofline.bandwidth_method:
                bandwidth.setdefault(rec.config.device, bw)
            new[rec.cell] = rec
            bars.finished(rec)
    finally:
        bars.close()
    # Plan order; a worker on another node may report another fingerprint, so fall back to
    # matching on everything but it.
    by_key = {**previous, **new}
    ordered, used = [], set()
    for c in cells:
        rec = by_key.get(c["cell"]) or next(
            (r for k, r in new.items() if k not in used and k.rsplit("|", 1)[0] == c["cell"].rsplit("|", 1)[0]), None
        )
        if rec is not None:
            used.add(rec.cell)
            ordered.append(rec)
    return ordered


# Before a cell has loaded anything: reading the weights and importing the runtime take about
# LOAD_S + weights / LOAD_MB_S seconds, and a bandwidth measurement about BANDWIDTH_S (measured on
# the 2-core test host: 3-6 s, 5-6.5 s). Only for the display's first ETAs.
LOAD_S, LOAD_MB_S, BANDWIDTH_S = 4.0, 200.0, 5.0


def first_estimates(cell: dict) -> dict:
    """Estimated seconds of a cell's stages before it starts, from mindbench's estimator (the
    runtime's estimate_cell at the measured or assumed bandwidth) and each stage's size; the
    worker replaces them with its own once the model is loaded, then with measured rates.
    {} when the estimator has nothing for this model."""
    try:
        from mindbench.models import hardware
        from mindbench.models.catalog import resolve
        from mindbench.runtimes import get_runtime
        from mindbench.sweep.worker import stage_estimates

        gpu = is_cuda(cell.get("device", "cpu"))
        assumed = hardware.ASSUMED_GPU_BANDWIDTH_GB_S if gpu else hardware.ASSUMED_CPU_BANDWIDTH_GB_S
        est = get_runtime(cell["runtime"]).estimate_cell(
            resolve(cell["model"]),
            cell["precision"],
            "cuda" if gpu else "cpu",
            context=int(cell.get("prompt_tokens") or 256) + int(cell.get("new_tokens") or 64),
            bandwidth_gb_s=cell.get("bandwidth_gb_s") or assumed,
            efficiency=None,
        )
        plan = stage_estimates(cell, est.get("decode tok/s"), None)
        plan["load"] = round(LOAD_S + (est.get("weights") or 0) / LOAD_MB_S, 1)
        if not cell.get("bandwidth_gb_s"):
            plan["bandwidth"] = BANDWIDTH_S
        return plan
    except Exception:  # noqa: BLE001 - an estimate for a display must never stop the sweep
        return {}


def _took(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


# --- checking the user's values (mindbench/cli/run.py, before anything starts) ---------------


def _check_suite(name: str, load: bool = True) -> None:
    """A suite name, or suite:subset (e.g. code:easy), that exists and whose file loads and
    validates (an empty or broken file is an error now, never a `skipped` row that --resume
    would then count as done); checked before any cell starts."""
    from mindbench.suites import suite_names
    from mindbench.sweep.cellspec import SuiteChoice

    choice = SuiteChoice.parse(name)
    base, subset = choice.name, choice.subset
    if base not in suite_names():  # built-in and plug-in suites
        raise MindbenchError(
            f"unknown suite {base!r}; choose from {', '.join(suite_names())} "
            f"(or suite:subset, e.g. code:easy), all or none"
        )
    if load or subset:
        from mindbench.suites import load_suite, only_subset

        tasks = load_suite(base)
        if subset:
            only_subset(tasks, base, subset)


def _check_out(out: Path) -> None:
    """The results store can be created and appended to, checked before the first cell so that
    an unwritable --out fails now, not after the work. Creates nothing, truncates nothing."""
    out = Path(out).expanduser().absolute()
    if out.is_dir():
        raise InputError(f"--out {out} is a folder; give a file in it, e.g. {out / 'runs.jsonl'}")
    if out.exists():
        try:
            with open(out, "a", encoding="utf-8"):
                pass
        except OSError as e:
            raise InputError(f"--out {out} cannot be appended to ({e.strerror or e}); choose a writable file") from None
        return
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"--out {out}: {parent} is a file, not a folder; choose another path")
    try:  # a throw-away folder where the store (and its missing folders) would be made
        os.rmdir(tempfile.mkdtemp(prefix=".mindbench-probe-", dir=parent))
    except OSError as e:
        raise InputError(
            f"--out {out}: cannot create files in {parent} ({e.strerror or e}); choose a writable place"
        ) from None


def _check_precisions(precs: list[str], rts: list[str]) -> None:
    """Every runtime known, every precision meaningful to at least one chosen runtime."""
    from mindbench.runtimes import get_runtime, runtime_names

    for rt in rts:
        if rt not in runtime_names():
            raise InputError(f"unknown runtime {rt!r}; choose from {', '.join(runtime_names())}")
        try:  # its packages, named with the install command, before any cell starts
            get_runtime(rt).check_available()
        except MindbenchError as e:
            raise InputError(f"--runtimes {rt}: {e.message}") from None
    for p in precs:
        if not any(get_runtime(rt).takes(p) for rt in rts):
            others = [o for o in runtime_names() if o not in rts]  # where it might belong
            raise InputError(
                f"precision {p!r} means nothing to --runtimes {','.join(rts)}: "
                + "; ".join(
                    [f"{rt} takes {get_runtime(rt).precision_help}" for rt in rts]
                    + [f"{o} (--runtimes {o}) takes {get_runtime(o).precision_help}" for o in others]
                )
            )


def _validate_run(suites: list[str], models: list[str], out: Path, executor: str, no_weights: bool) -> None:
    """The user's values for `mindbench run` (precisions: _check_precisions), before any process
    starts or model loads; each problem is one line and exit 2."""
    from mindbench.models.catalog import resolve

    try:
        for name in suites:
            _check_suite(name, load=not no_weights)
        for m in models:
            from mindbench.sweep.preflight import _check_path

            _check_path(m)  # "./x does not exist", not "unknown model './x'"
            spec = resolve(m)
            if spec.source == "local" and not no_weights and os.path.isdir(spec.path):
                from mindbench.runtimes.transformers.loading import check_local_folder  # light: no torch

                check_local_folder(Path(spec.path))
        if executor not in EXECUTORS:
            raise InputError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS.names())}")
        _check_out(out)
    except InputError:
        raise
    except MindbenchError as e:
        raise InputError(e.message) from None


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]

"""Run a sweep's cells as Ray tasks, on a laptop's local Ray or a multi-node GPU cluster.

    mindbench run --executor ray [--ray-address ray://head:10001 | auto]

Each cell becomes one Ray task that does exactly what the local executor does on this machine:
it starts `python -m mindbench.sweep.worker` in its own process (so an OOM or a segfault still costs
one row, not the Ray worker) and returns the record. The record therefore carries the hardware
fingerprint of the node that ran it, and the driver appends it to the one results store as soon
as it arrives, exactly as locally; --resume works unchanged because it happens before the
executor sees the cells.

Resources: a CUDA cell asks for one GPU; a CPU cell asks, by default, for as many CPUs as the
largest node has, so that two CPU cells never share a node's cores and memory bus (which would
corrupt the speed figures). `cpus_per_cell` lowers that for quality-only sweeps.

Failures: a task whose Ray worker or node dies is retried once by Ray (max_retries=1); a second
death becomes a `crashed` row with the reason, and the sweep goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from mindbench.errors import MindbenchError
from mindbench.measure.device import is_cuda
from mindbench.store.record import Record
from mindbench.sweep.harness import DEFAULT_TIMEOUT_S, Executor

INSTALL = "pip install 'mindbench[ray]' (or: pip install 'ray>=2.9')"


def _run_cell_on_node(cell: dict, timeout_s: float | None, env: dict | None) -> dict:
    """Body of the Ray task: the local executor, on whichever node Ray picked. The record travels
    back as its stored JSON, so a node and the driver need not pickle the same class."""
    from mindbench.sweep.harness import LocalExecutor

    return next(iter(LocalExecutor(timeout_s=timeout_s, env=env).run([cell]))).to_json()


class RayExecutor(Executor):
    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        env: dict | None = None,
        cpus_per_cell: float | None = None,
        max_retries: int = 1,
    ):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise MindbenchError(f"--executor ray needs Ray, which is not installed: {INSTALL}") from None
        self.address = address or os.environ.get("MINDBENCH_RAY_ADDRESS") or os.environ.get("RAY_ADDRESS")
        self.timeout_s = timeout_s
        self.env = env
        self.cpus_per_cell = cpus_per_cell
        self.max_retries = max_retries

    def _connect(self):
        import ray

        if not ray.is_initialized():
            try:
                ray.init(
                    address=self.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    ignore_reinit_error=True,
                    configure_logging=False,
                )
            except ConnectionError as e:
                raise MindbenchError(
                    f"cannot connect to the Ray cluster at {self.address}: {e}; start it with "
                    f"`ray start --head` or fix --ray-address"
                ) from None
        return ray

    def _resources(self, ray, cell: dict) -> dict:
        if is_cuda(cell.get("device", "cpu")):
            return {"num_gpus": 1, "num_cpus": 1}
        cpus = self.cpus_per_cell
        if cpus is None:
            sizes = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
            cpus = max(sizes) if sizes else 1
        return {"num_cpus": cpus}

    def run(
        self,
        cells: list[dict],
        *,
        prepare: Callable[[dict], dict] | None = None,
        on_event: Callable[[dict, dict], None] | None = None,
    ) -> Iterator[Record]:
        if not cells:
            return
        ray = self._connect()
        from ray import exceptions as rex

        task = ray.remote(_run_cell_on_node)
        pending = {}
        for cell in cells:
            cell = prepare(cell) if prepare else cell
            opts = {**self._resources(ray, cell), "max_retries": self.max_retries, "retry_exceptions": False}
            if self.env:
                opts["runtime_env"] = {"env_vars": {k: str(v) for k, v in self.env.items()}}
            pending[task.options(**opts).remote(cell, self.timeout_s, None)] = cell
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                ref = done[0]
                cell = pending.pop(ref)
                try:
                    yield Record.from_json(ray.get(ref))
                except (
                    rex.WorkerCrashedError,
                    rex.NodeDiedError,
                    rex.RayTaskError,
                    rex.TaskCancelledError,
                    rex.ObjectLostError,
                    rex.OwnerDiedError,
                ) as e:
                    yield self._crashed(cell, e)
        finally:
            for ref in pending:  # the driver stopped early (Ctrl-C): don't leave cells running
                ray.cancel(ref, force=True)

    def _crashed(self, cell: dict, e: BaseException) -> Record:
        from mindbench.sweep.harness import _host_info
        from mindbench.sweep.worker import new_record

        hw, sw = _host_info()
        first = (str(e).strip().splitlines() or [""])[0][:300]
        rec = new_record(cell, hw, sw)
        rec.status = "crashed"
        rec.error = f"the Ray worker running this cell died {self.max_retries + 1} times ({type(e).__name__}: {first})"
        return rec

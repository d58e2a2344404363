"""Pre-flight: can every model of a sweep be had here? Checked in the parent, before any worker
starts, within a few seconds, so a model that cannot load is one line and exit 2 with nothing
appended to the store, not a `skipped` or `error` row minutes later (which --resume would then
count as done).

Per model source:
- a path (./x, /x, ~/x, *.gguf, or a/b whose first part is a local folder) that does not exist;
- a Hub id: a valid repo id (huggingface_hub's own rules); then, unless it is already in the
  cache: a gated catalog model with no token is refused at once; HF_HUB_OFFLINE=1 is refused;
  otherwise one HEAD request with a short timeout (models/hub.probe) says whether the repo, and
  the file the runtime will download, can be had (missing, gated, unreachable);
- a packaged model: its packages installed, else the install command;
- a local folder or GGUF file: what the runtime needs (runtimes' `hub_file`, loading's
  check_local_folder in harness._validate_run).

With cells that run on other machines (--executor ray) only what does not depend on this
machine's cache or network is checked (ids, paths).
"""

from __future__ import annotations

import os

from mindbench.errors import InputError, MindbenchError

PROBE_TIMEOUT_S = 3.0  # one HEAD to the Hub: answered in well under a second when it is reachable


def _looks_like_path(name: str) -> bool:
    if name.startswith(("/", "./", "../", "~")) or name.lower().endswith(".gguf"):
        return True
    first = name.split("/", 1)[0]
    return "/" in name and first not in ("", ".") and os.path.isdir(first)


def _check_path(name: str) -> None:
    path = os.path.expanduser(name)
    if _looks_like_path(name) and not os.path.exists(path):
        what = "GGUF file" if name.lower().endswith(".gguf") else "model folder"
        raise InputError(
            f"{what} {name} does not exist: give an existing model folder (config.json, weights, "
            f"tokenizer) or .gguf file, or a Hub id (org/name)"
        )


def check_repo_id(repo: str) -> None:
    """huggingface_hub's rules for a repo id (length, characters), without any request."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as e:
        shown = repo if len(repo) <= 60 else f"{repo[:40]}...({len(repo)} characters)"
        why = str(e).strip().splitlines()[0]
        if len(repo) > 96:
            why = "longer than the Hub's 96 characters"
        raise InputError(f"{shown!r} is not a valid Hugging Face repo id ({why}): use org/name") from None


def _cached(repo: str, filename: str | None) -> bool:
    from mindbench.models import hub

    if filename is None:
        return hub.cached_snapshot(repo) is not None
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, filename), str)


def check_hub(spec, repo: str, filename: str | None, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """`repo` (and `filename`) is cached, or the Hub says now that it can be downloaded."""
    if _cached(repo, filename):
        return
    from mindbench.models import hub
    from mindbench.tokens import resolve_token

    token, _ = resolve_token()
    if getattr(spec, "gated", False) and not token and repo == spec.repo:
        raise InputError(hub.gated_message(repo))  # no request needed: it cannot be had without one
    try:
        hub.probe(repo, filename, token=token, timeout_s=timeout_s)
    except MindbenchError as e:
        raise InputError(e.message) from None


def check_models(
    models, runtimes, precisions, *, no_weights: bool = False, local: bool = True, timeout_s: float = PROBE_TIMEOUT_S
) -> None:
    """Every (model, runtime) of a sweep can be had; the first that cannot raises InputError
    (exit 2). `local`: cells run on this machine, so its cache and network decide."""
    from mindbench.models.catalog import availability, resolve
    from mindbench.runtimes import get_runtime

    rts = [get_runtime(r) for r in runtimes]
    rts = [rt for rt in rts if not getattr(rt, "takes_endpoint", False)]  # served: checked by their own preflight
    if not rts:
        return
    for name in models:
        _check_path(name)
        try:
            spec = resolve(name)
        except MindbenchError as e:
            raise InputError(e.message) from None
        if spec.source == "hub":
            check_repo_id(spec.repo)
        if no_weights or not local:  # random weights: nothing to download; elsewhere: their cache decides
            continue
        if spec.source == "packaged":
            ok, why = availability(spec)
            if not ok:
                raise InputError(
                    f"model {spec.id!r} is {why}" if why.startswith("not installed") else f"model {spec.id!r}: {why}"
                )
        for rt in rts:
            try:
                wanted = rt.select_precisions(spec, precisions) if precisions else [None]
                for precision in wanted or [None]:
                    where = rt.hub_file(spec, precision)
                    if where:
                        check_hub(spec, *where, timeout_s=timeout_s)
            except InputError:
                raise
            except MindbenchError as e:
                raise InputError(e.message) from None

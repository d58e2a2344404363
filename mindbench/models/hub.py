"""The Hugging Face Hub boundary: the only module that talks to the Hub. Every Hub failure
becomes a one-line MindbenchError that says what to do. Tests fake these calls; nothing in CI
downloads."""

from __future__ import annotations

import os

from mindbench.errors import GatedModelError, ModelNotFoundError, OfflineError
from mindbench.tokens import redact

# Weights in safetensors, the tokenizer and the configs; never the .bin duplicates or other
# frameworks' files (they can double a download).
ALLOW = ["*.json", "*.safetensors", "*.model", "*.txt", "*.py", "*.jinja", "*.tiktoken"]
ALLOW_BIN = ["*.json", "*.bin", "*.model", "*.txt", "*.py", "*.jinja", "*.tiktoken"]


def gated_message(repo: str) -> str:
    # The three steps from the user's document.
    return (
        f"{repo} is a gated repository: 1) open https://huggingface.co/{repo} and request access "
        f"(accept the license), 2) create a read token at https://huggingface.co/settings/tokens, "
        f"3) set HF_TOKEN=<token> (or put it in .env, or pass hf_token=) and retry"
    )


def cached_snapshot(repo: str, cache_dir: str | None = None, revision: str | None = None) -> str | None:
    """Local snapshot folder of `repo` if it is fully in the cache, else None. Never networks."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(
            repo, revision=revision, cache_dir=cache_dir, local_files_only=True, allow_patterns=ALLOW
        )
    except Exception:
        return None


def download(repo: str, *, token: str | None, cache_dir: str | None = None, revision: str | None = None) -> str:
    """Download (or reuse) a model snapshot; return its folder. Raises clear errors."""
    from huggingface_hub import errors as hfe
    from huggingface_hub import list_repo_files, snapshot_download

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        found = cached_snapshot(repo, cache_dir, revision)
        if found:
            return found
        raise OfflineError(
            f"{repo} is not in the local cache and HF_HUB_OFFLINE=1: unset it and connect once "
            f"to download, or copy the model folder here and pass its path"
        )
    # One HEAD request first, no retries: offline, missing or gated is said at once, not after
    # huggingface_hub's ~25 s of retries (measured here, offline).
    probe(repo, token=token, revision=revision, timeout_s=10.0)
    try:
        files = list_repo_files(repo, revision=revision, token=token)
        allow = ALLOW if any(f.endswith(".safetensors") for f in files) else ALLOW_BIN
        return snapshot_download(repo, revision=revision, cache_dir=cache_dir, token=token, allow_patterns=allow)
    except hfe.GatedRepoError:
        raise GatedModelError(gated_message(repo)) from None
    except hfe.RevisionNotFoundError:
        raise ModelNotFoundError(f"{repo} has no revision {revision!r}: check the branch, tag or commit") from None
    except hfe.RepositoryNotFoundError:
        hint = (
            " (no Hugging Face token was found: if it is private or gated, set HF_TOKEN)"
            if not token
            else " (or your token has no access to it)"
        )
        raise ModelNotFoundError(f"{repo} was not found on the Hugging Face Hub{hint}; check the id") from None
    except hfe.LocalEntryNotFoundError:
        raise OfflineError(
            f"{repo} is not cached and the Hub cannot be reached: check the network, or set "
            f"HF_ENDPOINT to a mirror (HF_HUB_ENABLE_HF_TRANSFER=1 speeds up large downloads)"
        ) from None
    except hfe.HfHubHTTPError as e:
        raise OfflineError(f"the Hub refused {repo}: {redact(str(e).splitlines()[0], token)}") from None
    except Exception as e:
        if not _is_connection_error(e):
            raise
        found = cached_snapshot(repo, cache_dir, revision)
        if found:
            return found
        raise OfflineError(
            f"cannot reach the Hugging Face Hub for {repo} ({type(e).__name__}) and it is not "
            f"cached: check the network, or set HF_ENDPOINT to a mirror"
        ) from None


def _is_connection_error(e: BaseException) -> bool:
    """huggingface_hub 1.x+ uses httpx (whose errors are not OSError), older ones requests."""
    mod = type(e).__module__ or ""
    return isinstance(e, (OSError, TimeoutError)) or mod.startswith(("httpx", "httpcore", "requests", "urllib3"))


def probe(
    repo: str, filename: str | None = None, *, token: str | None, revision: str | None = None, timeout_s: float = 3.0
) -> None:
    """Can `repo` (and `filename` in it; default config.json) be downloaded now? One HEAD request,
    no retries, at most `timeout_s` seconds, so `mindbench run` can refuse an unreachable, missing
    or gated model before any worker starts instead of recording a `skipped` cell minutes later.
    Returns when it can; raises the same one-line errors as `download`."""
    from huggingface_hub import errors as hfe
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    name = f"{repo}/{filename}" if filename else repo
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise OfflineError(
            f"{repo} is not in the local cache and HF_HUB_OFFLINE=1: unset it and connect once "
            f"to download, or copy the model folder here and pass its path"
        )
    try:
        get_hf_file_metadata(
            hf_hub_url(repo, filename or "config.json", revision=revision), token=token, timeout=timeout_s
        )
    except hfe.GatedRepoError:
        raise GatedModelError(gated_message(repo)) from None
    except hfe.RevisionNotFoundError:
        raise ModelNotFoundError(f"{repo} has no revision {revision!r}: check the branch, tag or commit") from None
    except hfe.RepositoryNotFoundError:
        hint = (
            " (no Hugging Face token was found: if it is private or gated, set HF_TOKEN)"
            if not token
            else " (or your token has no access to it)"
        )
        raise ModelNotFoundError(f"{repo} was not found on the Hugging Face Hub{hint}; check the id") from None
    except (hfe.EntryNotFoundError, getattr(hfe, "RemoteEntryNotFoundError", hfe.EntryNotFoundError)):
        raise ModelNotFoundError(
            f"{repo} has no file {filename or 'config.json'}"
            + (
                ": pick another --precision"
                if filename
                else ": it is not a transformers model folder (a GGUF-only repo runs with --runtimes llamacpp)"
            )
        ) from None
    except hfe.OfflineModeIsEnabled:
        raise OfflineError(
            f"{name} is not in the local cache and the Hub is set offline (HF_HUB_OFFLINE): "
            f"connect once to download, or pass a local path"
        ) from None
    except hfe.HfHubHTTPError as e:
        raise OfflineError(f"the Hub refused {name}: {redact(str(e).splitlines()[0], token)}") from None
    except Exception as e:
        if not _is_connection_error(e):
            raise
        raise OfflineError(
            f"cannot reach the Hugging Face Hub for {name} within {timeout_s:g} s "
            f"({type(e).__name__}) and it is not cached: check the network, set HF_ENDPOINT to a "
            f"mirror, or give a local model folder"
        ) from None

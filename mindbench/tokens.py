"""Hugging Face token resolution. The token is looked up, passed to huggingface_hub, and never
printed, logged or stored: results, logs and the sandbox only ever see `redact()`ed text.

Order (first wins): hf_token= argument, HF_TOKEN environment variable, a .env file in the
working directory, huggingface_hub's stored token (`huggingface-cli login`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_HF_TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{8,}")


def resolve_token(hf_token: str | None = None, env_file: str | os.PathLike = ".env") -> tuple[str | None, str]:
    """Return (token or None, where it came from). The source is safe to show; the token is not."""
    if hf_token:
        return hf_token, "argument"
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"], "HF_TOKEN"
    if Path(env_file).is_file():
        from dotenv import dotenv_values  # read without touching os.environ

        value = dotenv_values(env_file).get("HF_TOKEN")
        if value:
            return value, ".env"
    try:
        from huggingface_hub import get_token

        stored = get_token()
    except Exception:  # a broken token file must not break loading of public models
        stored = None
    if stored:
        return stored, "huggingface_hub login"
    return None, "none"


def redact(text: str, *secrets: str | None) -> str:
    """Remove anything token-like from text meant for a user, a log or a results file."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return _HF_TOKEN_RE.sub("hf_***", text)

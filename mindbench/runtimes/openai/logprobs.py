"""Reading prompt log-probabilities from a server (`echo` + `logprobs` on /v1/completions), for
the fidelity track's top-k form (suites/fidelity.py: measure_topk). Pure: no I/O, no torch.

What servers answer differs, so nothing here trusts an answer before it has been checked:

  * vLLM and OpenAI: `choices[0].logprobs` = {tokens, token_logprobs, top_logprobs, text_offset},
    one entry per prompt token and then per generated one; entry 0 is null; entry i holds the
    top-k of the model's distribution *for token i given the tokens before it* (convention
    "same"), plus token i's own log-probability.
  * llama-cpp-python 0.3.36 (with logits_all): the same shape, but its code zips the score rows
    with the prompt tokens *after dropping a leading BOS*. For a model that adds BOS (Gemma 3) the
    rows line up ("same"); for one that does not (SmolLM2) entry i holds the distribution for
    token i + 1 (convention "next"), and the first prediction is lost with entry 0's null.
  * llama.cpp's llama-server: echo is ignored and logprobs covers the generated token only
    (llama.cpp issue #27174): prompt log-probabilities are absent.

So the convention is decided per (server, model) by a probe (`convention`): two prompts that
differ only in their last token. Under "same" the last prompt token's entry has not seen that
token, so both answers give it the same top-k; under "next" it has, so they differ.
"""

from __future__ import annotations

import re

PROBE = "Monday, Tuesday, Wednesday, Thursday, Friday"
PROBE_OTHER = "Monday, Tuesday, Wednesday, Thursday, banana"  # the same but for the last token
SAME, NEXT = "same", "next"
CONVENTIONS = {
    SAME: "entry i is the distribution of token i given the tokens before it (OpenAI, vLLM)",
    NEXT: "entry i is the distribution of token i + 1 (llama-cpp-python on a model without BOS)",
}
SAME_TOL = 0.05  # nats: two answers' top-k values for the same context agree within this
_TOKEN_ID = re.compile(r"^token_id:(\d+)$")  # vLLM's return_tokens_as_token_ids


class Absent(Exception):
    """The server gives no prompt log-probabilities; the message says what it gave instead."""


def entries(choice: dict) -> tuple[list[str], list[dict | None]]:
    """(tokens, top_logprobs) of one completions choice, echoed prompt first. Raises Absent when
    the answer carries no per-prompt-token entries."""
    lp = choice.get("logprobs") if isinstance(choice, dict) else None
    if not isinstance(lp, dict):
        raise Absent("the answer has no logprobs")
    if "content" in lp and "top_logprobs" not in lp:
        # llama-server's chat-style list: the generated token's entries only, echo ignored
        raise Absent(f"logprobs cover the {len(lp.get('content') or [])} generated token(s) only, not the prompt")
    tokens, tops = lp.get("tokens"), lp.get("top_logprobs")
    if not isinstance(tokens, list) or not isinstance(tops, list):
        raise Absent("logprobs lack tokens/top_logprobs")
    if not any(isinstance(t, dict) and t for t in tops[:-1]):
        raise Absent("no log-probabilities for the prompt's tokens (echo is not honoured)")
    return [str(t) for t in tokens], list(tops)


def top(entry: dict | None, k: int) -> list[tuple[str, float]]:
    """The k largest (key, logprob) of one entry. A server adds the actual token's own entry to
    its top-k (vLLM, llama-cpp-python), so an entry can hold k + 1; the cell's top-k is the k
    largest."""
    if not entry:
        return []
    return sorted(((str(key), float(v)) for key, v in entry.items()), key=lambda kv: -kv[1])[:k]


def key_id(key: str, lookup: dict[str, int] | None) -> int | None:
    """The token id a top_logprobs key names: vLLM's "token_id:N", else the detokenized string
    looked up in `lookup` (strings several ids share are left out of it: None)."""
    m = _TOKEN_ID.match(key)
    if m:
        return int(m.group(1))
    return (lookup or {}).get(key)


def convention(answer: dict, other: dict, k: int) -> str:
    """SAME or NEXT from the two probe answers (PROBE, PROBE_OTHER). Raises Absent when there are
    no prompt log-probabilities, ValueError when the answers cannot tell."""
    ta, ea = entries(answer)
    tb, eb = entries(other)
    n = min(len(ta), len(tb))
    # the last position where the prompts agree up to and including its own token is n - 2;
    # the last prompt token's entry is the first that may differ
    last = next((i for i in range(n) if ta[i] != tb[i]), None)
    if last is None or last == 0 or last >= len(ea) or last >= len(eb):
        raise ValueError("the probe answers do not echo the two prompts' differing last token")
    a, b = dict(top(ea[last], k)), dict(top(eb[last], k))
    if not a or not b:
        raise ValueError("the probe answers have no entry for the prompt's last token")
    if set(a) == set(b) and all(abs(a[x] - b[x]) <= SAME_TOL for x in a):
        return SAME
    return NEXT


def predictions(tops: list, conv: str, offset: int, n_ids: int) -> list[dict | None]:
    """Entry per prediction of a prompt of n_ids ids: element j - 1 is the distribution of id j
    given ids < j (j = 1 .. n_ids - 1), None where the server gave none (entry 0 is always
    null). `offset`: ids the echo leaves out at the start (llama-cpp-python drops a leading BOS),
    so echoed token e is id e + offset."""
    out = []
    for j in range(1, n_ids):
        e = j - offset
        i = e if conv == SAME else e - 1
        entry = tops[i] if 0 <= i < len(tops) else None
        out.append(entry if isinstance(entry, dict) and entry else None)
    return out


def echo_offset(tokens: list[str], expected: list[str], bos: bool) -> int | None:
    """How the echoed tokens line up with the ids sent (their strings `expected`): 0 when token
    e is id e, 1 when the echo dropped the leading BOS (`bos`: the first id is BOS); None when
    they are not the same tokens (the server split the text otherwise: never a silent figure)."""
    for off in (0, 1) if bos else (0,):
        want = expected[off:]
        if len(tokens) >= len(want) and tokens[: len(want)] == want:
            return off
    return None

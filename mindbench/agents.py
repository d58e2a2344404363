"""Agents on the shared provider: CodeAgent, ChatAgent, DataAnalysisAgent.

The user's document ends with `agent = CodeAgent(llm_provider=llm); await agent.process(...)`.
Here each agent is a small, honest loop around a provider:

- A provider is anything with an async (or plain) `generate(prompt, system_prompt=None,
  temperature=..., max_tokens=...)` returning text: `LocalModelProvider`, or a scripted stand-in
  in tests. With no provider, an agent asks the recommender for the configuration measured best
  for its task (`LocalModelProvider.from_recommendation(task=...)`), on first use, so building an
  agent is cheap and loading happens when there is work.
- Everything the model writes runs only through `mindbench.sandbox.run_python` (sandboxed, no
  opt-out here): a model's code never runs in this process.
- A failure (test error, traceback, timeout, no code at all) is fed back to the model as the next
  prompt, up to `max_attempts`; the result says how many attempts it took and the last error.

The first attempt is greedy (temperature 0). Retries sample (`retry_temperature`, 0.7, with the
attempt number as seed, so a run is still reproducible): small models often ignore the failure
fed back and, greedy, would repeat the same wrong answer word for word (SmolLM2-135M does).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import math
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from mindbench.errors import MindbenchError
from mindbench.suites.scoring import fenced_blocks

CODE_SYSTEM_PROMPT = (
    "You are a careful Python programmer. Answer with the complete solution in a single ```python code block."
)
CHAT_SYSTEM_PROMPT = "You are a helpful assistant. Answer clearly and concisely."
DATA_SYSTEM_PROMPT = (
    "You are a data analyst who writes Python with pandas. Answer with one ```python code block that prints the answer."
)

# Generation ends at the fence that closes the code block: the prose the model tends to add after
# it costs time and is never used. "\n```\n" does not match an opening "```python" fence.
CODE_STOP = ("\n```\n",)
ERROR_TAIL_CHARS = 1500  # how much of a traceback goes back to the model
DATA_FILE = "data.csv"  # the name the data has in the sandbox's working dir


# --- talking to a provider ----------------------------------------------------------------------


def _check_provider(provider) -> None:
    if provider is not None and not callable(getattr(provider, "generate", None)):
        raise MindbenchError(
            f"llm_provider must have a generate(prompt, system_prompt=..., ...) method "
            f"(e.g. a LocalModelProvider); got {type(provider).__name__}"
        )


class _AgentBase:
    task = "chat"  # what the recommender is asked for when no provider is given

    # None keeps the provider's default (1.1, the user's document's value). Code agents use 1.0:
    # code repeats identifiers by nature, and a penalty on repeats measurably derails small
    # models (SmolLM2 renames `add` and garbles the body at 1.1, writes it right at 1.0).
    repetition_penalty: float | None = None

    def __init__(
        self,
        llm_provider,
        system_prompt: str,
        temperature: float,
        max_tokens: int,
        retry_temperature: float | None = None,
    ):
        _check_provider(llm_provider)
        if max_tokens < 1:
            raise MindbenchError(f"max_tokens must be at least 1, got {max_tokens}")
        self._provider = llm_provider
        self.system_prompt = system_prompt
        self.temperature = temperature
        self.retry_temperature = temperature if retry_temperature is None else retry_temperature
        self.max_tokens = max_tokens

    @property
    def llm_provider(self):
        """The provider; the recommended one for this agent's task when none was given."""
        if self._provider is None:
            from mindbench.provider import LocalModelProvider

            self._provider = LocalModelProvider.from_recommendation(task=self.task)
        return self._provider

    async def _generate(self, prompt, *, stop: tuple[str, ...] = (), attempt: int = 1) -> str:
        gen = self.llm_provider.generate
        kwargs = {
            "system_prompt": self.system_prompt,
            "temperature": self.temperature if attempt == 1 else self.retry_temperature,
            "max_tokens": self.max_tokens,
            "seed": attempt,
        }
        if self.repetition_penalty is not None:
            kwargs["repetition_penalty"] = self.repetition_penalty
        if stop:
            kwargs["stop"] = list(stop)
        # Duck typing: pass only the keywords this generate accepts (a minimal provider may take
        # no `stop`), and accept a plain function as well as a coroutine function.
        try:
            params = inspect.signature(gen).parameters
        except (TypeError, ValueError):
            params = {}
        if params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            kwargs = {k: v for k, v in kwargs.items() if k in params}
        out = gen(prompt, **kwargs)
        if inspect.isawaitable(out):
            out = await out
        if not isinstance(out, str):
            raise MindbenchError(f"the provider's generate returned {type(out).__name__}, expected str")
        return out


def _need_text(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MindbenchError(f"{what} must be a non-empty string; got {value!r:.60}")
    return value


async def _sandbox(code: str, **kw):
    """run_python in a worker thread, so a running program does not block the event loop."""
    from mindbench.sandbox import run_python

    return await asyncio.to_thread(run_python, code, **kw)


def _error_text(run) -> str:
    """What went wrong in a sandbox run, as the model should see it: the end of the traceback."""
    if run.timed_out:
        return f"the program did not finish within the time limit ({run.reason})"
    # The sandbox's temp dir in tracebacks is noise to the model and would make prompts differ
    # from run to run.
    tail = re.sub(r'File "[^"]*/program\.py"', 'File "program.py"', run.stderr.strip())
    if len(tail) > ERROR_TAIL_CHARS:
        tail = "..." + tail[-ERROR_TAIL_CHARS:]
    return tail or f"the program failed ({run.reason}) without an error message"


# --- pulling code out of a reply ----------------------------------------------------------------


def _looks_like_code(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return bool(re.search(r"^\s*(def |class |import |from \S+ import |print\()", text, re.M))


def _candidate_blocks(reply: str) -> list[str]:
    """Python code in a reply: ```python blocks first; untagged blocks only when there are none
    (the model often adds an untagged "Output:" block that is not code); a bare reply that parses
    as Python when there is no block at all."""
    blocks = [b for b in fenced_blocks(reply, ("python", "py", "python3")) if b.strip()]
    if not blocks:
        blocks = [b for b in fenced_blocks(reply, ("",)) if b.strip() and _looks_like_code(b)]
    if not blocks and _looks_like_code(reply.strip()):
        blocks = [reply.strip()]
    return blocks


def _functions(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return re.findall(r"^def\s+(\w+)\s*\(", code, re.M)
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def extract_code(reply: str, tests: str | None = None) -> str | None:
    """The solution code in a model's reply, or None when it wrote none.

    With several blocks, the one defining a function the tests call wins, then any block that
    defines a function, then the first block.
    """
    blocks = _candidate_blocks(reply)
    if not blocks:
        return None
    called = set(re.findall(r"\b(\w+)\s*\(", tests or ""))
    for pick in (lambda b: called & set(_functions(b)), _functions):
        for b in blocks:
            if pick(b):
                return b.strip("\n") + "\n"
    return blocks[0].strip("\n") + "\n"


def _checks(code: str, tests: str, entry_point: str | None = None) -> str:
    """The tests as they run after the code: a block of asserts, or a human-eval style
    `def check(candidate)` that is called here with the solution function when the tests do not
    call it themselves."""
    checks = f"{tests.strip()}\n"
    defines_check = re.search(r"^def\s+check\s*\(", tests, re.M)
    calls_check = re.search(r"^check\s*\(", tests, re.M)
    if defines_check and not calls_check:
        if entry_point is None:
            funcs = _functions(code)
            in_tests = [f for f in funcs if re.search(rf"\b{re.escape(f)}\b", tests)]
            entry_point = (in_tests or funcs or [None])[0]
        if entry_point is None:
            checks += "\nraise NameError('the solution defines no function to pass to check()')\n"
        else:
            checks += f"\ncheck({entry_point})\n"
    return checks


def checked_program(code: str, tests: str | None, entry_point: str | None = None, packages: tuple[str, ...] = ()):
    """What the sandbox runs for a solution: the code in the sandbox; the user's tests in a
    separate, trusted checker process where each function the code defines is a proxy whose
    calls run in the sandbox and return plain data (mindbench/sandbox/checked.py). No tests: the
    code only has to run to its end. So neither sys.exit(0) before the tests nor an object that
    claims to equal anything can pass."""
    from mindbench.sandbox.checked import Checked

    return Checked(
        code,
        _checks(code, tests, entry_point) if tests else "",
        need=(entry_point,) if entry_point and tests else (),
        packages=packages,
        objects=True,
    )


def build_test_program(code: str, tests: str, entry_point: str | None = None) -> str:
    """The program that checks `code` as a reader sees it: the code, then the tests."""
    return checked_program(code, tests, entry_point).layout()


# --- CodeAgent ----------------------------------------------------------------------------------


@dataclass
class CodeResult:
    code: str | None  # the last code extracted (None: the model never wrote any)
    passed: bool | None  # tests passed; None when there were no tests and it ran
    attempts: int
    error: str | None  # the last failure fed back (None when it succeeded)
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (prompt, reply) per attempt
    stdout: str = ""  # what the last run printed


class CodeAgent(_AgentBase):
    """Writes Python for a task, runs it against the tests in the sandbox, retries on failure.

    `passed` is True when the tests pass. Without tests the code still runs once in the sandbox
    (catching syntax errors, crashes and hangs at import time): a clean run gives passed=None
    ("ran, but nothing was checked"), a failure gives passed=False and is retried like a failed
    test.
    """

    task = "code"
    repetition_penalty = 1.0

    def __init__(
        self,
        llm_provider=None,
        max_attempts: int = 3,
        timeout_s: float = 10.0,
        system_prompt: str = CODE_SYSTEM_PROMPT,
        *,
        temperature: float = 0.0,
        max_tokens: int = 384,
        retry_temperature: float = 0.7,
        memory_mb: int = 1024,
        packages: tuple[str, ...] = (),
    ):
        super().__init__(llm_provider, system_prompt, temperature, max_tokens, retry_temperature)
        if max_attempts < 1:
            raise MindbenchError(f"max_attempts must be at least 1, got {max_attempts}")
        if timeout_s <= 0:
            raise MindbenchError(f"timeout_s must be positive, got {timeout_s}")
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.packages = tuple(packages)  # installed packages the code may import (default: stdlib only)

    @staticmethod
    def first_prompt(task: str, tests: str | None) -> str:
        prompt = task.strip()
        if tests:
            # Showing the tests tells the model the function's exact name and signature.
            prompt += f"\n\nIt must pass these tests:\n```python\n{tests.strip()}\n```"
        return prompt + "\n\nReply with the complete solution in one ```python code block."

    @staticmethod
    def retry_prompt(task: str, tests: str | None, code: str | None, error: str) -> str:
        prompt = CodeAgent.first_prompt(task, tests).rsplit("\n\n", 1)[0]
        if code is None:
            prompt += f"\n\nYour previous reply had no Python code: {error}"
        else:
            prompt += (
                f"\n\nYour previous solution was:\n```python\n{code.rstrip()}\n```\n"
                f"It failed with this error:\n```\n{error}\n```\nFix the error."
            )
        return prompt + "\n\nReply with the complete corrected solution in one ```python code block."

    async def process(self, task: str, tests: str | None = None, *, entry_point: str | None = None) -> CodeResult:
        _need_text(task, "the task")
        if tests is not None and not tests.strip():
            tests = None
        result = CodeResult(code=None, passed=False, attempts=0, error=None)
        prompt = self.first_prompt(task, tests)
        for attempt in range(1, self.max_attempts + 1):
            reply = await self._generate(prompt, stop=CODE_STOP, attempt=attempt)
            result.attempts = attempt
            result.transcript.append((prompt, reply))
            code = extract_code(reply, tests)
            if code is None:
                result.passed, result.error = False, "no ```python code block found in the reply"
            else:
                result.code = code
                program = checked_program(code, tests, entry_point, self.packages)
                run = await _sandbox(program, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
                result.stdout = run.stdout
                if run.passed and run.proved:
                    result.passed = True if tests else None
                    result.error = None
                    return result
                result.passed, result.error = False, _error_text(run)
            prompt = self.retry_prompt(task, tests, code, result.error)
        return result


# --- ChatAgent ----------------------------------------------------------------------------------


class ChatAgent(_AgentBase):
    """A conversation with a system prompt, kept within the model's context.

    With a provider that takes chat messages (`accepts_messages`, as LocalModelProvider does) the
    conversation goes to the model as real turns through its own chat template. A minimal
    provider whose generate takes one string gets the earlier turns written into the prompt as a
    transcript ("User: ... / Assistant: ...") before the new message. Before each call the oldest
    turns are dropped until system prompt + conversation + the reply's max_tokens fit the budget.

    Tokens are counted with the provider's `count_tokens` when it has one (exact for that model;
    for messages it counts the rendered template, so nothing is estimated), otherwise estimated as
    ceil(chars / 4) plus TEMPLATE_OVERHEAD (about right for English with BPE tokenizers).
    The budget is `max_context_tokens`, else the provider's `context_length`, else 2048.
    """

    task = "chat"
    DEFAULT_CONTEXT = 2048
    TEMPLATE_OVERHEAD = 16  # tokens a chat template adds around turns, when they are estimated

    def __init__(
        self,
        llm_provider=None,
        system_prompt: str = CHAT_SYSTEM_PROMPT,
        max_context_tokens: int | None = None,
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
    ):
        super().__init__(llm_provider, system_prompt, temperature, max_tokens)
        if max_context_tokens is not None and max_context_tokens <= max_tokens:
            raise MindbenchError(
                f"max_context_tokens ({max_context_tokens}) must be larger than "
                f"max_tokens ({max_tokens}), which is reserved for the reply"
            )
        self.max_context_tokens = max_context_tokens
        self._turns: list[tuple[str, str]] = []
        self.dropped_turns = 0  # turns forgotten so far to stay within the context

    @property
    def history(self) -> list[dict]:
        """The remembered conversation as chat messages (oldest first)."""
        return self.messages(self._turns, None)

    def reset(self) -> None:
        self._turns.clear()
        self.dropped_turns = 0

    def _counter(self):
        counter = getattr(self._provider, "count_tokens", None) if self._provider is not None else None
        return counter if callable(counter) else None

    def count_tokens(self, text: str) -> int:
        counter = self._counter()
        return int(counter(text)) if counter else math.ceil(len(text) / 4)

    def context_budget(self) -> int:
        ctx = self.max_context_tokens
        if ctx is None and self._provider is not None:
            ctx = getattr(self._provider, "context_length", None)
        return int(ctx or self.DEFAULT_CONTEXT)

    @staticmethod
    def messages(turns: list[tuple[str, str]], message: str | None) -> list[dict]:
        out = [m for u, a in turns for m in ({"role": "user", "content": u}, {"role": "assistant", "content": a})]
        return out + ([{"role": "user", "content": message}] if message is not None else [])

    @staticmethod
    def render(turns: list[tuple[str, str]], message: str) -> str:
        """The transcript form, for a provider whose generate takes only a string."""
        if not turns:
            return message
        lines = ["The conversation so far:"]
        for u, a in turns:
            lines += [f"User: {u}", f"Assistant: {a}"]
        return "\n".join(lines) + f"\n\nReply to the user's new message:\n{message}"

    def _uses_messages(self) -> bool:
        return bool(getattr(self._provider, "accepts_messages", False))

    def _size(self, prompt) -> int:
        """Tokens the prompt takes in the context, system prompt included."""
        if isinstance(prompt, list):
            system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
            if self._counter():
                return self.count_tokens(system + prompt)  # the rendered template, exactly
            return sum(self.count_tokens(m["content"]) for m in system + prompt) + self.TEMPLATE_OVERHEAD
        fixed = self.count_tokens(self.system_prompt) if self.system_prompt else 0
        return fixed + self.count_tokens(prompt) + self.TEMPLATE_OVERHEAD

    def _fit(self, message: str):
        budget = self.context_budget() - self.max_tokens
        while True:
            prompt = self.messages(self._turns, message) if self._uses_messages() else self.render(self._turns, message)
            used = self._size(prompt)
            if used <= budget:
                return prompt
            if not self._turns:
                raise MindbenchError(
                    f"the message needs about {used} tokens but only {budget} fit in the "
                    f"context with max_tokens={self.max_tokens}: shorten it, lower "
                    f"max_tokens or raise max_context_tokens"
                )
            self._turns.pop(0)
            self.dropped_turns += 1

    async def process(self, message: str) -> str:
        _need_text(message, "the message")
        _ = self.llm_provider  # resolve the provider (a property) before counting tokens
        prompt = self._fit(message)
        reply = (await self._generate(prompt)).strip()
        self._turns.append((message, reply))
        return reply


# --- DataAnalysisAgent --------------------------------------------------------------------------


@dataclass
class AnalysisResult:
    answer: str | None  # the last line the code printed (None when no run succeeded)
    code: str | None
    stdout: str
    passed: bool  # the code ran cleanly and printed something
    error: str | None
    attempts: int
    transcript: list[tuple[str, str]] = field(default_factory=list)


class DataAnalysisAgent(_AgentBase):
    """Answers questions about a table by writing pandas code that runs in the sandbox.

    `data` is a pandas DataFrame (written to a private temporary CSV) or a path to a CSV file. The
    model is shown the columns, dtypes and first rows, and asked for code that reads `data.csv`
    and prints the answer. The file is copied into the sandbox's working dir under that name (and
    under its own name, which weak models sometimes use instead). `answer` is the last line the
    code printed, since models often print intermediate tables before the answer; `stdout` has
    all of it.
    """

    task = "data"
    repetition_penalty = 1.0
    PREVIEW_ROWS = 5

    def __init__(
        self,
        llm_provider=None,
        data=None,
        *,
        max_attempts: int = 3,
        timeout_s: float = 30.0,
        system_prompt: str = DATA_SYSTEM_PROMPT,
        temperature: float = 0.0,
        max_tokens: int = 384,
        retry_temperature: float = 0.7,
        memory_mb: int = 2048,
    ):
        super().__init__(llm_provider, system_prompt, temperature, max_tokens, retry_temperature)
        if max_attempts < 1:
            raise MindbenchError(f"max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb  # pandas and numpy need more address space than plain code
        self.path, self.description = self._load(data)

    def _load(self, data) -> tuple[Path, str]:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            if data.columns.empty:
                raise MindbenchError("the DataFrame has no columns; give the agent a table with data")
            tmp = tempfile.mkdtemp(prefix="mindbench-data-")
            weakref.finalize(self, shutil.rmtree, tmp, True)  # removed with the agent
            path = Path(tmp) / DATA_FILE
            data.to_csv(path, index=False)
        elif isinstance(data, (str, Path)):
            path = Path(data).expanduser()
            if path.is_dir():
                raise MindbenchError(f"{path} is a directory; pass the path of a CSV file or a pandas DataFrame")
            if not path.is_file():
                raise MindbenchError(f"CSV file not found: {path}; pass an existing CSV path or a pandas DataFrame")
        else:
            raise MindbenchError(f"data must be a pandas DataFrame or a path to a CSV file, got {type(data).__name__}")
        try:
            df = pd.read_csv(path)
            with open(path, encoding="utf-8") as f:
                head = [next(f, "").rstrip("\n") for _ in range(self.PREVIEW_ROWS + 1)]
        except (OSError, UnicodeDecodeError, ValueError) as e:  # pandas' parser errors are ValueErrors
            raise MindbenchError(
                f"cannot read {path} as a CSV file ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}); check the file"
            ) from None
        if df.columns.empty:
            raise MindbenchError(f"{path} has no columns; check the file")
        cols = ", ".join(f"{c} ({t})" for c, t in df.dtypes.astype(str).items())
        preview = "\n".join(ln for ln in head if ln)
        desc = (
            f"The file {DATA_FILE} has {len(df)} rows and {len(df.columns)} columns: {cols}.\n"
            f"Its first lines are:\n```\n{preview}\n```"
        )
        return path, desc

    def _files(self) -> dict:
        files = {DATA_FILE: self.path}
        name = self.path.name
        if name != DATA_FILE and re.fullmatch(r"[\w.-]+", name):
            files[name] = self.path
        return files

    def first_prompt(self, question: str) -> str:
        return (
            f"{self.description}\n\nQuestion: {question.strip()}\n\n"
            f"Write Python code that reads '{DATA_FILE}' with pandas and prints only the answer. "
            f"Reply with one ```python code block."
        )

    def retry_prompt(self, question: str, code: str | None, error: str) -> str:
        prompt = self.first_prompt(question).rsplit("\n\n", 1)[0]
        if code is None:
            prompt += f"\n\nYour previous reply had no Python code: {error}"
        else:
            prompt += (
                f"\n\nYour previous code was:\n```python\n{code.rstrip()}\n```\nIt failed:\n```\n{error}\n```\nFix it."
            )
        return prompt + (
            f"\n\nWrite Python code that reads '{DATA_FILE}' with pandas and prints only the "
            f"answer. Reply with one ```python code block."
        )

    async def process(self, question: str) -> AnalysisResult:
        _need_text(question, "the question")
        result = AnalysisResult(answer=None, code=None, stdout="", passed=False, error=None, attempts=0)
        prompt = self.first_prompt(question)
        for attempt in range(1, self.max_attempts + 1):
            reply = await self._generate(prompt, stop=CODE_STOP, attempt=attempt)
            result.attempts = attempt
            result.transcript.append((prompt, reply))
            blocks = _candidate_blocks(reply)
            code = next((b for b in blocks if "print(" in b), blocks[0] if blocks else None)
            if code is None:
                result.error = "no ```python code block found in the reply"
            else:
                result.code = code.strip("\n") + "\n"
                # Checked: the code must run to its end (its answer is what it printed before)
                run = await _sandbox(
                    checked_program(result.code, None, packages=("pandas",)),
                    timeout_s=self.timeout_s,
                    files=self._files(),
                    memory_mb=self.memory_mb,
                )
                result.stdout = run.stdout
                lines = [ln.strip() for ln in run.stdout.splitlines() if ln.strip()]
                if run.passed and run.proved and lines:
                    result.answer, result.passed, result.error = lines[-1], True, None
                    return result
                result.error = (
                    _error_text(run) if not run.passed else "the code ran but printed nothing; print the answer"
                )
            prompt = self.retry_prompt(question, result.code if code else None, result.error)
        return result

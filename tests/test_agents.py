"""Agents: control flow with scripted providers, and each agent on the real packaged model.

A scripted provider is not a stand-in for the model: it returns fixed replies so the agents'
retry and history logic can be checked exactly. Everything a reply contains still runs for real
in the sandbox. The real-model tests use SmolLM2-135M-Instruct (greedy, short max_tokens).
"""

from __future__ import annotations

import asyncio

import pytest

from mindbench.agents import (
    AnalysisResult,
    ChatAgent,
    CodeAgent,
    CodeResult,
    DataAnalysisAgent,
    build_test_program,
    extract_code,
)
from mindbench.errors import MindbenchError


class Scripted:
    """Replies in order, recording every call (prompt and keywords)."""

    def __init__(self, *replies, count_tokens=None):
        self.replies = list(replies)
        self.calls: list[dict] = []
        if count_tokens:
            self.count_tokens = count_tokens

    async def generate(self, prompt, system_prompt=None, temperature=0.7, max_tokens=256, stop=None, seed=0):
        self.calls.append(
            {
                "prompt": prompt,
                "system_prompt": system_prompt,
                "temperature": temperature,
                "max_tokens": max_tokens,
                "stop": stop,
                "seed": seed,
            }
        )
        return self.replies.pop(0)


def run(coro):
    return asyncio.run(coro)


WRONG = "Here you go:\n```python\ndef add(a, b):\n    return a - b\n```\n"
RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"
TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"


# --- CodeAgent control flow ---------------------------------------------------------------------


def test_code_agent_retries_with_the_failure_fed_back():
    llm = Scripted(WRONG, RIGHT)
    res = run(CodeAgent(llm_provider=llm).process("Write add(a, b).", tests=TESTS))
    assert isinstance(res, CodeResult)
    assert res.passed is True and res.attempts == 2 and res.error is None
    assert "return a + b" in res.code
    # the second prompt carried the wrong code and the real traceback of the failed assert
    second = llm.calls[1]["prompt"]
    assert "return a - b" in second and "AssertionError" in second and "assert add(2, 3) == 5" in second
    assert [p for p, _ in res.transcript] == [c["prompt"] for c in llm.calls]
    assert 'File "program.py", line' in second  # no sandbox temp path in the prompt
    # greedy first; the retry samples (with its own seed) so a weak model does not repeat itself
    assert [(c["temperature"], c["seed"]) for c in llm.calls] == [(0.0, 1), (0.7, 2)]
    assert llm.calls[0]["system_prompt"] and llm.calls[0]["stop"] == ["\n```\n"]


def test_code_agent_gives_up_after_max_attempts_with_last_error():
    wrong2 = "```python\ndef add(a, b):\n    return a * b\n```"
    llm = Scripted(WRONG, WRONG, wrong2)
    res = run(CodeAgent(llm_provider=llm, max_attempts=3).process("Write add(a, b).", tests=TESTS))
    assert res.passed is False and res.attempts == 3 and len(llm.calls) == 3
    assert "AssertionError" in res.error and "return a * b" in res.code


def test_code_agent_no_code_and_timeout_are_failures_fed_back():
    loop = "```python\ndef add(a, b):\n    while True:\n        pass\n```"
    llm = Scripted("I cannot write code.", loop, RIGHT)
    res = run(CodeAgent(llm_provider=llm, timeout_s=1.5).process("Write add(a, b).", tests=TESTS))
    assert res.passed is True and res.attempts == 3
    assert "no Python code" in llm.calls[1]["prompt"]
    assert "time limit" in llm.calls[2]["prompt"]


def test_code_agent_without_tests_runs_once_to_catch_errors():
    ok = run(CodeAgent(llm_provider=Scripted(RIGHT)).process("Write add(a, b)."))
    assert ok.passed is None and ok.attempts == 1 and ok.error is None
    broken = "```python\ndef add(a, b)\n    return a + b\n```"
    res = run(CodeAgent(llm_provider=Scripted(broken, broken), max_attempts=2).process("Write add."))
    assert res.passed is False and res.attempts == 2 and "SyntaxError" in res.error


def test_code_agent_calls_a_check_function_with_the_solution():
    check = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    res = run(CodeAgent(llm_provider=Scripted(RIGHT)).process("Write add.", tests=check))
    assert res.passed is True
    res = run(CodeAgent(llm_provider=Scripted(WRONG), max_attempts=1).process("Write add.", tests=check))
    assert res.passed is False and "AssertionError" in res.error


def test_model_code_runs_only_in_the_sandbox(tmp_path):
    # The program tries to write next to the test; in the sandbox its cwd is a fresh temp dir
    # and the test's folder is not writable, so the file must not appear here.
    target = tmp_path / "escaped.txt"
    evil = f"```python\nopen({str(target)!r}, 'w').write('x')\n```"
    res = run(CodeAgent(llm_provider=Scripted(evil), max_attempts=1).process("Do it."))
    assert not target.exists() and res.passed is False


def test_extract_code_prefers_the_block_the_tests_call():
    reply = "```python\nprint('demo')\n```\n```python\ndef helper():\n    pass\n```\n```python\ndef add(a, b):\n    return a + b\n```"
    assert extract_code(reply, TESTS).startswith("def add")
    assert extract_code(reply).startswith("def helper")
    assert extract_code("def f():\n    return 1\n").startswith("def f")  # bare code
    assert extract_code("The answer is yes.") is None
    assert extract_code("```\nname,price\napple,3\n```") is None  # not code
    prog = build_test_program("def add(a, b):\n    return a + b\n", "def check(c):\n    assert c(1, 1) == 2\n")
    assert prog.rstrip().endswith("check(add)")


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(MindbenchError, match="task"):
        run(CodeAgent(llm_provider=Scripted()).process("   "))
    with pytest.raises(MindbenchError, match="generate"):
        CodeAgent(llm_provider=object())
    with pytest.raises(MindbenchError, match="max_attempts"):
        CodeAgent(llm_provider=Scripted(), max_attempts=0)
    with pytest.raises(MindbenchError, match="message"):
        run(ChatAgent(llm_provider=Scripted()).process(""))
    with pytest.raises(MindbenchError, match="not found"):
        DataAnalysisAgent(Scripted(), data=tmp_path / "missing.csv")
    with pytest.raises(MindbenchError, match="DataFrame or a path"):
        DataAnalysisAgent(Scripted(), data=[1, 2, 3])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(MindbenchError, match="cannot read"):
        DataAnalysisAgent(Scripted(), data=empty)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81\x92" * 50)
    with pytest.raises(MindbenchError, match="cannot read"):
        DataAnalysisAgent(Scripted(), data=binary)
    with pytest.raises(MindbenchError, match="is a directory"):
        DataAnalysisAgent(Scripted(), data=tmp_path)


def test_agents_without_a_provider_ask_the_recommender():
    import pandas as pd

    from mindbench.decide.recommend import best_config
    from mindbench.provider import LocalModelProvider

    agents = {"code": CodeAgent(), "chat": ChatAgent(), "data": DataAnalysisAgent(data=pd.DataFrame({"x": [1]}))}
    for task, agent in agents.items():
        llm, cfg = agent.llm_provider, best_config(task)
        assert isinstance(llm, LocalModelProvider) and not llm.is_loaded  # loads on first use
        assert (llm.model_name, llm.runtime) == (cfg["model"], cfg["runtime"])
        assert agent.llm_provider is llm


# --- ChatAgent history --------------------------------------------------------------------------


def test_chat_agent_keeps_history_and_drops_oldest_turns_to_fit():
    words = lambda text: len(text.split())  # a provider that counts tokens as words
    llm = Scripted("one", "two", "three", count_tokens=words)
    agent = ChatAgent(llm_provider=llm, system_prompt="Be brief.", max_context_tokens=60, max_tokens=8)
    # budget = 60 - 8 reply - 16 template = 36 words for system prompt + rendered conversation
    assert run(agent.process("alpha " * 10)) == "one"
    assert run(agent.process("beta " * 10)) == "two"
    assert "alpha" in llm.calls[1]["prompt"] and "User: alpha" in llm.calls[1]["prompt"]
    assert agent.dropped_turns == 0
    run(agent.process("gamma " * 10))
    # with both earlier turns the prompt would exceed 36 words: the oldest (alpha) was dropped
    assert "alpha" not in llm.calls[2]["prompt"] and "beta" in llm.calls[2]["prompt"]
    assert agent.dropped_turns == 1
    assert [m["role"] for m in agent.history] == ["user", "assistant"] * 2
    assert agent.history[-1]["content"] == "three"
    with pytest.raises(MindbenchError, match="shorten it"):
        run(agent.process("delta " * 40))
    agent.reset()
    assert agent.history == [] and agent.dropped_turns == 0


class ScriptedChat(Scripted):
    """A provider that takes chat messages, as LocalModelProvider does."""

    accepts_messages = True


def test_chat_agent_sends_real_turns_to_a_provider_that_takes_messages():
    # a counter in the provider's shape: a string or a conversation (+2 per message for the template)
    def count(x):
        return len(x.split()) if isinstance(x, str) else sum(len(m["content"].split()) + 2 for m in x)

    llm = ScriptedChat("one", "two", "three", count_tokens=count)
    agent = ChatAgent(llm_provider=llm, system_prompt="Be brief.", max_context_tokens=60, max_tokens=8)
    run(agent.process("alpha " * 10))
    run(agent.process("beta " * 10))
    sent = llm.calls[1]["prompt"]
    assert sent == [
        {"role": "user", "content": "alpha " * 10},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "beta " * 10},
    ]
    assert llm.calls[1]["system_prompt"] == "Be brief."  # the provider puts it first
    # budget 60 - 8 = 52; system 4 + alpha 12 + one 3 + beta 12 + two 3 + gamma 12 = 46: it fits
    run(agent.process("gamma " * 10))
    assert agent.dropped_turns == 0 and len(llm.calls[2]["prompt"]) == 5
    llm.replies.append("four")
    run(agent.process("delta " * 10))  # 46 + three 3 + 12 = 61 > 52: alpha goes
    assert agent.dropped_turns == 1 and llm.calls[3]["prompt"][0]["content"] == "beta " * 10
    assert all(count([{"role": "system", "content": "Be brief."}] + c["prompt"]) <= 52 for c in llm.calls)


def test_chat_agent_estimates_tokens_without_a_counter():
    agent = ChatAgent(llm_provider=Scripted("ok"), max_context_tokens=300, max_tokens=10)
    assert agent.count_tokens("x" * 40) == 10 and agent.context_budget() == 300


# --- DataAnalysisAgent control flow -------------------------------------------------------------


def test_data_agent_runs_pandas_on_a_dataframe_and_retries():
    import pandas as pd

    df = pd.DataFrame({"item": ["a", "b", "c"], "qty": [2, 5, 11]})
    bad = "```python\nimport pandas as pd\ndf = pd.read_csv('data.csv')\nprint(df['quantity'].sum())\n```"
    good = "```python\nimport pandas as pd\ndf = pd.read_csv('data.csv')\nprint(df)\nprint(df['qty'].sum())\n```"
    llm = Scripted(bad, good)
    agent = DataAnalysisAgent(llm, data=df)
    res = run(agent.process("What is the total qty?"))
    assert isinstance(res, AnalysisResult)
    assert res.passed and res.attempts == 2 and res.answer == "18" and "df['qty']" in res.code
    first, second = llm.calls[0]["prompt"], llm.calls[1]["prompt"]
    assert "qty (int64)" in first and "3 rows" in first and "a,2" in first
    assert "KeyError" in second and "quantity" in second


def test_data_agent_printing_nothing_is_a_failure(tmp_path):
    csv = tmp_path / "sales.csv"
    csv.write_text("x\n1\n2\n")
    silent = "```python\nimport pandas as pd\npd.read_csv('sales.csv')\n```"  # its own file name works too
    res = run(DataAnalysisAgent(Scripted(silent), data=csv, max_attempts=1).process("Sum of x?"))
    assert res.passed is False and res.answer is None and "printed nothing" in res.error


# --- the real packaged model ----------------------------------------------------------------------
# SmolLM2-135M-Instruct, greedy. The tasks are ones it solves (checked, not assumed): the asserts
# are on what the agents report, and would fail if extraction, the sandbox run or the answer broke.


@pytest.fixture(scope="module")
def smollm():
    from mindbench.provider import LocalModelProvider

    llm = LocalModelProvider("smollm2-135m-instruct", device="cpu", precision="fp32")
    yield llm
    llm.unload_model()


@pytest.mark.slow
def test_code_agent_on_the_real_model(smollm):
    agent = CodeAgent(llm_provider=smollm, max_attempts=2, max_tokens=64)
    res = run(agent.process("Write a Python function add(a, b) that returns a + b.", tests="assert add(2, 3) == 5"))
    prompt, reply = res.transcript[0]
    assert "assert add(2, 3) == 5" in prompt and "```python" in reply
    assert res.passed is True, res
    assert res.error is None and "def add" in res.code and 1 <= res.attempts <= 2


@pytest.mark.slow
def test_data_agent_on_the_real_model(smollm):
    import pandas as pd

    df = pd.DataFrame({"fruit": ["apple", "pear", "fig", "plum"], "price": [3, 5, 7, 10]})
    res = run(
        DataAnalysisAgent(smollm, df, max_attempts=2, max_tokens=96).process("What is the sum of the price column?")
    )
    assert res.passed, res
    assert float(res.answer) == 25 and "read_csv" in res.code
    assert res.answer == res.stdout.strip().splitlines()[-1].strip()


class Recording:
    """Passes every call to the real provider and keeps the prompts it was sent."""

    def __init__(self, llm):
        self.llm, self.prompts = llm, []
        self.count_tokens = llm.count_tokens

    async def generate(self, prompt, **kw):
        self.prompts.append(prompt)
        return await self.llm.generate(prompt, **kw)


@pytest.mark.slow
def test_chat_agent_on_the_real_provider_sends_turns_through_the_template(smollm):
    # The real provider takes messages: earlier turns reach the model as chat-template turns,
    # and what is sent is counted exactly (the template's own tokens included).
    class RecordingChat(Recording):
        accepts_messages = True

    llm = RecordingChat(smollm)
    system = "You are a helpful assistant."
    agent = ChatAgent(llm_provider=llm, system_prompt=system, max_context_tokens=120, max_tokens=24)
    msgs = ("What is the capital of France?", "What is the capital of Italy?", "Name a big river in Egypt.")
    replies = [run(agent.process(m)) for m in msgs]
    assert all(r.strip() for r in replies)
    assert llm.prompts[1][:2] == [{"role": "user", "content": msgs[0]}, {"role": "assistant", "content": replies[0]}]
    sizes = [smollm.count_tokens([{"role": "system", "content": system}] + p) for p in llm.prompts]
    assert all(n <= 120 - 24 for n in sizes), sizes
    # the rendered conversation really is the model's template, turn by turn
    rendered = smollm.engine.render_messages([{"role": "system", "content": system}] + llm.prompts[1])
    assert rendered.count("<|im_start|>user") == 2 and rendered.count("<|im_start|>assistant") == 2
    assert smollm.count_tokens(llm.prompts[1]) > sum(smollm.count_tokens(m["content"]) for m in llm.prompts[1])
    # 96 tokens do not hold the system prompt and two whole exchanges plus a question
    assert agent.dropped_turns >= 1 and llm.prompts[2][0]["content"] != msgs[0]


@pytest.mark.slow
def test_chat_agent_on_the_real_model_stays_within_context(smollm):
    # 130 tokens of context, 24 for the reply, 16 for the template: 90 are left for the system
    # prompt and the conversation. One earlier exchange fits, two do not, so the third message
    # goes out with the second exchange only.
    llm = Recording(smollm)
    agent = ChatAgent(
        llm_provider=llm, system_prompt="You are a helpful assistant.", max_context_tokens=130, max_tokens=24
    )
    msgs = ("What is the capital of France?", "What is the capital of Italy?", "Name a big river in Egypt.")
    replies = [run(agent.process(m)) for m in msgs]
    assert all(isinstance(r, str) and r.strip() for r in replies)
    assert agent.count_tokens(msgs[0]) == smollm.count_tokens(msgs[0])  # the model's tokenizer
    assert f"User: {msgs[0]}" in llm.prompts[1] and replies[0] in llm.prompts[1]
    assert msgs[0] not in llm.prompts[2] and f"User: {msgs[1]}" in llm.prompts[2]
    assert agent.dropped_turns == 1
    assert [m["content"] for m in agent.history] == [msgs[1], replies[1], msgs[2], replies[2]]
    budget = 130 - 24 - ChatAgent.TEMPLATE_OVERHEAD
    assert all(agent.count_tokens(agent.system_prompt) + agent.count_tokens(p) <= budget for p in llm.prompts)


# --- no pass without proof that the tests ran -----------------------------------

EXITS = [
    "```python\nimport sys\ndef add(a, b):\n    sys.exit(0)\n```",
    "```python\nimport os\ndef add(a, b):\n    os._exit(0)\n```",
    "```python\nimport sys\nsys.exit(0)\ndef add(a, b):\n    return 0\n```",
    "```python\nimport builtins\nbuiltins.AssertionError = type('Q', (Exception,), {})\n"
    "def add(a, b):\n    return 0\n```",
]


@pytest.mark.parametrize("reply", EXITS)
def test_code_agent_gives_no_pass_to_code_that_exits_before_its_tests(reply):
    res = run(CodeAgent(llm_provider=Scripted(reply), max_attempts=1).process("Write add.", tests=TESTS))
    assert res.passed is False and res.error
    check = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    res = run(CodeAgent(llm_provider=Scripted(reply), max_attempts=1).process("Write add.", tests=check))
    assert res.passed is False


def test_data_agent_answer_must_come_from_a_run_that_ended(tmp_path):
    import pandas as pd

    df = pd.DataFrame({"x": [1, 2, 3]})
    early = "```python\nimport os\nprint(6, flush=True)\nos._exit(0)\n```"  # on main: answer "6"
    res = run(DataAnalysisAgent(llm_provider=Scripted(early), data=df, max_attempts=1).process("Sum of x?"))
    assert res.passed is False and res.answer is None
    fine = "```python\nimport pandas as pd\nprint(pd.read_csv('data.csv').x.sum())\n```"
    res = run(DataAnalysisAgent(llm_provider=Scripted(fine), data=df, max_attempts=1).process("Sum of x?"))
    assert res.passed is True and res.answer == "6" and res.stdout.strip() == "6"

"""Suites and scoring: extraction and checks on fixed strings, the metrics against hand-worked
values, the data files (every canonical solution passes, every data answer recomputes), and the
real packaged model scoring each suite repeatably."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from mindbench import suites
from mindbench.errors import MindbenchError
from mindbench.paths import suites_dir
from mindbench.suites import scoring

# --- code extraction -----------------------------------------------------------------------------

PROMPT = (
    'import math\n\n\ndef helper(x):\n    return x\n\n\ndef area(r: float) -> float:\n    """Area of a circle."""\n'
)


def _run_here(program: str) -> bool:
    """Run a program built from fixed strings in-process (only our own test strings)."""
    try:
        exec(compile(program, "<test>", "exec"), {})
        return True
    except Exception:
        return False


def test_fenced_full_function_gets_prompt_header():
    out = "Here you go:\n```python\ndef area(r: float) -> float:\n    return math.pi * helper(r) ** 2\n```\nDone."
    prog = scoring.build_program(PROMPT, "area", out)
    assert prog.startswith("import math")  # the prompt's import is added
    assert "def helper" in prog  # and its helper
    assert "Done." not in prog and "Here you go" not in prog
    assert _run_here(prog + "\nassert abs(area(1) - math.pi) < 1e-9\n")


def test_completion_body_is_appended_to_prompt():
    prog = scoring.build_program(PROMPT, "area", "    return math.pi * r * r\n")
    assert prog.startswith(PROMPT)
    assert _run_here(prog + "\nassert abs(area(2) - 4 * math.pi) < 1e-9\n")


def test_unindented_body_in_block_is_indented():
    prog = scoring.build_program(PROMPT, "area", "```python\nreturn math.pi * r * r\n```")
    assert _run_here(prog + "\nassert abs(area(1) - math.pi) < 1e-9\n")


def test_a_body_begun_on_the_docstring_line_is_moved_to_the_next_line():
    # The body protocol's reply opens at the docstring's closing quotes; Qwen2.5-Coder writes
    # `""" return ...` there (its tokenizer merges the quotes with the newline).
    head = "```python\n" + PROMPT.rstrip()
    healed = scoring.heal_docstring_line(PROMPT, head + " return math.pi * r * r")
    prog = scoring.build_program(PROMPT, "area", healed)
    assert _run_here(prog + "\nassert abs(area(1) - math.pi) < 1e-9\n")
    # unhealed it is a syntax error; a reply that starts a new line, or text that is not the
    # opened prompt, is left alone
    assert not _run_here(scoring.build_program(PROMPT, "area", head + " return math.pi * r * r") + "\nassert area(1)\n")
    for text in (head + "\n    return 1", head + "  # done\n    return 1", "```python\nreturn 1"):
        assert scoring.heal_docstring_line(PROMPT, text) == text


def test_the_body_opening_ends_where_the_tokenizer_ends_a_token():
    head = "```python\n" + PROMPT.rstrip()
    # Qwen2-like: ' """' + newline is one token, so the newline joins the opening
    merges = lambda t: len(t.replace('"""\n', "Q").split())
    assert scoring.end_on_token_boundary(head, merges) == head + "\n"
    # SmolLM2-like: the newline is a token of its own, the cut stays at the quotes
    assert scoring.end_on_token_boundary(head, lambda t: len(t.split()) + t.count("\n")) == head
    assert scoring.end_on_token_boundary(head, None) == head


def test_unterminated_block_and_picks_block_with_entry_point():
    out = "```python\nprint('example')\n```\nand\n```python\ndef area(r):\n    return 3 * r * r\n"
    prog = scoring.build_program(PROMPT, "area", out)
    assert "print('example')" not in prog
    assert _run_here(prog + "\nassert area(1) == 3\n")


def test_prose_without_code_fails():
    prog = scoring.build_program(PROMPT, "area", "The area is pi r squared.")
    assert not _run_here(prog + "\narea(1)\n")


def test_test_program_calls_check():
    prog = scoring.test_program("def f():\n    return 1\n", "def check(candidate):\n    assert candidate() == 2\n", "f")
    assert prog.rstrip().endswith("check(f)")
    assert not _run_here(prog)


# --- chat checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,check,ok",
    [
        ("one two three", {"type": "max_words", "value": 3}, True),
        ("one two three four", {"type": "max_words", "value": 3}, False),
        ("a b c d e", {"type": "min_words", "value": 5}, True),
        ("It rains. It pours! Does it stop?", {"type": "sentences", "value": 3}, True),
        ("It rains. It pours.", {"type": "sentences", "value": 3}, False),
        ("Just one sentence.", {"type": "max_sentences", "value": 2}, True),
        ("- apple\n- pear\n- plum", {"type": "bullets", "value": 3}, True),
        ("Fruits:\n- apple\n* pear\n- plum\n- fig", {"type": "bullets", "value": 3}, False),
        ("1. boil\n2. pour\n3) steep\n4. drink", {"type": "numbered", "value": 4}, True),
        ('{"name": "Ann", "age": 30}', {"type": "json_keys", "keys": ["name", "age"]}, True),
        ('Sure!\n```json\n{"name": "Ann", "age": 30}\n```', {"type": "json_keys", "keys": ["name", "age"]}, True),
        ('Here: {"name": "Ann"} ok', {"type": "json_keys", "keys": ["name", "age"]}, False),
        ('{"name": "Ann", age: 30}', {"type": "json_keys", "keys": ["name"]}, False),
        ("The sun is Bright today.", {"type": "include_words", "words": ["bright"]}, True),
        ("The sun is brightest today.", {"type": "include_words", "words": ["bright"]}, False),
        ("The moon glows.", {"type": "avoid_words", "words": ["night", "sky"]}, True),
        ("The night sky glows.", {"type": "avoid_words", "words": ["night"]}, False),
        ("snow on snow", {"type": "keyword_count", "word": "snow", "min": 2}, True),
        ("all quiet here", {"type": "lowercase"}, True),
        ("All quiet here", {"type": "lowercase"}, False),
        ("WET FLOOR!", {"type": "uppercase"}, True),
        ("yes, water is wet.", {"type": "starts_with", "value": "Yes"}, True),
        ("Rivers flow. Thank you.", {"type": "ends_with", "value": "Thank you."}, True),
        ("**OK.**", {"type": "equals", "value": "OK"}, True),
        ("OK, sure", {"type": "equals", "value": "OK"}, False),
        ("para one\n\npara two", {"type": "paragraphs", "value": 2}, True),
        ("line a\nline b\nline c\n", {"type": "lines", "value": 3}, True),
        ("dogs bark loudly", {"type": "no_commas"}, True),
        ("dogs, cats", {"type": "no_commas"}, False),
        ("the sea is blue", {"type": "avoid_chars", "chars": "zZ"}, True),
    ],
)
def test_instruction_checks(text, check, ok):
    assert scoring.check_instruction(text, check) is ok


def test_all_checks_must_pass():
    ok, each = scoring.check_all(
        "Paris is the capital.",
        [{"type": "max_words", "value": 9}, {"type": "include_words", "words": ["Paris"]}, {"type": "lowercase"}],
    )
    assert each == [True, True, False] and ok is False


# --- final-answer extraction -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("12 - 5 = 7, then 7 + 8 = 15.\nAnswer: 15", 15),
        ("Answer: 15 apples, because 12 - 5 + 8 = 15 and not 16", 15),  # first number after marker
        ("So the answer is $1,250.50.", 1250.5),
        ("He has 3 then 9 then 12", 12),  # no marker: last number
        ("The temperature is -4 + 11 = 7 degrees", 7),
        ("Answer: 12.5", 12.5),
        ("Step 1: 4 * 2 = 8. Answer: see above", 8),  # marker without a number
        ("I do not know.", None),
    ],
)
def test_extract_number(text, expected):
    assert scoring.extract_number(text) == expected


def test_extract_option():
    opts = ["Alice", "Bob", "Carol"]
    assert scoring.extract_option("Alice > Bob > Carol, so Carol is shortest", opts) == "Carol"
    assert scoring.extract_option("Answer: Carol, not Bob", opts) == "Carol"
    assert scoring.extract_option("Answer: yes", ["yes", "no"]) == "yes"
    assert scoring.extract_option("It is not known", ["yes", "no"]) is None
    assert scoring.extract_option("noon", ["yes", "no"]) is None  # whole words only
    # A marker with nothing after it falls back to the last option anywhere. The text SmolLM2 at
    # fp16 wrote (a repeated "the answer is") once sent this into endless recursion.
    assert scoring.extract_option("Bob is tall. Carol too. The answer is", opts) == "Carol"
    assert scoring.extract_option("Bob? " + "So the answer is " * 2000, opts) == "Bob"
    assert scoring.extract_option("The answer is " * 50, opts) is None


def test_numbers_match_tolerance():
    assert scoring.numbers_match(7955.27, 7955.27, 0.01)
    assert scoring.numbers_match(7955.279, 7955.27, 0.01)
    assert not scoring.numbers_match(7955.3, 7955.27, 0.01)
    assert scoring.numbers_match(677.0, 677, 0)
    assert not scoring.numbers_match(678, 677, 0)
    assert not scoring.numbers_match(None, 1, 1)


def test_last_printed_number():
    assert scoring.last_printed_number("loading\n2746.05\n") == 2746.05
    assert scoring.last_printed_number("Total revenue: 2,746.05\n\n") == 2746.05
    assert scoring.last_printed_number("(90, 4)\n") is None  # a tuple is not an answer
    assert scoring.last_printed_number("35  Jade  Support  60  43500\n") is None  # nor a table row
    assert scoring.last_printed_number("") is None


# --- metrics -------------------------------------------------------------------------------------


def test_pass_at_k_hand_worked():
    # n=5 samples, c=2 pass, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
    assert scoring.pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert scoring.pass_at_k(5, 2, 1) == pytest.approx(0.4)  # pass@1 = c/n
    assert scoring.pass_at_k(5, 0, 3) == 0.0
    assert scoring.pass_at_k(5, 4, 2) == 1.0  # n - c < k
    assert scoring.pass_at_k(200, 13, 10) == pytest.approx(1 - math.comb(187, 10) / math.comb(200, 10))
    with pytest.raises(ValueError):
        scoring.pass_at_k(3, 1, 5)


def test_stderr_of_accuracy():
    mean, err = scoring.mean_stderr([1, 1, 1, 0])
    assert mean == 0.75 and err == pytest.approx(math.sqrt(0.75 * 0.25 / 4))
    assert scoring.mean_stderr([]) == (0.0, 0.0)


def test_summarize_subsets_and_pass_at_k():
    verdicts = [[True, False], [False, False], [True, True]]
    out = scoring.summarize(verdicts, ["easy", "humaneval", "easy"], "pass@1")
    assert out["value"] == pytest.approx(0.5) and out["score"] == 50.0 and out["n"] == 3
    assert out["subsets"]["easy"] == {"value": 0.75, "stderr": pytest.approx(math.sqrt(0.0625 / 2)), "n": 2}
    assert out["subsets"]["humaneval"]["value"] == 0.0
    # pass@2 per problem: 1, 0, 1
    assert out["pass@k"]["pass@2"]["value"] == pytest.approx(2 / 3)
    assert out["pass@k"]["pass@1"]["value"] == pytest.approx(0.5)


# --- the data files -------------------------------------------------------------------------------


def test_suite_counts_and_subsets():
    code = suites.load_suite("code")
    assert sum(t.subset == "humaneval" for t in code) == 164
    assert sum(t.subset == "easy" for t in code) >= 40
    assert len(suites.load_suite("chat")) >= 40
    assert len(suites.load_suite("reasoning")) >= 50
    assert len(suites.load_suite("data")) >= 30
    with pytest.raises(MindbenchError, match="unknown suite"):
        suites.load_suite("poetry")


def _sandbox():
    from mindbench.sandbox import run_many, run_python  # the real sandbox (contract 3)

    return run_many, run_python


def test_every_canonical_solution_passes_and_empty_body_fails():
    # mindbench's own problems; HumanEval's 164 canonical solutions are the sandbox's own test.
    run_many, _ = _sandbox()
    easy = [t for t in suites.load_suite("code") if t.subset == "easy"]
    canon = [
        scoring.test_program(t.prompt + t.fields["canonical_solution"], t.fields["test"], t.fields["entry_point"])
        for t in easy
    ]
    res = run_many(canon, timeout_s=suites.CODE_TIMEOUT_S, workers=2)
    failed = [(t.id, r.reason, r.stderr[-300:]) for t, r in zip(easy, res) if not r.passed]
    assert not failed, failed
    # An empty body must fail every one of them: each test really tests something.
    empty = [
        scoring.test_program(
            scoring.build_program(t.prompt, t.fields["entry_point"], "    pass\n"),
            t.fields["test"],
            t.fields["entry_point"],
        )
        for t in easy
    ]
    assert not any(r.passed for r in run_many(empty, timeout_s=suites.CODE_TIMEOUT_S, workers=2))


def test_every_data_answer_recomputes_with_pandas():
    import pandas as pd

    frames = {}
    for t in suites.load_suite("data"):
        df = frames.setdefault(t.fields["file"], pd.read_csv(t.fields["path"]))
        value = float(eval(t.fields["ref"], {"df": df, "pd": pd}))
        assert scoring.numbers_match(value, t.fields["answer"], t.fields["tol"]), (t.id, value, t.fields["answer"])


def test_data_reference_code_through_sandbox():
    """The path a model's pandas code takes: CSV copied into the working dir, printed number read."""
    _, run_python = _sandbox()
    tasks = suites.load_suite("data")
    one_per_file = list({t.fields["file"]: t for t in tasks}.values())
    for t in one_per_file:
        code = f"import pandas as pd\ndf = pd.read_csv({t.fields['file']!r})\nprint({t.fields['ref']})\n"
        r = run_python(
            code,
            timeout_s=30,
            files={t.fields["file"]: t.fields["path"]},
            memory_mb=suites.DATA_MEMORY_MB,
            packages=("pandas",),
        )
        assert r.passed, r.stderr[-500:]
        assert scoring.numbers_match(scoring.last_printed_number(r.stdout), t.fields["answer"], t.fields["tol"])


def test_reasoning_answers_are_extractable():
    # Each stored answer, written the way the prompt asks, is read back as correct.
    for t in suites.load_suite("reasoning"):
        ans = t.fields["answer"]
        text = f"Let me think.\nAnswer: {ans}"
        if isinstance(ans, str):
            assert scoring.extract_option(text, t.fields["options"]) == ans
        else:
            assert scoring.numbers_match(scoring.extract_number(text), ans)


# --- malformed files -------------------------------------------------------------------------------


@pytest.fixture
def suite_copy(tmp_path, monkeypatch):
    shutil.copytree(suites_dir(), tmp_path / "suites")
    monkeypatch.setenv("MINDBENCH_SUITES_DIR", str(tmp_path / "suites"))
    return tmp_path / "suites"


@pytest.mark.parametrize(
    "suite,fname,line,match",
    [
        ("chat", "chat.jsonl", '{"id": "x", "subset": "a", "prompt": "hi"', "not valid JSON"),
        (
            "chat",
            "chat.jsonl",
            '{"id": "x", "subset": "a", "prompt": "hi", "checks": [{"type": "rhymes"}]}',
            "unknown check",
        ),
        (
            "chat",
            "chat.jsonl",
            '{"id": "x", "subset": "a", "prompt": "hi", "checks": [{"type": "max_words"}]}',
            "needs value",
        ),
        ("reasoning", "reasoning.jsonl", '{"id": "x", "subset": "a", "question": "q"}', "missing key 'answer'"),
        ("reasoning", "reasoning.jsonl", '{"id": "x", "subset": "a", "question": "q", "answer": "red"}', "options"),
        (
            "data",
            "data.jsonl",
            '{"id": "x", "subset": "a", "file": "nope.csv", "question": "q", "ref": "1", "answer": 1, "tol": 0}',
            "does not exist",
        ),
        (
            "data",
            "data.jsonl",
            '{"id": "x", "subset": "a", "file": "sales.csv", "question": "q", "ref": "1", "answer": "1", "tol": 0}',
            "must be int/float",
        ),
        (
            "code",
            "code_easy.jsonl",
            '{"task_id": "x", "prompt": "def f():\\n", "entry_point": "f", "canonical_solution": "  pass", "test": "assert 1"}',
            "check",
        ),
    ],
)
def test_malformed_line_names_file_and_line(suite_copy, suite, fname, line, match):
    path = suite_copy / fname
    n = len(path.read_text().splitlines())
    with open(path, "a") as f:
        f.write(line + "\n")
    with pytest.raises(MindbenchError, match=match) as e:
        suites.load_suite(suite)
    assert f"{path}:{n + 1}:" in e.value.message


def test_duplicate_id_and_missing_file(suite_copy):
    path = suite_copy / "reasoning.jsonl"
    first = path.read_text().splitlines()[0]
    path.write_text(path.read_text() + first + "\n")
    with pytest.raises(MindbenchError, match="duplicate task id"):
        suites.load_suite("reasoning")
    (suite_copy / "chat.jsonl").unlink()
    with pytest.raises(MindbenchError, match="is missing"):
        suites.load_suite("chat")


# --- deterministic subsets -------------------------------------------------------------------------


def test_select_is_deterministic_and_mixes_subsets():
    code = suites.load_suite("code")
    a = suites.select(code, 6)
    # the pick depends on the task ids, not on the file's order
    assert sorted(t.id for t in a) == sorted(t.id for t in suites.select(list(reversed(code)), 6))
    assert sorted(t.subset for t in a) == ["easy"] * 3 + ["humaneval"] * 3
    assert [t.id for t in suites.select(code, 6)] == [t.id for t in a]
    assert set(t.id for t in a) <= set(t.id for t in suites.select(code, 10))  # grows, never reshuffles
    assert len(suites.select(code, None)) == len(code)
    with pytest.raises(MindbenchError):
        suites.select(code, 0)


# --- the whole evaluate() pipeline, with answers known in advance ----------------------------------


class OracleEngine:
    """Not a model: a stand-in that returns each task's known answer (or nothing), so the whole
    pipeline from prompt to score is checked against scores we know must come out: 100 and 0."""

    runtime, precision, device = "oracle", "none", "cpu"

    def __init__(self, right: bool, chat: bool = True):
        from mindbench.models.catalog import resolve

        self.spec, self.chat, self.right, self.by_prompt = resolve("smollm2-135m-instruct"), chat, right, {}

    def render(self, prompt, system_prompt=None):
        return f"<user>{prompt}</user>"

    def generate(self, prompts, params):
        from mindbench.runtimes.base import Generation

        return [Generation(self.answer(p) if self.right else "", 1, "stop") for p in prompts]

    def answer(self, rendered):
        t = self.by_prompt[rendered]
        if t.suite == "code":
            # a prompt that ends with the function's own code (base models; the body protocol,
            # which stops at the docstring's quotes) continues with the body; otherwise the
            # model writes the whole function
            body = t.fields["canonical_solution"]
            if rendered.endswith(t.prompt):
                return body
            return "\n" + body if rendered.endswith(t.prompt.rstrip()) else t.prompt + body
        if t.suite == "data":
            return " " + t.fields["ref"]  # continues `answer =`
        if t.suite == "reasoning":
            return f"Answer: {t.fields['answer']}"
        raise AssertionError


@pytest.mark.parametrize(
    "suite,chat",
    [("code", True), ("code", False), ("data", True), ("data", False), ("reasoning", True), ("reasoning", False)],
)
def test_evaluate_pipeline_scores_known_answers(suite, chat, tmp_path):
    _sandbox()
    scores = []
    for right in (True, False):
        eng = OracleEngine(right, chat)
        for t in suites.select(suites.load_suite(suite), 4):
            eng.by_prompt[suites.build_request(eng, t).prompt] = t
        log = tmp_path / f"{right}.jsonl"
        out = suites.evaluate(eng, suite, limit=4, log_samples=log)
        scores.append(out["score"])
        # per-task verdicts keyed by task id: what pairs two cells in mindbench.measure.stats
        assert out["items"] == {t.id: float(right) for t in suites.select(suites.load_suite(suite), 4)}
        lines = [json.loads(x) for x in log.read_text().splitlines()]
        assert len(lines) == 4 and all(x["correct"] is right for x in lines)
        assert {"prompt", "output", "extracted", "correct", "task_id", "model"} <= set(lines[0])
    assert scores == [100.0, 0.0]


@pytest.mark.parametrize("protocol", ["body", "full"])
def test_code_protocols_prompt_differently_and_both_score(protocol):
    _sandbox()
    eng = OracleEngine(True, chat=True)
    tasks = suites.select(suites.load_suite("code"), 4)
    for t in tasks:
        eng.by_prompt[suites.build_request(eng, t, protocol).prompt] = t
    seen = []
    out = suites.evaluate(
        eng,
        "code",
        limit=4,
        code_protocol=protocol,
        progress=lambda stage, done, total, **kw: seen.append((stage, done, total, kw)),
    )
    assert out["score"] == 100.0 and out["protocol"] == protocol
    req = suites.build_request(eng, tasks[0], protocol)
    # body: the reply opens with the signature and docstring, and a new top-level statement ends it
    assert req.prefix.endswith(tasks[0].prompt.rstrip()) == (protocol == "body")
    assert ("\ndef " in req.stop) == (protocol == "body") and "\n```" in req.stop
    # generation reports per batch, with the tokens so far (the progress bar's tok/s)
    gen = [s for s in seen if s[0] == "generate"]
    assert gen[-1][1:3] == (4, 4) and "tokens" in gen[-1][3] and seen[-1][0] == "execute"
    with pytest.raises(MindbenchError, match="code protocol"):
        suites.evaluate(eng, "code", limit=4, code_protocol="half")


def _oracle_on_three_code_tasks(monkeypatch, on_run=lambda: None):
    """A base-model oracle for the first 3 code tasks, and an Event set once the sandbox has run
    a program (suites.run_programs wrapped; `on_run` is called first)."""
    import threading

    _sandbox()
    eng = OracleEngine(True, chat=False)
    for t in suites.select(suites.load_suite("code"), 3):
        eng.by_prompt[suites.build_request(eng, t).prompt] = t
    ran, real = threading.Event(), suites.run_programs

    def run(programs, sandboxed, workers):
        res = real(programs, sandboxed, workers)
        on_run()
        ran.set()
        return res

    monkeypatch.setattr("mindbench.suites.pipeline.run_programs", run)
    return eng, ran


def test_programs_run_while_the_next_batch_generates(monkeypatch):
    """The sandbox gets a batch's programs as soon as that batch is generated: with batch 1 the
    first program has run before the last prompt is generated."""
    order = []
    eng, ran = _oracle_on_three_code_tasks(monkeypatch, lambda: order.append("ran"))
    gen = eng.generate

    def slow_generate(prompts, params):
        if order:  # after the first batch: wait for its programs
            assert ran.wait(30), "the first batch's programs did not run during generation"
        order.append("gen")
        return gen(prompts, params)

    eng.generate = slow_generate
    out = suites.evaluate(eng, "code", limit=3, batch_size=1)
    assert out["score"] == 100.0
    assert order.index("ran") < len(order) - 1 and order.count("gen") == 3


def test_programs_run_as_each_output_ends_with_a_continuous_batching_engine(monkeypatch):
    """An engine whose generate() takes on_result (the transformers one) gets every prompt in one
    call; each finished output's program goes to the sandbox at once, while the rest generate."""
    from mindbench.runtimes.base import Generation

    eng, ran = _oracle_on_three_code_tasks(monkeypatch)
    calls = []

    def generate(prompts, params, on_result=None):
        calls.append(len(prompts))
        out = [Generation(eng.answer(p), 1, "stop") for p in prompts]
        for i, g in enumerate(out):
            if i:  # the first output's program runs meanwhile
                assert ran.wait(30), "the first program did not run during generation"
            on_result(i, g)
        return out

    eng.generate = generate
    seen = []
    out = suites.evaluate(eng, "code", limit=3, batch_size=1, progress=lambda *a, **kw: seen.append(a))
    assert out["score"] == 100.0 and calls == [3]  # one call: batching is the engine's
    assert [a[1] for a in seen if a[0] == "generate"] == [1, 2, 3]


def test_evaluate_pass_at_k_with_samples():
    _sandbox()
    eng = OracleEngine(True)
    for t in suites.select(suites.load_suite("code"), 2):
        eng.by_prompt[suites.build_request(eng, t).prompt] = t
    out = suites.evaluate(eng, "code", limit=2, n_samples=3)
    assert out["pass@k"]["pass@3"]["value"] == 1.0 and out["n"] == 2
    assert sorted(out["items"].values()) == [1.0, 1.0]  # fraction of the 3 samples correct


def test_evaluate_one_subset():
    _sandbox()
    eng = OracleEngine(True)
    for t in suites.load_suite("code"):
        eng.by_prompt[suites.build_request(eng, t).prompt] = t
    out = suites.evaluate(eng, "code", limit=2, subset="easy")
    assert list(out["subsets"]) == ["easy"] and out["score"] == 100.0
    with pytest.raises(MindbenchError, match="no subset 'hard'"):
        suites.evaluate(eng, "code", subset="hard")


# --- the real packaged model ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    pytest.importorskip("mindbench.runtimes.transformers.engine", reason="the transformers engine has not landed")
    from mindbench.runtimes import get_engine

    eng = get_engine("smollm2-135m-instruct", "fp32", device="cpu", runtime="transformers")
    yield eng
    eng.unload()


@pytest.mark.slow
@pytest.mark.parametrize("suite", suites.SUITES)
def test_real_model_scores_repeatably(smollm2, suite, tmp_path):
    # Kept short (3 tasks, 96 new tokens; code stops at its closing fence by itself) because the
    # whole project's tests share 2 CPU cores; the full budgets run in `mindbench run`.
    limit, budget = 3, (None if suite == "code" else 96)
    runs = []
    for k in range(2):
        log = tmp_path / f"run{k}.jsonl"
        runs.append(suites.evaluate(smollm2, suite, limit=limit, batch_size=4, log_samples=log, max_new_tokens=budget))
    first, second = runs
    for key in ("score", "metric", "value", "stderr", "n", "subsets", "gen_tokens", "gen_s"):
        assert key in first
    assert first["n"] == limit and 0 <= first["score"] <= 100
    assert first["metric"] == suites.get_suite(suite).metric.name
    assert first["gen_tokens"] > 0 and first["gen_s"] > 0
    # Greedy decoding of the same prompts gives the same outputs, verdicts and score.
    assert (first["score"], first["stderr"], first["subsets"]) == (second["score"], second["stderr"], second["subsets"])
    logs = [[json.loads(x) for x in (tmp_path / f"run{k}.jsonl").read_text().splitlines()] for k in range(2)]
    assert len(logs[0]) == limit
    assert [x["output"] for x in logs[0]] == [x["output"] for x in logs[1]]
    assert sum(x["correct"] for x in logs[0]) / limit == pytest.approx(first["value"])


@pytest.mark.slow
def test_the_two_packaged_models_score_differently_and_repeatably(smollm2):
    from mindbench.models.catalog import availability, resolve

    ok, why = availability(resolve("gemma3-270m"))
    if not ok:
        pytest.skip(f"gemma3-270m is not installed here ({why}); `make extras` installs it")
    from mindbench.runtimes import get_engine

    gemma = get_engine("gemma3-270m", "fp32", device="cpu", runtime="transformers")
    try:
        runs = [suites.evaluate(gemma, "reasoning", limit=4, batch_size=4, max_new_tokens=48) for _ in range(2)]
        assert runs[0]["score"] == runs[1]["score"] and runs[0]["gen_tokens"] == runs[1]["gen_tokens"]
        assert runs[0]["empty_outputs"] == 0
        smol = suites.evaluate(smollm2, "reasoning", limit=4, batch_size=4, max_new_tokens=48)
        # different models, different answers: the token counts of four greedy answers differ
        assert smol["gen_tokens"] != runs[0]["gen_tokens"]
    finally:
        gemma.unload()


@pytest.mark.slow
def test_broken_numerics_show_as_empty_outputs_not_as_a_weak_model():
    # Gemma 3 overflows in fp16 (activations beyond 65504): greedy decoding then emits only
    # special tokens. Measured with `mindbench run`: 20/20 chat outputs empty at fp16, none at int8.
    from mindbench.models.catalog import availability, resolve

    if not availability(resolve("gemma3-270m"))[0]:
        pytest.skip("gemma3-270m is not installed here; `make extras` installs it")
    from mindbench.runtimes import get_engine

    eng = get_engine("gemma3-270m", "fp16", device="cpu", runtime="transformers")
    try:
        out = suites.evaluate(eng, "chat", limit=2, batch_size=2, max_new_tokens=8)
    finally:
        eng.unload()
    assert out["empty_outputs"] == 2 and out["score"] == 0


def test_an_empty_reply_follows_no_chat_instruction():
    tasks = suites.load_suite("chat")
    # tasks whose every check an empty string satisfies (word bans, "no commas", ...)
    vacuous = [t for t in tasks if scoring.check_all("", t.fields["checks"])[0]]
    assert vacuous, "expected some checks that pass vacuously on empty text"
    for t in vacuous:
        assert suites.verdict(t, "", None, True)["correct"] is False
        assert suites.verdict(t, "   \n", None, True)["correct"] is False


# --- no pass without proof that the checks ran to their end -------------------


def _through_the_verdict(pairs):
    """(task, model output) -> verdicts, by the very path evaluate() takes."""
    programs = [(t, suites.program_for(t, text, True)) for t, text in pairs]
    runs = suites.run_programs(programs, True, 2)
    return [suites.verdict(t, text, run, True) for (t, text), run in zip(pairs, runs)]


CHEATS = {
    "os._exit in the body": "    import os\n    os._exit(0)\n",
    "sys.exit in the body": "    import sys\n    sys.exit(0)\n",
    "SystemExit in a finally": "    try:\n        return None\n    finally:\n        raise SystemExit(0)\n",
    "exit at module level": "```python\nimport sys\nsys.exit(0)\n```",
    "os._exit at module level": "```python\nimport os\nos._exit(0)\n```",
    "forged marker, then exit": ("```python\nimport os\nprint('0' * 32 + ' null')\nprint('ok')\nos._exit(0)\n```"),
    "always-equal return value": "    class Same:\n        def __eq__(self, other):\n            return True\n"
    "        __hash__ = None\n    return Same()\n",
    "patched builtins": (
        "```python\nimport builtins\nbuiltins.AssertionError = type('Quiet', (Exception,), {})\n"
        "builtins.abs = lambda x: 0\nbuiltins.isinstance = lambda *a: True\n```"
    ),
    "patched print and stdout, atexit": (
        "```python\nimport atexit, io, os, sys\nsys.stdout = io.StringIO()\n"
        "atexit.register(lambda: os.write(1, b'passed'))\n```"
    ),
    "exit from a thread": (
        "```python\nimport os, threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), os._exit(0))).start()\n"
        "time.sleep(5)\n```"
    ),
}


def test_code_verdict_needs_proof_that_the_checks_ran():
    """On main each of these scored correct=True: the verdict was "exited 0"."""
    code = suites.load_suite("code")
    tasks = [next(t for t in code if t.subset == "easy"), next(t for t in code if t.id == "HumanEval/0")]
    pairs = [(t, cheat) for t in tasks for cheat in CHEATS.values()]
    pairs += [(t, t.fields["canonical_solution"]) for t in tasks]  # the control: passes
    verdicts = _through_the_verdict(pairs)
    cheated = [(t.id, name) for (t, _), v, name in zip(pairs, verdicts, list(CHEATS) * 2) if v["correct"]]
    assert cheated == []
    assert [v["correct"] for v in verdicts[-2:]] == [True, True]
    assert all(v["reason"] != "ok" for v in verdicts[:-2])


def test_data_verdict_needs_the_answer_after_the_proof():
    t = suites.load_suite("data")[0]
    ans = t.fields["answer"]
    prefix = suites.build_request(OracleEngine(True), t).prefix  # ```python, read_csv, answer =
    pairs = [
        (t, f"{prefix} {t.fields['ref']}"),  # control
        (t, f"{prefix} __import__('os')._exit(print({ans!r}, flush=True) or 0)"),  # prints, exits 0
        (t, f"{prefix} __import__('sys').exit(print({ans!r}))"),
        (t, f"{prefix} 0; print({ans!r})"),
    ]  # prints, answers 0
    got = [v["correct"] for v in _through_the_verdict(pairs)]
    assert got == [True, False, False, False]

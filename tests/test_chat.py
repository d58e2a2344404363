"""`mindbench chat`: the real packaged model, streamed, driven through stdin; and the transcript."""

import pytest
from click.testing import CliRunner

from mindbench.chat import conversation, transcript
from mindbench.cli.chat import chat_command
from mindbench.models import hardware
from mindbench.store import results
from tests.records import record, score


def test_transcript_keeps_recent_turns_within_budget():
    turns = [("first question " * 20, "first answer " * 20), ("second", "answer two")]
    assert transcript([], "hi", 100) == "hi"
    full = transcript(turns, "third", 1000)
    assert full.index("first question") < full.index("second") < full.index("third")
    short = transcript(turns, "third", 40)  # the long first turn no longer fits
    assert "first question" not in short and "User: second" in short and short.endswith("third")
    assert transcript(turns, "third", 1) == "third"


def test_conversation_sends_turns_as_messages_within_budget():
    words = lambda msgs: sum(len(m["content"].split()) + 3 for m in msgs)  # noqa: E731
    turns = [("first question " * 20, "first answer " * 20), ("second", "answer two")]
    full = conversation(turns, "third", 1000, words)
    assert [m["role"] for m in full] == ["user", "assistant", "user", "assistant", "user"]
    assert full[0]["content"] == "first question " * 20 and full[-1] == {"role": "user", "content": "third"}
    short = conversation(turns, "third", 30, words)  # the long first exchange no longer fits
    assert [m["content"] for m in short] == ["second", "answer two", "third"]
    assert conversation(turns, "third", 1, words) == [{"role": "user", "content": "third"}]


def _store(tmp_path):
    """A store saying SmolLM2 at fp32 was measured on this machine, so the recommendation is the
    packaged model (the Hub is unreachable here)."""
    hw = hardware.detect()
    rec = record(
        fingerprint=hw.fingerprint,
        memory_class=hw.memory_class,
        speed_fingerprint=None,  # the speed's CPU features unknown, as in a record from before they were kept
        prompt_tokens=64,
        new_tokens=16,
        peak_mb=1200.0,
        quality={"chat": score(50.0, stderr=0.1, n=10, metric="accuracy")},
    )
    p = tmp_path / "runs.jsonl"
    results.append(p, rec)
    return p


@pytest.mark.slow
def test_chat_streams_a_reply_from_the_real_model_and_exits(tmp_path):
    pytest.importorskip("mindbench.provider")
    if hardware.detect().device != "cpu":
        pytest.skip("the store below is a CPU measurement")
    res = CliRunner().invoke(
        chat_command,
        ["--results", str(_store(tmp_path)), "--max-tokens", "8", "--temperature", "0"],
        input="Hello\nAnd again?\n/exit\n",
    )
    assert res.exit_code == 0, res.output
    out = res.output
    assert "smollm2-135m-instruct at fp32 on cpu" in out
    reply = out.split("model> ", 1)[1].split("\n", 1)[0]
    assert reply.strip(), out  # the model said something
    # the second message goes to the provider as a conversation (list of turns) and is answered
    assert out.rstrip().endswith("bye") and out.count("model> ") == 2
    assert out.split("model> ")[2].split("\n", 1)[0].strip(), out


def test_chat_without_results_file_is_a_clean_error(tmp_path):
    res = CliRunner().invoke(chat_command, ["--results", str(tmp_path / "missing.jsonl")], input="/exit\n")
    assert res.exit_code == 2 and "no results file" in res.output and "Traceback" not in res.output

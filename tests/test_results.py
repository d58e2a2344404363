"""The results store and its one record type: atomic appends under concurrency, torn lines, the schema
guard, and every stored record (any schema) read into `Record` and written back unchanged."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mindbench.errors import MindbenchError
from mindbench.store import results
from mindbench.store.record import Config, Figure, Quality, Record
from tests.records import record, score


def _record(i=0, status="ok"):
    return record(cell=f"m|fp32|{i}", status=status, model="m", quality={"code": score(50.0, n=2)})


def test_append_read_roundtrip(tmp_path):
    p = tmp_path / "sub" / "runs.jsonl"
    results.append(p, _record(i=1))
    results.append(p, _record(i=2, status="oom"))
    recs = results.read(p)
    assert [r.cell for r in recs] == ["m|fp32|1", "m|fp32|2"]
    assert all(isinstance(r, Record) and r.schema == results.SCHEMA for r in recs)
    assert p.read_text().count("\n") == 2
    # what was appended is what reads back, field by field (a failed cell: nothing measured)
    assert recs[0] == _record(i=1) and recs[1] == _record(i=2, status="oom")
    assert recs[0].quality["code"].points == 50.0 and recs[1].speed.decode_tok_s is None


def test_concurrent_appends_lose_nothing(tmp_path):
    p = tmp_path / "runs.jsonl"
    n = 150
    # Big records (~20 kB) so that an unlocked write would be split and interleaved.
    code = (
        "import sys; from mindbench.store import results\n"
        "w = sys.argv[2]\n"
        "from mindbench.store.record import Record\n"
        f"for i in range({n}):\n"
        "    results.append(sys.argv[1], Record(cell=f'{w}-{i}', extra={'pad': w * 20000}))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(p), w]) for w in ("a", "b")]
    assert [pr.wait(timeout=120) for pr in procs] == [0, 0]
    recs = results.read(p, warn=False)
    cells = [r.cell for r in recs]
    assert len(cells) == 2 * n and len(set(cells)) == 2 * n
    for r in recs:
        assert r.extra["pad"] == r.cell[0] * 20000
    # every line parses: no torn line was skipped
    assert len(p.read_text().splitlines()) == 2 * n


def test_truncated_last_line_is_skipped_with_warning(tmp_path, capsys):
    p = tmp_path / "runs.jsonl"
    results.append(p, _record(i=1))
    with open(p, "a") as f:  # what a writer killed mid-line leaves behind
        f.write(json.dumps(_record(i=2).to_json())[:57])
    recs = results.read(p)
    assert [r.cell for r in recs] == ["m|fp32|1"]
    assert "skipping corrupt line 2" in capsys.readouterr().err
    # the next append starts on a fresh line, so it is not lost to the torn one
    results.append(p, _record(i=3))
    assert [r.cell for r in results.read(p, warn=False)] == ["m|fp32|1", "m|fp32|3"]


def test_missing_file_and_newer_schema_are_user_errors(tmp_path):
    with pytest.raises(MindbenchError, match="no results file"):
        results.read(tmp_path / "nope.jsonl")
    p = tmp_path / "future.jsonl"
    p.write_text(json.dumps({"schema": results.SCHEMA + 1, "cell": "x"}) + "\n")
    with pytest.raises(MindbenchError, match="upgrade mindbench"):
        results.read(p)


def test_cell_key():
    cfg = {
        "model": "m",
        "runtime": "transformers",
        "precision": "int4",
        "device": "cpu",
        "weights": "pretrained",
        "suites": ["code", "chat"],
        "limit": None,
    }
    assert results.cell_key(cfg, "fp") == "m|transformers|int4|cpu|pretrained|code,chat|all|fp"
    # the code protocol tells cells apart when a code suite is scored, and only then
    assert (
        results.cell_key({**cfg, "code_protocol": "body"}, "fp")
        == "m|transformers|int4|cpu|pretrained|code,chat|protocol=body|all|fp"
    )
    assert results.cell_key({**cfg, "code_protocol": "full"}, "fp") != results.cell_key(
        {**cfg, "code_protocol": "body"}, "fp"
    )
    assert (
        results.cell_key({**cfg, "suites": ["chat"], "code_protocol": "body"}, "fp")
        == "m|transformers|int4|cpu|pretrained|chat|all|fp"
    )


def test_cell_key_is_the_same_from_the_typed_config():
    cfg = {"model": "m", "runtime": "transformers", "precision": "int4", "device": "cpu", "suites": ["code"]}
    # a config without `weights` is a pretrained one, as records before --no-weights were
    assert results.cell_key(cfg, "fp") == results.cell_key(Config.from_json(cfg), "fp")
    assert results.cell_key(cfg, "fp").split("|")[4] == "pretrained"


def _stores():
    root = Path(__file__).resolve().parents[1]
    return sorted((root / "results").rglob("*.jsonl")) + sorted((root / "tests" / "data").rglob("*.jsonl"))


def test_every_committed_record_reads_as_a_record_and_writes_back_unchanged():
    """Every store in results/ and tests/data/ (schema 1 and 2, cells and serving runs) reads into
    the one type, and `to_json` gives back exactly the stored line: nothing is lost by reading."""
    n = 0
    for store in _stores():
        lines = [json.loads(x) for x in store.read_text().splitlines() if x.strip()]
        records = [x for x in lines if isinstance(x, dict) and "status" in x]
        for raw in records:
            rec = Record.from_json(raw)
            assert rec.to_json() == raw, (store, raw.get("cell"))
            assert rec.schema == raw.get("schema", 1) and rec.config.model == raw["config"].get("model")
            n += 1
    assert n >= 30


def test_sections_are_typed_and_undeclared_keys_survive():
    raw = {
        "schema": 2,
        "status": "ok",
        "config": {"model": "m", "precision": "Q4_1", "runtime": "llamacpp", "new_option": 3},
        "load": {"load_s": 1.5, "requantized_from": "Q8_0"},
        "speed": {"decode_tok_s": {"mean": 12.0, "std": 0.4, "n": 5}, "verdict": "noisy"},
        "quality": {"code": {"score": 40.0, "value": 0.4, "stderr": 0.1, "n": 10, "items": {"a": 1.0}}},
        "fidelity": {"kld": {"mean": 0.02, "ci_lo": 0.01, "ci_hi": 0.03}, "is_reference": False},
    }
    rec = Record.from_json(raw)
    assert rec.speed.decode_tok_s == Figure(12.0, 0.4, 5) and not rec.speed_usable  # noisy: not evidence
    assert isinstance(rec.quality["code"], Quality) and rec.quality["code"].stderr_points == 10.0
    assert rec.fidelity.kld.ci_hi == 0.03
    assert rec.config.extra == {"new_option": 3} and rec.load.extra == {"requantized_from": "Q8_0"}
    assert rec.to_json()["config"]["new_option"] == 3 and rec.to_json()["load"]["requantized_from"] == "Q8_0"


def test_a_schema1_record_reads_with_unknown_sections():
    rec = Record.from_json(
        {
            "status": "ok",
            "config": {"model": "m", "precision": "int8", "device": "cpu"},
            "memory": {"peak_rss_mb": 900.0},
            "speed": {"decode_tok_s": {"mean": 5.0, "std": 0.5, "n": 3}},
            "quality": {"code": {"score": 40.0, "stderr": 0.1, "n": 10}},
        }
    )
    assert rec.schema == 1
    assert rec.hardware.speed_fingerprint is None and rec.speed.verdict is None and rec.speed_usable  # unknown, not bad
    assert rec.peak == (900.0, "peak_rss_mb") and rec.weights == "pretrained"
    assert rec.speed.figure("decode_tok_s").value == 5.0 and rec.speed.figure("ttft_ms").value is None
    assert rec.roofline.bandwidth_gb_s is None and rec.fidelity is None  # missing sections: unknown, never zero
    q = rec.quality["code"]
    assert (q.points, q.stderr_points, q.n, q.items, q.better_higher) == (40.0, 10.0, 10, None, True)


def test_a_damaged_section_is_a_corrupt_line_not_a_crash(tmp_path, capsys):
    p = tmp_path / "runs.jsonl"
    results.append(p, _record(i=1))
    with open(p, "a") as f:
        f.write(json.dumps({"schema": 2, "status": "ok", "config": "not an object"}) + "\n")
    assert [r.cell for r in results.read(p)] == ["m|fp32|1"]
    assert "skipping corrupt line 2" in capsys.readouterr().err

"""The results store: atomic appends under concurrency, torn lines, schema guard, flattening."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mindbench.errors import MindbenchError
from mindbench.store import results


def _record(model="m", precision="fp32", status="ok", quality=None, i=0):
    return {
        "schema": results.SCHEMA,
        "cell": f"{model}|{precision}|{i}",
        "status": status,
        "error": None,
        "config": {
            "model": model,
            "runtime": "transformers",
            "precision": precision,
            "device": "cpu",
            "weights": "pretrained",
            "suites": list(quality or {}),
            "limit": 2,
        },
        "hardware": {"fingerprint": "abc", "memory_class": "cpu-16gb"},
        "memory": {
            "weights_mb": 100.0,
            "peak_rss_mb": 900.0,
            "nvml_global_mb": None,
            "nvml_process_mb": None,
            "torch_max_allocated_mb": None,
            "torch_max_reserved_mb": None,
        },
        "speed": {
            "prefill_tok_s": {"mean": 500.0, "std": 5.0, "n": 2},
            "decode_tok_s": {"mean": 20.0, "std": 1.0, "n": 2},
            "ttft_ms": {"mean": 40.0, "std": 2.0, "n": 2},
        },
        "roofline": {"bandwidth_gb_s": 10.0, "bytes_per_token": 1e8, "efficiency": 0.2},
        "quality": quality or {},
    }


def test_append_read_roundtrip(tmp_path):
    p = tmp_path / "sub" / "runs.jsonl"
    results.append(p, _record(i=1))
    results.append(p, _record(i=2, status="oom"))
    recs = results.read(p)
    assert [r["cell"] for r in recs] == ["m|fp32|1", "m|fp32|2"]
    assert all(r["schema"] == results.SCHEMA for r in recs)
    assert p.read_text().count("\n") == 2


def test_concurrent_appends_lose_nothing(tmp_path):
    p = tmp_path / "runs.jsonl"
    n = 150
    # Big records (~20 kB) so that an unlocked write would be split and interleaved.
    code = (
        "import sys; from mindbench.store import results\n"
        "w = sys.argv[2]\n"
        f"for i in range({n}):\n"
        "    results.append(sys.argv[1], {'cell': f'{w}-{i}', 'pad': w * 20000})\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(p), w]) for w in ("a", "b")]
    assert [pr.wait(timeout=120) for pr in procs] == [0, 0]
    recs = results.read(p, warn=False)
    cells = [r["cell"] for r in recs]
    assert len(cells) == 2 * n and len(set(cells)) == 2 * n
    for r in recs:
        assert r["pad"] == r["cell"][0] * 20000
    # every line parses: no torn line was skipped
    assert len(p.read_text().splitlines()) == 2 * n


def test_truncated_last_line_is_skipped_with_warning(tmp_path, capsys):
    p = tmp_path / "runs.jsonl"
    results.append(p, _record(i=1))
    with open(p, "a") as f:  # what a writer killed mid-line leaves behind
        f.write(json.dumps(_record(i=2))[:57])
    recs = results.read(p)
    assert [r["cell"] for r in recs] == ["m|fp32|1"]
    assert "skipping corrupt line 2" in capsys.readouterr().err
    # the next append starts on a fresh line, so it is not lost to the torn one
    results.append(p, _record(i=3))
    assert [r["cell"] for r in results.read(p, warn=False)] == ["m|fp32|1", "m|fp32|3"]


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


def test_every_committed_record_reads_as_a_typed_record():
    """results.Record reads every store in results/ (schema 1 and 2) into the figures view() shows."""
    from mindbench.store.results import Record, view

    stores = sorted((Path(__file__).resolve().parents[1] / "results").rglob("*.jsonl"))
    assert stores
    for store in stores:
        for raw in results.read(store, warn=False):
            rec, v = Record.of(raw), view(raw)
            assert rec.schema in (1, 2) and rec.model == v["model"] and rec.precision == v["precision"]
            assert (rec.peak_mb, rec.peak_source) == (v["peak_mb"], v["peak_source"])
            assert rec.decode_tok_s.mean == v["decode_tok_s"] and rec.speed_verdict == v["speed_verdict"]
            for suite, q in rec.quality.items():
                assert (q.score_pct, q.stderr_pct, q.n) == tuple(
                    v["quality"][suite][k] for k in ("score", "stderr", "n")
                )


def test_a_schema1_record_reads_with_unknown_sections():
    from mindbench.store.results import Record

    rec = Record.of(
        {
            "schema": 1,
            "status": "ok",
            "config": {"model": "m", "precision": "int8", "device": "cpu"},
            "memory": {"peak_rss_mb": 900.0},
            "speed": {"decode_tok_s": {"mean": 5.0, "std": 0.5, "n": 3}},
            "quality": {"code": {"score": 40.0, "stderr": 0.1, "n": 10}},
        }
    )
    assert rec.speed_fingerprint is None and rec.speed_verdict is None and rec.speed_usable  # unknown, not bad
    assert (rec.peak_mb, rec.peak_source, rec.weights) == (900.0, "peak_rss_mb", "pretrained")
    assert rec.decode_tok_s.mean == 5.0 and rec.ttft_ms.mean is None
    q = rec.quality["code"]
    assert (q.score_pct, q.stderr_pct, q.n, q.items) == (40.0, 10.0, 10, None)

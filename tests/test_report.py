"""Reports from synthetic records (tests/records.py): every format renders the measured figures with
their spread, failed cells keep their status and message, and the plot is a real PNG."""

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mindbench.cli.report import report_command
from mindbench.present.report import pareto_front, plot, render
from mindbench.store import results
from tests.records import record as make_record
from tests.records import score as make_score


def record(precision, *, score=None, stderr=None, n=20, peak=900.0, suites=("code",), status="ok", **kw):
    """One CPU cell on "Test CPU" with a roofline, scored (when `score` is given) on each suite."""
    quality = None
    if score is not None:
        quality = {
            s: make_score(score, stderr=stderr, n=n, metric="pass@1" if s == "code" else "accuracy") for s in suites
        }
    ok = status == "ok"  # a failed cell measured nothing, its roofline included
    return make_record(
        precision=precision,
        quality=quality,
        suites=list(suites),
        limit=n,
        status=status,
        peak_mb=peak,
        prefill=410.0,
        prefill_std=12.0,
        ttft=31.0,
        ttft_std=1.5,
        cpu="Test CPU",
        bandwidth_gb_s=12.0 if ok else None,
        bytes_per_token=540_000_000 if ok else None,
        efficiency=0.9 if ok else None,
        **kw,
    )


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "runs.jsonl"
    for rec in [
        record("fp32", score=15.0, stderr=0.08, decode=21.3, decode_std=0.4, peak=1100),
        record("int8", score=10.0, stderr=0.067, decode=6.2, decode_std=0.3, peak=800),
        record("int4", score=5.0, stderr=0.049, decode=18.8, decode_std=0.9, peak=700),
        record("bf16", status="oom", error="out of memory while loading: try --precision int4"),
        record("fp16", status="crashed", error="worker died (signal 11)"),
    ]:
        results.append(path, rec)
    return path


def test_markdown_table_has_measured_figures_with_spread(store):
    md = render(results.read(store), "md")
    lines = md.splitlines()
    assert lines[0].startswith("Hardware: Test CPU, 2 cores")
    header = next(l for l in lines if l.startswith("| model"))
    for col in ("params", "runtime", "precision", "peak MB", "decode tok/s", "prefill tok/s", "TTFT ms", "code", "use"):
        assert col in header
    fp32 = next(l for l in lines if "| fp32" in l)
    assert "21.3 ± 0.4" in fp32 and "15.0 ± 8.0 (n=20) pass@1" in fp32 and "0.135B" in fp32
    assert "1100 (RSS)" in fp32 and "410 ± 12" in fp32 and "31.0 ± 1.5" in fp32 and "90%" in fp32
    assert "chat, code, reasoning, data" in fp32
    # Failed cells are rows with their status and message, figures blank.
    assert "oom: out of memory while loading: try --precision int4" in md
    assert "crashed: worker died (signal 11)" in md
    assert "(est.)" not in md


def test_csv_keeps_numbers_and_spreads_in_columns(store):
    rows = list(csv.DictReader(io.StringIO(render(results.read(store), "csv"))))
    assert [r["precision"] for r in rows] == ["fp32", "int8", "int4", "bf16", "fp16"]
    fp32 = rows[0]
    assert float(fp32["decode_tok_s"]) == 21.3 and float(fp32["decode_tok_s_std"]) == 0.4
    assert float(fp32["code_score"]) == 15.0 and float(fp32["code_stderr"]) == pytest.approx(8.0)
    assert rows[3]["status"] == "oom" and "out of memory" in rows[3]["error"]


def test_html_is_escaped_table(store):
    recs = results.read(store)
    recs[0].error = None
    recs[3].error = "<script>boom</script>"
    out = render(recs, "html")
    assert out.startswith("<!doctype html>") and "<table class='data sortable'" in out and ">decode tok/s</th>" in out
    assert "<script>boom" not in out and "&lt;script&gt;boom" in out


def test_json_is_raw_numbers(store):
    data = json.loads(render(results.read(store), "json"))
    assert len(data) == 5
    # each row is the record itself (its stored shape) and its paired comparison
    assert data[0]["speed"]["decode_tok_s"]["mean"] == 21.3 and data[0]["quality"]["code"]["stderr"] == 0.08
    assert data[3]["status"] == "oom" and data[3]["speed"]["decode_tok_s"] is None
    assert all("paired" in d for d in data)


def test_estimated_figures_are_labelled():
    recs = [record("fp16", score=10, stderr=0.05, estimated=["speed.decode_tok_s"])]
    md = render(recs, "md")
    assert "20.0 ± 0.5 (est.)" in md and "estimated, not measured" in md
    # A figure dict can mark itself too.
    recs = [record("fp16")]
    recs[0].speed.ttft_ms.estimated = True
    assert "31.0 ± 1.5 (est.)" in render(recs, "md")


def test_empty_outputs_are_called_out_beside_the_score():
    broken, fine = record("fp16", score=0, stderr=0.0), record("fp32", score=30, stderr=0.1)
    broken.quality["code"].empty_outputs = 20
    md = render([broken, fine], "md")
    assert "0.0 ± 0.0 (n=20) pass@1 [20 empty]" in md and "broken numerics" in md
    assert md.count("[20 empty]") == 1 and "[0 empty]" not in md
    assert "empty" not in render([fine], "md")


def test_fault_injected_rows_are_marked():
    r = record("int4", score=0, stderr=0.0, fault="corrupt_prompt")
    assert "smollm2-135m-instruct (fault injected: corrupt_prompt)" in render([r], "md")


def test_random_weights_rows_are_marked():
    md = render([record("int4", model="mistral-7b-instruct", weights="random", suites=())], "md")
    assert "mistral-7b-instruct (random weights)" in md and "7.24B" in md


def test_pareto_front():
    # (memory, quality): b is beaten by a (less memory, more quality); d is the best quality.
    pts = [(500, 40), (600, 30), (700, 60), (800, 60), (300, 10)]
    assert pareto_front(pts) == [4, 0, 2]


def test_plot_writes_a_real_png(store, tmp_path):
    recs = results.read(store) + [
        record("fp32", model="gemma3-270m", score=12, stderr=0.07, peak=1500),
        record("int4", model="gemma3-270m", score=11, stderr=0.07, peak=900),
    ]
    out = plot(recs, tmp_path / "sub" / "report.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert 20_000 < len(data) < 2_000_000
    import struct

    width, height = struct.unpack(">II", data[16:24])
    assert width > 1000 and height > 400


def test_cli_formats_output_file_plot_and_json(store, tmp_path):
    runner = CliRunner()
    res = runner.invoke(report_command, [str(store)])
    assert res.exit_code == 0, res.output
    assert "| fp32" in res.output
    res = runner.invoke(report_command, [str(store), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)[0]["config"]["precision"] == "fp32"
    png, html_out = tmp_path / "r.png", tmp_path / "r.html"
    res = runner.invoke(report_command, [str(store), "--format", "html", "-o", str(html_out), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert "<table class='data sortable'" in html_out.read_text() and png.stat().st_size > 20_000


def test_cli_newest_record_per_cell_unless_all(tmp_path):
    path = tmp_path / "runs.jsonl"
    results.append(path, record("fp32", decode=10.0, timestamp="2025-01-01T00:00:00"))
    results.append(path, record("fp32", decode=30.0, timestamp="2025-01-02T00:00:00"))
    out = CliRunner().invoke(report_command, [str(path), "--json"]).output
    assert [r["speed"]["decode_tok_s"]["mean"] for r in json.loads(out)] == [30.0]
    out = CliRunner().invoke(report_command, [str(path), "--json", "--all"]).output
    assert [r["speed"]["decode_tok_s"]["mean"] for r in json.loads(out)] == [10.0, 30.0]


def test_cli_user_errors(tmp_path):
    res = CliRunner().invoke(report_command, [str(tmp_path / "missing.jsonl")])
    assert res.exit_code == 2 and res.output.startswith("Error: ") and "mindbench run" in res.output
    path = tmp_path / "perf.jsonl"
    results.append(path, record("fp32"))  # no quality: nothing to plot
    res = CliRunner().invoke(report_command, [str(path), "--plot", str(tmp_path / "x.png")])
    assert res.exit_code == 1 and "nothing to plot" in res.output


def test_paired_section_in_every_format():
    """Cells with per-task verdicts are compared with the model's widest precision on the same
    tasks: flips, McNemar p, bootstrap CI, MDE, and "not distinguishable" inside the noise."""

    def with_items(rec, right):
        rec.quality["code"].items = {f"HumanEval/{i}": float(i in right) for i in range(20)}
        return rec

    recs = [
        with_items(record("fp32", score=50.0, stderr=0.11), range(10)),
        with_items(record("int8", score=45.0, stderr=0.11), range(1, 10)),  # 1 lost
        with_items(record("int4", score=0.0, stderr=0.0), ()),  # 10 lost
        record("fp16", score=40.0, stderr=0.11),
    ]  # no items: unpaired
    md = render(recs, "md")
    assert "Against each model's widest precision" in md
    lines = {
        ln.split("|")[4].strip(): ln
        for ln in md.splitlines()
        if ln.startswith("| smollm2") and "code" in ln.split("|")[2]
    }
    assert "1 / 0" in lines["int8"] and "not distinguishable at n = 20" in lines["int8"]
    assert "10 / 0" in lines["int4"] and "fp32 better" in lines["int4"] and "0.00195" in lines["int4"]
    assert "two-proportion" in lines["fp16"] and "not distinguishable at n = 20" in lines["fp16"]
    assert "Against each model" in render(recs, "html")
    data = {d["config"]["precision"]: d["paired"] for d in json.loads(render(recs, "json"))}
    assert data["fp32"] == {} and data["int4"]["code"]["right_to_wrong"] == 10
    assert data["int4"]["code"]["p"] == pytest.approx(2 * 0.5**10) and data["int4"]["code"]["ci"][1] < 0
    rows = {r["precision"]: r for r in csv.DictReader(io.StringIO(render(recs, "csv")))}
    assert rows["int4"]["code_vs_ref_verdict"] == "fp32 better" and rows["fp32"]["code_vs_ref_p"] == ""
    assert float(rows["int8"]["code_vs_ref_diff"]) == pytest.approx(-5.0)
    # a store without items or a second precision has no paired section
    assert "Against each model" not in render([record("fp32", score=50.0, stderr=0.11)], "md")


def test_run_summary_says_once_what_every_row_shares():
    """`mindbench run`'s terminal table moves the columns every row shares (one model on one
    runtime) above the table; with several models the model column stays. Report's Markdown keeps
    every column."""
    from mindbench.present.table import text
    from mindbench.store import results as res

    root = Path(__file__).resolve().parent.parent / "results"
    one = [r for r in res.read(root / "baseline.jsonl")]
    head, header = text(one, "simple").splitlines()[:2]
    assert head.startswith("model: smollm2-135m-instruct") and "runtime: transformers" in head
    assert header.split()[0] == "precision" and "model" not in header.split()
    assert "| model" in text(one, "github")
    four = res.read(root / "packaged-sweep.jsonl")
    head, header = text(four, "simple").splitlines()[:2]
    assert "runtime: llamacpp" in head and "model:" not in head and header.split()[0] == "model"

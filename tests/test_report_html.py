"""The HTML report: one self-contained page per store (and per compare result), checked with an
HTML parser on the committed stores in results/ and on hand-made records for what those lack
(fidelity, failed cells, estimated/published/contended figures, a second machine)."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from mindbench.cli.compare import compare_command
from mindbench.cli.report import report_command
from mindbench.decide.compare import compare
from mindbench.present.report import latest, load_records, table_rows
from mindbench.present.report_html import compare_page, page
from mindbench.store import results
from mindbench.store.record import Fidelity, Interval
from tests.records import fidelity, record, score

ROOT = Path(__file__).resolve().parents[1]
STORES = sorted((ROOT / "results").glob("*.jsonl")) + sorted((ROOT / "results" / "gate").glob("*.jsonl"))


class Page(HTMLParser):
    """What the tests look at: tables (head and body rows as cell texts), figures, and every
    attribute, script and style, to find anything that would reach the network."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.figures, self.attrs, self.scripts, self.styles, self.links = {}, {}, [], [], [], []
        self._table = self._row = self._cell = self._fig = None
        self._in = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.attrs.extend((tag, k, v or "") for k, v in attrs)
        self._in.append(tag)
        if tag == "table":
            self._table = self.tables.setdefault(
                a.get("id"), {"head": [], "rows": [], "row_classes": [], "classes": a.get("class", "")}
            )
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._row_class = a.get("class")
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "figure":
            self._fig = a.get("id")
            self.figures[self._fig] = {"svg": 0, "class": a.get("class")}
        elif tag == "svg" and self._fig:
            self.figures[self._fig]["svg"] += 1
        elif tag == "script":
            self.scripts.append(a)
        elif tag == "link":
            self.links.append(a)

    def handle_endtag(self, tag):
        if self._in and self._in[-1] == tag:
            self._in.pop()
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row_is_head():
                self._table["head"] = self._row
            else:
                self._table["rows"].append(self._row)
                self._table["row_classes"].append(self._row_class)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "figure":
            self._fig = None

    def _row_is_head(self):
        return "thead" in self._in

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in and self._in[-1] == "style":
            self.styles.append(data)
        if self._in and self._in[-1] == "script":
            self.scripts.append(data)


def assert_self_contained(text: str, p: Page):
    """Nothing in the page may be fetched: no URL in src/href, no url() to anywhere but an
    in-page #id, no stylesheet link, no external script, no @import."""
    for tag, name, value in p.attrs:
        if name in ("src", "href", "xlink:href", "data", "action", "poster", "srcset"):
            assert value.startswith(("#", "data:")), (tag, name, value)
        assert not re.search(r"url\(\s*['\"]?(?!#|data:)", value), (tag, name, value)
    assert not p.links, "no <link> of any kind (stylesheets, fonts, icons)"
    assert all("src" not in s for s in p.scripts if isinstance(s, dict))
    css = "".join(p.styles)
    assert "@import" not in css and not re.search(r"url\(\s*['\"]?(?!#|data:)", css)
    assert not re.search(r"<(img|iframe|object|embed|video|audio)\b", text, re.I)
    assert "http://" not in css + "".join(s for s in p.scripts if isinstance(s, str))


@pytest.mark.parametrize("store", STORES, ids=lambda p: p.name)
def test_page_from_each_committed_store(store):
    records = latest(load_records([store]))
    text = page(records)
    p = Page(text)
    assert_self_contained(text, p)
    # The comparison table is report.table_rows' table: one row per record, same columns and
    # cells as the Markdown output, plus the provenance column.
    t = p.tables["results"]
    assert "sortable" in t["classes"]
    expected = table_rows(records)
    assert len(t["rows"]) == len(records) == len(expected)
    assert t["head"] == list(expected[0]) + ["provenance"]
    for got, want in zip(t["rows"], expected):
        assert got[:-1] == list(want.values())
        assert got[-1].startswith("measured here")  # one machine per committed store: all "here"
    # Every plot is there as inline SVG (these stores all have quality, memory and speed).
    for fid in ("plot-quality", "plot-speed"):
        assert p.figures[fid]["svg"] == 1, fid
    # The fidelity plot exactly when some record carries fidelity figures (stores made since schema 2).
    has_fid = any(r.fidelity is not None and r.fidelity.kld is not None for r in records)
    assert ("plot-fidelity" in p.figures) == has_fid
    if has_fid:
        assert p.figures["plot-fidelity"]["svg"] == 1
    # Header: machine with its CPU and RAM, the commit, when.
    hw = records[0].hardware
    assert hw.cpu in text and str(hw.ram_mb) in text
    assert records[0].software.commit in text and records[0].software.torch in text
    assert "runs" in p.tables and len(p.tables["runs"]["rows"]) == len({r.run_id for r in records})


def test_suites_store_gets_a_recommendation_per_task_with_its_why():
    records = latest(load_records([ROOT / "results" / "suites_by_precision.jsonl"]))
    text = page(records)
    for task in ("code", "chat", "reasoning", "data"):
        assert re.search(rf"<h3>{task}: [\w.-]+ (fp16|int8|int4)", text), task
    assert "measured here; the best of" in text


def test_baseline_store_explains_why_no_recommendation():
    text = page(latest(load_records([ROOT / "results" / "baseline.jsonl"])))
    assert "No measured recommendation for: code; chat; reasoning; data" in text


def test_committed_baseline_page_is_the_baselines():
    """results/baseline.html is the committed baseline's page (scripts/ci_gate.sh --refresh
    remakes it with baseline.md): one table row per baseline cell, every plot, self-contained.
    Not compared byte for byte: a new table column elsewhere must not fail this until the lead
    refreshes the baseline."""
    text = (ROOT / "results" / "baseline.html").read_text(encoding="utf-8")
    p = Page(text)
    assert_self_contained(text, p)
    records = latest(load_records([ROOT / "results" / "baseline.jsonl"]))
    rows = p.tables["results"]["rows"]
    assert len(rows) == len(records)
    head = p.tables["results"]["head"]
    assert [r[head.index("precision")] for r in rows] == [r.config.precision for r in records]
    assert p.figures["plot-quality"]["svg"] == 1 and p.figures["plot-speed"]["svg"] == 1
    assert records[0].software.commit in text


def _rec(precision, fp="fp-A", cpu="Test CPU", **kw):
    """One scored CPU cell of the packaged model on machine `fp`."""
    kw.setdefault("quality", {"code": score(30.0, stderr=0.1, n=20)})
    return record(
        precision=precision,
        fingerprint=fp,
        speed_fingerprint="sf-" + fp,
        cpu=cpu,
        cpu_features=["avx2", "avx512f"],
        limit=20,
        threads=2,
        weights_mb=500.0,
        run_id="r1",
        timestamp="2026-01-01T00:00:00+00:00",
        **kw,
    )


def _fid(kld, top1, ref=False):
    f = fidelity(
        kld,
        lo=kld * 0.8,
        hi=kld * 1.2,
        is_reference=ref,
        text_sha="x",
        documents=8,
        delta_p={"median": 0.001, "p90": 0.01, "p99": 0.05},
        ppl_ratio=Interval(1.01, 1.0, 1.02),
        seconds=3.0,
    )
    f.top1 = Interval(top1, top1 - 0.02, min(1.0, top1 + 0.02))
    return f


@pytest.fixture
def rich():
    """Fidelity on three precisions (one errored), a failed cell with a message, estimated,
    published and contended figures, an `[k empty]` flag, and a second machine."""
    fp32 = _rec("fp32", fidelity=_fid(0.0, 1.0, ref=True))
    int8 = _rec("int8", fidelity=_fid(0.004, 0.97), estimated=["speed.decode_tok_s"])
    int4 = _rec("int4", fidelity=_fid(0.05, 0.88), verdict="contended")
    int4.quality["code"].empty_outputs = 3
    int4.quality["code"].extra["source"] = "published (model card)"  # a key the record type does not declare
    fp16 = _rec("fp16", fidelity=Fidelity(error="vocabularies differ"))
    oom = _rec("bf16", status="oom", error="CUDA out of memory <b>while</b> loading; try --precision int4")
    other = _rec("fp32", fp="fp-B", cpu="Other CPU")
    return [fp32, int8, int4, fp16, oom, other]


def test_rich_store_shows_fidelity_failures_and_provenance(rich):
    text = page(rich)
    p = Page(text)
    assert_self_contained(text, p)
    t = p.tables["results"]
    assert len(t["rows"]) == 6
    assert t["row_classes"][4] == "failed"
    status = t["rows"][4][t["head"].index("status")]
    assert status.startswith("oom: CUDA out of memory <b>while</b>")  # the message, escaped, not markup
    assert "<b>while</b>" not in text and "&lt;b&gt;while&lt;/b&gt;" in text
    assert "Failed cells" in text
    prov = [r[-1] for r in t["rows"]]
    assert "estimated: decode tok/s" in prov[1] and "(est.)" in t["rows"][1][t["head"].index("decode tok/s")]
    assert "published: code" in prov[2] and "speed contended" in prov[2]
    assert "measured elsewhere (M2)" in prov[5] and prov[0].startswith("measured here")
    assert "[3 empty]" in t["rows"][2][t["head"].index("code")] and "[k empty] = k outputs" in text
    # Each marked cell says why on hover.
    assert re.search(r"class='num est[^']*' title='estimated, not measured'", text)
    assert re.search(r"class='[^']*busy[^']*' title='measured while the machine was contended", text)
    # Fidelity: its plot and its table, with CIs and the errored cell's message.
    assert p.figures["plot-fidelity"]["svg"] == 1
    f = p.tables["fidelity"]
    assert len(f["rows"]) == 4
    assert f["rows"][1][4] == "0.0040 [0.0032, 0.0048]" and f["rows"][1][5] == "97.0 [95.0, 99.0]"
    assert "vocabularies differ" in f["rows"][3][4]
    # Two machines in the header, with their CPU features.
    assert "Other CPU" in text and "avx2 avx512f" in text and "M2" in text


def test_html_format_through_the_cli(rich, tmp_path):
    store = tmp_path / "runs.jsonl"
    for r in rich:
        results.append(store, r)
    out = tmp_path / "report.html"
    res = CliRunner().invoke(report_command, [str(store), "--format", "html", "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert text.startswith("<!doctype html>") and Page(text).tables["results"]["rows"]


def test_sortable_headers_are_wired():
    text = page(latest(load_records([ROOT / "results" / "baseline.jsonl"])))
    p = Page(text)
    assert all("sortable" in t["classes"] for t in p.tables.values())
    js = "".join(s for s in p.scripts if isinstance(s, str))
    assert "querySelectorAll('table.sortable')" in js and "addEventListener('click'" in js


def test_compare_page_lists_regressions_first(tmp_path):
    base = ROOT / "results" / "baseline.jsonl"
    fault = ROOT / "results" / "gate" / "fault_corrupt_prompt.jsonl"
    out = tmp_path / "cmp.html"
    # the committed fault run is quality evidence; its speed is the A/B gate's (test_compare says why)
    res = CliRunner().invoke(compare_command, [str(base), str(fault), "--html", str(out), "--no-speed"])
    assert res.exit_code == 1, res.output  # the page does not change compare's verdict
    text = out.read_text()
    p = Page(text)
    assert_self_contained(text, p)
    checks = p.tables["checks"]
    verdicts = [r[-1] for r in checks["rows"]]
    n_reg = verdicts.count("REGRESSION")
    assert n_reg == 2 and verdicts[:n_reg] == ["REGRESSION"] * n_reg
    assert all(c == "regression" for c in checks["row_classes"][:n_reg])
    assert "2 regression(s)" in text and p.figures["plot-compare"]["svg"] == 1
    assert len(p.tables["results-baseline"]["rows"]) == 2 and len(p.tables["results-new"]["rows"]) == 2


def test_compare_page_of_an_honest_rerun_has_no_regression():
    base = load_records([ROOT / "results" / "baseline.jsonl"])
    rerun = load_records([ROOT / "results" / "gate" / "rerun.jsonl"])
    result = compare(base, rerun)
    text = compare_page(result, base, rerun)
    assert "0 regression(s)" in text and "REGRESSION" not in text and "banner good" in text


def test_status_regression_sorts_first_and_shows_message():
    base = [_rec("fp32"), _rec("int4")]
    new = [_rec("fp32"), _rec("int4", status="crashed", error="worker died (signal 11)")]
    result = compare(base, new)
    p = Page(compare_page(result, base, new))
    first = p.tables["checks"]["rows"][0]
    assert first[1] == "status" and first[-1] == "REGRESSION" and "worker died" in first[3]


def test_empty_store_still_makes_a_page():
    p = Page(page([]))
    assert "results" not in p.tables and p.figures["plot-quality"]["class"] == "empty"


def _card(text: str, label: str) -> str:
    start = text.index(f"<h3>{label}")
    return text[start : text.index("</div>", start)]


def test_machine_header_shows_the_bandwidth_its_records_measured():
    """The machine card said "20.0 GB/s, assumed (typical dual-channel DDR4)" while every record on
    the page had measured 33-53 GB/s: now the measured figures, their spread, and how."""
    how = "read: torch.sum over 1024 MiB float32"
    assumed = (20.0, "assumed (typical dual-channel DDR4)")
    recs = [
        _rec(p, bandwidth_gb_s=bw, bandwidth_method=how) for p, bw in (("fp32", 33.4), ("int8", 41.0), ("int4", 52.9))
    ]
    other = _rec("fp32", fp="fp-B", cpu="Other CPU")  # a machine whose records measured nothing
    for r in recs + [other]:
        r.hardware.bandwidth_gb_s, r.hardware.bandwidth_source = assumed
    text = page(recs + [other])
    mine = _card(text, "M1")
    assert "41.0 GB/s (range 33.4–52.9, n=3), measured by these records" in mine and how in mine
    assert "assumed" not in mine
    assert "20.0 GB/s, assumed (typical dual-channel DDR4)" in _card(text, "M2")


def test_the_page_has_a_serving_section_with_its_table_and_inline_plots(tmp_path):
    """serve-bench's runs on the HTML page: every level in the table with its intervals, and the
    latency-vs-throughput plots inline (end to end and first token); a store of serving runs only
    still makes a page."""
    from mindbench.cli.report import report_command
    from tests.records import requests, serving_record

    slo = {"ttft": 0.5, "itl": 0.05}
    run = serving_record({1: requests(40, 0.2, 0.02, 1), 4: requests(40, 0.3, 0.03, 2)}, slo=slo)
    store = tmp_path / "runs.jsonl"
    results.append(store, run)
    out = tmp_path / "serving.html"
    res = CliRunner().invoke(report_command, [str(store), "--format", "html", "-o", str(out)])
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert "<h2>Serving (mindbench serve-bench)</h2>" in page and "<table class='data sortable' id='serving'" in page
    body = page.split("id='serving'", 1)[1].split("</table>", 1)[0]
    assert body.count("<tr>") == 1 + 2 and "TTFT p99 ms" in body and "goodput req/s" in body  # header + 2 levels
    for lat in ("e2e_ms", "ttft_ms"):
        fig = page.split(f"id='plot-serving-{lat}'", 1)[1].split("</figure>", 1)[0]
        assert "<svg" in fig and 'class="plot"' in fig
    # with cells beside them, the cells come first and the serving section after
    results.append(store, _rec("fp32"))
    res = CliRunner().invoke(report_command, [str(store), "--format", "html", "-o", str(out)])
    page = out.read_text()
    assert res.exit_code == 0 and page.index("Comparison table") < page.index("Serving (mindbench serve-bench)")

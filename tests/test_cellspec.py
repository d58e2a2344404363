"""CellSpec: a cell is parsed once by the planner and travels to the worker as data."""

import json

from mindbench.models.catalog import DEFAULT_MODEL
from mindbench.sweep import harness
from mindbench.sweep.cellspec import CellSpec, SuiteChoice


def test_a_suite_value_is_split_once():
    assert SuiteChoice.parse("code:easy") == SuiteChoice("code", "easy")
    assert SuiteChoice.parse("chat") == SuiteChoice("chat", None)
    assert SuiteChoice("code", "easy").text == "code:easy" and SuiteChoice("chat").text == "chat"


def test_plan_serializes_a_cellspec_and_it_round_trips_through_json():
    (cell,) = harness.plan(
        [DEFAULT_MODEL],
        ["fp32"],
        suites=["code:easy", "chat"],
        device="cpu",
        limit=4,
        code_protocol="full",
        fingerprint="fp",
    )
    # the text form the record and the key show, and the split form the worker reads
    assert cell["suites"] == ["code:easy", "chat"]
    assert cell["suite_choices"] == [{"name": "code", "subset": "easy"}, {"name": "chat", "subset": None}]
    # the key is what it was before CellSpec, so --resume still finds older stores' cells
    assert cell["cell"] == f"{DEFAULT_MODEL}|transformers|fp32|cpu|pretrained|code:easy,chat|protocol=full|4|fp"
    spec = CellSpec.from_dict(json.loads(json.dumps(cell)))
    assert spec.suites == (SuiteChoice("code", "easy"), SuiteChoice("chat")) and spec.limit == 4
    assert spec.to_dict() == cell
    # what the harness adds on the way (the bandwidth an earlier cell measured) survives the trip
    assert CellSpec.from_dict({**cell, "bandwidth_gb_s": 12.5}).bandwidth_gb_s == 12.5


def test_the_worker_reads_the_parsed_suites_not_the_text():
    (cell,) = harness.plan([DEFAULT_MODEL], ["fp32"], suites=["code:easy"], device="cpu")
    # were the text split again, this would name a suite "nonsense"
    spec = CellSpec.from_dict({**cell, "suites": ["nonsense:x"]})
    assert spec.suites == (SuiteChoice("code", "easy"),)
    # a job without suite_choices (written by hand or by an older planner) is split once, here
    old = {k: v for k, v in cell.items() if k != "suite_choices"}
    assert CellSpec.from_dict(old).suites == (SuiteChoice("code", "easy"),)


def test_random_weights_plan_no_suites():
    (cell,) = harness.plan([DEFAULT_MODEL], ["fp32"], suites=["code"], device="cpu", no_weights=True)
    assert cell["suites"] == [] and cell["suite_choices"] == [] and cell["fidelity"] is False

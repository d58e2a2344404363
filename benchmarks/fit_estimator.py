"""Refit the hardware estimator's efficiency factors on the published llama.cpp table and print its
error on the held-out devices: median and 90th-percentile |error| for decode and prefill, per
device class (mindbench.models.fit). Writes mindbench/models/data/efficiency_fit.json, the
factors `mindbench estimate` and `recommend --gpu` predict with.

    python benchmarks/fit_estimator.py            # refit, write, print the held-out table
    python benchmarks/fit_estimator.py --check    # print only (the committed factors are not changed)
    python benchmarks/fit_estimator.py --json
"""

import json
import sys

from mindbench.models import fit
from mindbench.models.perf import FIT_FILE


def main(argv: list[str]) -> None:
    rep = fit.run()
    if "--check" not in argv:
        FIT_FILE.write_text(json.dumps(rep["fit"], indent=1) + "\n")
    if "--json" in argv:
        print(json.dumps(rep, indent=1))
        return
    s = rep["fit"]["split"]
    print(
        f"published rows: {s['train_rows']} fitted on ({len(s['train_devices'])} devices), "
        f"{s['test_rows']} held out ({len(s['test_devices'])} devices: {', '.join(s['test_devices'])}); "
        f"{rep['fit']['skipped']['rows']} rows not used: {rep['fit']['skipped']['why']}"
    )
    print("\nheld-out devices (the estimator never saw them):")
    print(fit.render(rep["held_out"]))
    print("\ntraining devices (in-sample, for comparison):")
    print(fit.render(rep["train"]))
    print("\nfactors per group (backend|weight family|single or multi device):")
    for k, g in sorted(rep["fit"]["groups"].items()):
        print(
            f"  {k:24s} e_bw {g['e_bw']:.3f}  t_layer {g['t_layer_us']:6.1f} us  e_pp {g['e_pp']:.4f} "
            f"x peak^{g['pp_alpha']}  (n decode {g['n']}, prefill {g['n_pp']})"
        )
    if "--check" not in argv:
        print(f"\nwrote {FIT_FILE}")


if __name__ == "__main__":
    main(sys.argv[1:])

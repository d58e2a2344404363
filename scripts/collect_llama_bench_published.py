"""How mindbench/models/data/llama_bench_published.csv was built: the XiongjieDai/GPU-Benchmarks-on-LLM-Inference
README tables parsed from a local clone (two commits, pinned in the URLs), plus rows read by hand from the llama.cpp
PRs and benchmark issues named in each row. Kept for provenance; rerunning needs that clone at REPO."""

import csv
import re
import subprocess

REPO = "/work/.mirror/XiongjieDai+GPU-Benchmarks-on-LLM-Inference/repo"
X3 = "https://github.com/XiongjieDai/GPU-Benchmarks-on-LLM-Inference/blob/aa72e0ec86c356c41f8281c9733e9a13c3675800/README.md"
X2 = "https://github.com/XiongjieDai/GPU-Benchmarks-on-LLM-Inference/blob/a6e69a6/README.md"
DEV = {
    "3070 8GB": "RTX 3070",
    "3080 10GB": "RTX 3080",
    "3080 Ti 12GB": "RTX 3080 Ti",
    "4070 Ti 12GB": "RTX 4070 Ti",
    "4080 16GB": "RTX 4080",
    "3090 24GB": "RTX 3090",
    "4090 24GB": "RTX 4090",
    "RTX 4000 Ada 20GB": "RTX 4000 Ada",
    "RTX 5000 Ada 32GB": "RTX 5000 Ada",
    "RTX A6000 48GB": "RTX A6000",
    "RTX 6000 Ada 48GB": "RTX 6000 Ada",
    "RTX A6000 Ada 48GB": "RTX 6000 Ada",
    "A40 48GB": "A40",
    "L40S 48GB": "L40S",
    "A100 PCIe 80GB": "A100 80GB PCIe",
    "A100 SXM 80GB": "A100 80GB SXM",
    "A100 80GB": "A100 80GB PCIe?",
    "H100 PCIe 80GB": "H100 PCIe",
    "M1 7‑Core GPU 8GB": "M1",
    "M1 Max 32‑Core GPU 64GB": "M1 Max",
    "M2 Ultra 76-Core GPU 192GB": "M2 Ultra",
    "M3 Max 40‑Core GPU 64GB": "M3 Max",
    "M1 Max 24-Core GPU 32GB": "M1 Max 24-Core GPU",
    "M3 10-Core GPU 16GB": "M3",
    "M3 Max 40-Core GPU 48GB": "M3 Max",
    "RTX 4000 Ada 20GB * 2": None,
}
MODEL3 = {
    "8B Q4_K_M": ("llama-3-8b", "Q4_K_M"),
    "8B F16": ("llama-3-8b", "F16"),
    "70B Q4_K_M": ("llama-3-70b", "Q4_K_M"),
    "70B F16": ("llama-3-70b", "F16"),
}
MODEL2 = {"7B": "llama-7b", "13B": "llama-13b", "30B": "llama-30b", "65B": "llama-65b", "70B": "llama-2-70b"}
rows = []


def dev_of(label):
    label = label.strip()
    m = re.match(r"(.*?)\s*\*\s*(\d+)$", label)
    n = 1
    if m:
        label, n = m.group(1).strip(), int(m.group(2))
    return DEV.get(label), n, label


def num(s):
    s = s.strip().strip("*")
    try:
        return float(s)
    except ValueError:
        return None


# LLaMA 3, May 2024 README: tg 512 and pp 512 columns
text = subprocess.run(["git", "-C", REPO, "show", "aa72e0e:README.md"], capture_output=True, text=True).stdout
cur = None
for line in text.splitlines():
    if not line.startswith("|") or "---" in line:
        continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 10 or cells[1] not in MODEL3:
        continue
    if cells[0]:
        cur = dev_of(cells[0])
    device, n, label = cur
    model, quant = MODEL3[cells[1]]
    tg, pp = num(cells[2]), num(cells[6])
    if device is None or (tg is None and pp is None):
        continue
    backend = "metal" if device.startswith("M") and device[1].isdigit() else "cuda"
    rows.append(
        dict(
            device=device,
            n_devices=n,
            source_device=label,
            backend=backend,
            model=model,
            quant=quant,
            pp_test="pp512 (main, prompt eval)",
            pp_tok_s=pp,
            tg_test="tg512 (main, mean over 512 generated)",
            tg_tok_s=tg,
            date="2024-05",
            source=X3,
        )
    )
# LLaMA 1/2, Dec 2023 README: mean TG and mean PP of 3 runs
text = subprocess.run(["git", "-C", REPO, "show", "a6e69a6:README.md"], capture_output=True, text=True).stdout
cur = None
llama2 = False
for line in text.splitlines():
    if line.startswith("### LLaMA 2"):
        llama2 = True
    if line.startswith("## Appendix"):
        break
    if not line.startswith("|") or "---" in line:
        continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 10 or not re.match(r"\d+B_(q4_0|f16)$", cells[1]):
        continue
    if cells[0]:
        cur = dev_of(cells[0])
    device, n, label = cur
    if device is None or device.endswith("?"):
        continue
    size, q = cells[1].split("_", 1)
    tg, pp = num(cells[8]), num(cells[9])
    if tg is None and pp is None:
        continue
    backend = "metal" if device.startswith("M") and device[1].isdigit() else "cuda"
    rows.append(
        dict(
            device=device,
            n_devices=n,
            source_device=label,
            backend=backend,
            model=("llama-2-" + size.lower() if llama2 and size in ("7B", "13B") else MODEL2[size]),
            quant=q.upper(),
            pp_test="pp (main, prompt eval, mean of 3)",
            pp_tok_s=pp,
            tg_test="tg (main, mean of 3)",
            tg_tok_s=tg,
            date="2023-12",
            source=X2,
        )
    )
# Hand-read llama-bench rows (pp512 / tg128 unless the test says otherwise); each read in the URL given.
PR = "https://github.com/ggml-org/llama.cpp/pull/"
hand = [
    # device, n, source label, backend, model, quant, pp_test, pp, tg_test, tg, date, url
    (
        "RTX 4090",
        1,
        "NVIDIA GeForce RTX 4090",
        "cuda",
        "llama-7b",
        "F16",
        "pp512",
        11048.22,
        "tg128",
        61.03,
        "2024-01",
        PR + "4766",
    ),
    (
        "RTX 4090",
        1,
        "NVIDIA GeForce RTX 4090",
        "cuda",
        "llama-7b",
        "Q8_0",
        "pp512",
        7664.00,
        "tg128",
        98.13,
        "2024-01",
        PR + "4766",
    ),
    (
        "RTX 4090",
        1,
        "NVIDIA GeForce RTX 4090",
        "cuda",
        "llama-7b",
        "Q4_0",
        "pp512",
        7979.85,
        "",
        None,
        "2024-01",
        PR + "4766",
    ),
    ("Tesla P40", 1, "P40", "cuda", "llama-7b", "Q3_K_S", "pp512", 583.04, "tg128", 30.93, "2024-01", PR + "4766"),
    ("Tesla P40", 1, "P40", "cuda", "llama-7b", "Q4_0", "pp512", 912.41, "tg128", 56.79, "2024-01", PR + "4766"),
    ("Tesla P40", 1, "P40", "cuda", "llama-7b", "Q4_1", "pp512", 909.20, "tg128", 55.52, "2024-01", PR + "4766"),
    ("Tesla P40", 1, "P40", "cuda", "llama-7b", "Q4_K_S", "pp512", 850.65, "tg128", 54.23, "2024-01", PR + "4766"),
    ("Tesla P40", 1, "P40", "cuda", "llama-7b", "Q5_0", "pp512", 858.55, "tg128", 48.30, "2024-01", PR + "4766"),
    (
        "RTX 3090",
        1,
        "RTX 3090",
        "vulkan",
        "llama-3.1-8b",
        "Q4_0",
        "pp512",
        4753.45,
        "tg128",
        146.73,
        "2026-05",
        PR + "21024",
    ),
    (
        "RTX 3090",
        1,
        "RTX 3090",
        "vulkan",
        "llama-3.1-8b",
        "Q4_1",
        "pp512",
        4397.53,
        "tg128",
        138.34,
        "2026-05",
        PR + "21024",
    ),
    (
        "RTX 3090",
        1,
        "RTX 3090",
        "vulkan",
        "llama-3.1-8b",
        "Q8_0",
        "pp512",
        4830.91,
        "tg128",
        95.05,
        "2026-05",
        PR + "21024",
    ),
    (
        "RTX 3090",
        1,
        "RTX 3090",
        "vulkan",
        "gpt-oss-20b",
        "MXFP4",
        "pp512",
        4616.91,
        "tg128",
        181.32,
        "2026-05",
        PR + "21024",
    ),
    (
        "RX 6700 XT",
        1,
        "Radeon RX 6700 XT",
        "rocm",
        "mistral-7b",
        "Q4_0",
        "pp512",
        1017.28,
        "tg128",
        58.97,
        "2024-03",
        PR + "5835",
    ),
    (
        "RX 6700 XT",
        1,
        "Radeon RX 6700 XT",
        "vulkan",
        "mistral-7b",
        "Q4_0",
        "pp512",
        425.07,
        "tg128",
        41.81,
        "2024-03",
        PR + "5835",
    ),
    (
        "RX 5700 XT",
        1,
        "AMD Radeon RX 5700 XT (RADV NAVI10)",
        "vulkan",
        "llama-7b",
        "Q4_0",
        "pp512",
        468.06,
        "tg128",
        65.19,
        "2025-05",
        PR + "13324",
    ),
    (
        "RX 6800 XT",
        1,
        "AMD RX 6800 XT",
        "vulkan",
        "llama-13b",
        "Q6_K",
        "pp512",
        374.44,
        "tg128",
        34.13,
        "2024-01",
        PR + "2059",
    ),
    ("RX 6800 XT", 1, "AMD RX 6800 XT", "rocm", "llama-13b", "Q6_K", "pp512", 684.11, "", None, "2024-01", PR + "2059"),
    (
        "M3 Max",
        1,
        "Accelerate, Apple M3 Max",
        "metal",
        "llama-3.2-1b",
        "Q8_0",
        "",
        None,
        "tg128",
        169.28,
        "2024-11",
        PR + "10171",
    ),
    (
        "RX 7900 XTX",
        1,
        "RX 7900 XTX",
        "rocm",
        "llama-3.1-8b",
        "Q4_K_M",
        "pp2048",
        3189.36,
        "tg64",
        105.75,
        "2026",
        PR + "26284",
    ),
    (
        "RTX 3080",
        1,
        "NVIDIA RTX 3080",
        "cuda",
        "llama-3.1-8b",
        "Q4_K_M",
        "pp512",
        3806.89,
        "tg128",
        111.95,
        "2024-08",
        "https://github.com/dmatora/LLM-inference-speed-benchmarks/issues/12",
    ),
    (
        "RTX 4090",
        1,
        "Nvidia RTX 4090 (Intel 265K host)",
        "vulkan",
        "tinyllama-1.1b",
        "Q4_K_M",
        "",
        None,
        "tg128",
        762.37,
        "2025-12",
        "https://github.com/geerlingguy/ai-benchmarks/issues/43",
    ),
    (
        "RTX 4090",
        1,
        "Nvidia RTX 4090 (Intel 265K host)",
        "vulkan",
        "llama-3.2-3b",
        "Q4_K_M",
        "pp512",
        20323.29,
        "",
        None,
        "2025-12",
        "https://github.com/geerlingguy/ai-benchmarks/issues/43",
    ),
    (
        "RTX 2080 Ti",
        1,
        "NVIDIA GeForce RTX 2080 Ti",
        "cuda",
        "llama-2-13b",
        "Q4_K_M",
        "pp512",
        1493.64,
        "",
        None,
        "2025-12",
        "https://github.com/geerlingguy/ai-benchmarks/issues/46",
    ),
    (
        "Radeon 8060S",
        1,
        "Radeon 8060S Graphics, gfx1151",
        "rocm",
        "qwen3-30b-a3b",
        "Q4_K_M",
        "pp512",
        1208.05,
        "",
        None,
        "2025",
        "https://github.com/lhl/strix-halo-testing",
    ),
    (
        "M2 Max",
        1,
        "M2-Max (ARM_NEON CPU, mainline llama.cpp)",
        "cpu",
        "llama-3.1-8b",
        "Q5_0",
        "pp512 (8 threads)",
        26.49,
        "tg128 (8 threads)",
        20.60,
        "2024-12",
        "https://github.com/ikawrakow/ik_llama.cpp/pull/121",
    ),
    (
        "M4",
        1,
        "Mac Mini M4 (16GB)",
        "metal",
        "llama-3.1-8b",
        "Q4_K_M",
        "pp512",
        224.81,
        "tg128",
        20.87,
        "2026-03",
        "https://github.com/brand-o/normiebench/issues/3",
    ),
    (
        "M1 Max",
        1,
        "MacBook Pro M1 Max (64GB)",
        "metal",
        "llama-3.1-8b",
        "Q4_K_M",
        "pp512",
        499.58,
        "tg128",
        46.2,
        "2026-03",
        "https://github.com/brand-o/normiebench/issues/40",
    ),
    (
        "CPU DDR4 single-channel (Intel N100)",
        1,
        "Intel N100 (16GB)",
        "cpu",
        "llama-3.1-8b",
        "Q4_K_M",
        "pp512",
        6.53,
        "tg128",
        3.01,
        "2026-03",
        "https://github.com/brand-o/normiebench/issues/38",
    ),
    (
        "CPU LPDDR5 laptop",
        1,
        "Intel Core i5-1135G7 (16GB laptop)",
        "cpu",
        "llama-3.1-8b",
        "Q4_K_M",
        "pp512",
        25.52,
        "tg128",
        6.86,
        "2026-03",
        "https://github.com/brand-o/normiebench/issues/46",
    ),
]
for h in hand:
    rows.append(
        dict(
            zip(
                [
                    "device",
                    "n_devices",
                    "source_device",
                    "backend",
                    "model",
                    "quant",
                    "pp_test",
                    "pp_tok_s",
                    "tg_test",
                    "tg_tok_s",
                    "date",
                    "source",
                ],
                h,
            )
        )
    )
# Apple CPU/GPU rows from the Dec 2023 appendix (ms per token -> tokens/s)
appendix = [
    ("M2 Pro", "M2 Mini Pro (12/19/32GB) GPU", "metal", "llama-2-7b", "Q4_0", 5.90, 28.91),
    ("M2 Pro", "M2 Mini Pro (12/19/32GB) GPU", "metal", "llama-2-13b", "Q4_0", 10.29, 50.70),
    ("M2 Pro", "M2 Mini Pro (12/19/32GB) GPU", "metal", "llama-2-7b", "F16", 5.55, 92.15),
    ("M2 Pro", "M2 Mini Pro (12/19/32GB) CPU", "cpu", "llama-2-7b", "Q4_0", 16.99, 47.81),
    ("M2 Pro", "M2 Mini Pro (12/19/32GB) CPU", "cpu", "llama-2-13b", "Q4_0", 28.78, 73.38),
    ("M2 Pro", "M2 Mini Pro (12/19/32GB) CPU", "cpu", "llama-2-7b", "F16", 17.19, 117.84),
]
for dev, label, be, model, q, pp_ms, tg_ms in appendix:
    rows.append(
        dict(
            device=dev,
            n_devices=1,
            source_device=label,
            backend=be,
            model=model,
            quant=q,
            pp_test="pp (main, mean prompt eval ms/token, inverted)",
            pp_tok_s=round(1000 / pp_ms, 2),
            tg_test="tg (main, mean eval ms/token, inverted)",
            tg_tok_s=round(1000 / tg_ms, 2),
            date="2023-08",
            source=X2,
        )
    )
cols = [
    "device",
    "n_devices",
    "backend",
    "model",
    "quant",
    "pp_test",
    "pp_tok_s",
    "tg_test",
    "tg_tok_s",
    "source_device",
    "date",
    "source",
]
with open("/work/main/mindbench/models/data/llama_bench_published.csv", "w", newline="") as f:
    w = csv.DictWriter(f, cols)
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
print(
    len(rows),
    "rows;",
    len({r["device"] for r in rows}),
    "devices;",
    sum(1 for r in rows if r["n_devices"] == 1),
    "single",
)
print(__import__("collections").Counter(r["model"] for r in rows))

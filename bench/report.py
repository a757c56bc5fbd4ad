"""Tables, ratios and targets from scripts/bench's JSON results; optionally docs/BENCHMARKS.md.

    python3 bench/report.py run-info --results DIR ...   record the machine and the run's settings
    python3 bench/report.py report --results DIR [--write-docs FILE]

Standard library only, so it runs with the system Python.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# ---- the machine ------------------------------------------------------------------------------


def cpuinfo():
    """Fields of the first processor in /proc/cpuinfo, and the number of processors."""
    fields, count = {}, 0
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            count += 1
        if count == 1 and key:
            fields[key] = value.strip()
    fields["processors"] = count
    return fields


def meminfo_bytes(key):
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None


def peak_flops(cpu):
    """Peak f32 FLOP/s from /proc/cpuinfo, with the assumption spelled out.

    cores x clock x vector lanes x 2 (a fused multiply-add is two operations) x 2 FMA pipes.
    """
    flags = set(cpu.get("flags", "").split())
    family = int(cpu.get("cpu family", "0"))
    amd = cpu.get("vendor_id") == "AuthenticAMD"
    if "avx512f" in flags and not (amd and family < 26):
        lanes, width = 16, "512-bit (AVX-512)"
    elif "avx512f" in flags:
        # Zen 4 (family 25) runs AVX-512 as two 256-bit halves: the throughput of 8 lanes.
        lanes, width = 8, "256-bit datapath (AVX-512 executed as two halves)"
    elif "avx2" in flags and "fma" in flags:
        lanes, width = 8, "256-bit (AVX2 + FMA)"
    else:
        lanes, width = 4, "128-bit (SSE)"
    cores = cpu["processors"]
    clock = float(cpu.get("cpu mhz", cpu.get("cpu MHz", "0"))) * 1e6
    value = cores * clock * lanes * 2 * 2
    assumption = (f"{cores} cores x {clock / 1e9:.2f} GHz (cpu MHz in /proc/cpuinfo; no boost "
                  f"assumed) x {lanes} f32 lanes ({width}) x 2 FMA pipes per core x 2 FLOP "
                  f"per FMA = {value / 1e9:.0f} GFLOP/s")
    return value, assumption


def machine():
    cpu = cpuinfo()
    flags = set(cpu.get("flags", "").split())
    return {
        "cpu": cpu.get("model name", "unknown"),
        "vendor": cpu.get("vendor_id"),
        "family": int(cpu.get("cpu family", "0")),
        "model": int(cpu.get("model", "0")),
        "cores": cpu["processors"],
        "mhz": float(cpu.get("cpu MHz", "0")),
        "simd": sorted(f for f in flags if f in {"avx", "avx2", "fma", "avx512f", "avx512_bf16"}),
        "memory_bytes": meminfo_bytes("MemTotal"),
        "kernel": platform.release(),
        "peak_flops": peak_flops(cpu)[0],
        "peak_assumption": peak_flops(cpu)[1],
    }


def version(command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=ROOT)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def run_info(args):
    commit = version(["git", "rev-parse", "--short", "HEAD"])
    dirty = version(["git", "status", "--porcelain", "--untracked-files=no"])
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": args.invocation,
        "steps": args.steps, "repeats": args.repeats, "moves": args.moves,
        "niced": args.nice > 0,
        "load_average_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "commit": f"{commit}{' (uncommitted changes)' if dirty else ''}",
        "machine": machine(),
        "versions": {
            "catgan": version(["target/release/catgan", "--version"]),
            "chromium": version([os.environ.get("CHROMIUM", "/usr/bin/chromium"), "--version"]),
            "node": version(["node", "--version"]),
            "python": platform.python_version(),
        },
    }
    Path(args.results, "run.json").write_text(json.dumps(info, indent=1))
    load = float(info["load_average_at_start"][0])
    if load > 0.5:
        print(f"warning: load average {load} at start: other work is using the CPU, so these "
              "numbers will be low and noisy (the report says so)")


# ---- results ----------------------------------------------------------------------------------


class Results:
    """The JSON files of one results folder, by name (without .json)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.data = {}
        for path in sorted(self.folder.glob("*.json")):
            try:
                self.data[path.stem] = json.loads(path.read_text())
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}: not valid JSON ({e}); rerun that benchmark")

    def get(self, name):
        return self.data.get(name)

    def newest(self, *names):
        """The most recently written of several files that measure the same thing."""
        present = [n for n in names if n in self.data]
        if not present:
            return None
        return self.data[max(present, key=lambda n: (self.folder / f"{n}.json").stat().st_mtime)]


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def mb(n):
    return f"{n / 1e6:,.1f} MB" if n is not None else "-"


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


# ---- training ---------------------------------------------------------------------------------

# The DCGAN of bench/train_torch.py and catgan's model/src/dcgan.rs, layer by layer:
# (input side, output side, input channels, output channels); every kernel is 4x4.
GENERATOR = [(1, 4, 128, 512), (4, 8, 512, 256), (8, 16, 256, 128), (16, 32, 128, 64),
             (32, 64, 64, 3)]
DISCRIMINATOR = [(64, 32, 3, 64), (32, 16, 64, 128), (16, 8, 128, 256), (8, 4, 256, 512),
                 (4, 1, 512, 1)]


def forward_macs():
    """Multiply-accumulates of one image's forward pass through G and through D."""
    # A transposed convolution multiplies every input pixel by the whole kernel; a convolution
    # computes every output pixel from a whole kernel window.
    generator = sum(i * i * cin * cout * 16 for i, _, cin, cout in GENERATOR)
    discriminator = sum(o * o * cin * cout * 16 for _, o, cin, cout in DISCRIMINATOR)
    return generator, discriminator


def flops_per_image():
    g, d = forward_macs()
    # Backward costs two forwards (gradients for inputs and for weights). Per image of a step:
    # G forward (1G); D step: D forward and backward on a real and a fake (2 x 3D); G step:
    # D forward (1D) and D's input gradients only (1D), then G backward (2G). 3G + 8D MACs.
    macs = 3 * g + 8 * d
    return 2 * macs, g, d


TRAIN_ROWS = [
    ("train-catgan-dcgan", "catgan (Burn Flex)"),
    ("train-pytorch-1", "PyTorch"),
    ("train-pytorch-2", "PyTorch"),
    ("train-tensorflow", "TensorFlow"),
    ("train-tensorflow-xla", "TensorFlow"),
]


def train_section(results, peak):
    catgan = results.get("train-catgan-dcgan")
    if not catgan:
        return [], {}
    flops, g, d = flops_per_image()
    rows, comparators = [], {}
    for name, stack in TRAIN_ROWS:
        r = results.get(name)
        if not r:
            continue
        median = r["images_per_second_median"]
        variant = r.get("variant") or f"{r['device']}, all {os.cpu_count()} cores"
        version = r.get("version") or (results.get("run") or {}).get("versions", {}).get("catgan")
        rows.append([
            f"{stack} {version.split()[-1] if version else ''}".strip(), variant,
            f"{median:.1f}", f"{r['images_per_second_best']:.1f}",
            f"{median * flops / 1e9:.0f}", f"{100 * median * flops / peak:.0f}%",
            "-" if name == "train-catgan-dcgan"
            else ratio(catgan["images_per_second_median"], median),
        ])
        if name != "train-catgan-dcgan":
            comparators[f"{stack} ({variant})"] = median
    lines = ["### Training throughput: DCGAN, batch 64, full step with EMA", ""]
    lines += table(["stack", "variant", "images/s (median)", "images/s (best)",
                    "GFLOP/s (median)", "of peak", "catgan ÷ this"], rows)
    lines += ["", "catgan's other architectures (no comparator):", ""]
    others = []
    for arch in ("resnet", "progan"):
        r = results.get(f"train-catgan-{arch}")
        if r:
            others.append([arch, f"{r['images_per_second_median']:.1f}",
                           f"{r['images_per_second_best']:.1f}"])
    lines += table(["catgan --arch", "images/s (median)", "images/s (best)"], others)
    lines += ["", f"Work per training image: {flops / 1e9:.2f} GFLOP. Forward multiply-accumulates "
              f"(MACs) per image are {g / 1e6:.1f} M for the generator and {d / 1e6:.1f} M for the "
              "discriminator (convolutions only; batch norm, activations, loss, Adam and EMA are "
              "under 1% and left out). One step per image needs G forward (1G), the "
              "discriminator's forward and backward on a real and a fake (6D, backward counted as "
              "two forwards: input and weight gradients), and for the generator's update D "
              "forward plus D's input gradients (2D) and G backward (2G): 3G + 8D MACs, 2 FLOP "
              "per MAC. Eager frameworks (catgan, PyTorch) also compute D's weight gradients in "
              "the generator update (3G + 9D, 12% more work) that TensorFlow's graph prunes; the "
              "table credits everyone with the same 3G + 8D."]
    return lines, {"catgan": catgan["images_per_second_median"], "comparators": comparators}


# ---- the page ---------------------------------------------------------------------------------


def page_section(results):
    page = results.get("page")
    if not page:
        return [], {}
    pages = [p for p in page["pages"] if not p.get("skipped")]
    tfjs = [p for p in pages if p["stack"] == "tfjs" and "one_cat_ms" in p]
    rows = []
    for p in pages:
        if "error" in p:
            rows.append([p["label"], "failed", p["error"], "", "", ""])
            continue
        if "one_cat_ms" not in p:
            continue
        agreement = p.get("agreement")
        rows.append([
            p["label"], p["backend"], f"{p['one_cat_ms']['median']:.1f}",
            f"{p['grid_of_16_ms']['median']:.0f}",
            f"{p['navigation_to_first_cats_ms']:,}",
            f"{agreement['max_diff']}/255" if agreement else "-",
        ])
    lines = ["### Generating cats in headless Chromium (same weights)", ""]
    lines += table(["page", "backend", "one cat, ms (median)", "grid of 16, ms (median)",
                    "navigation to first cats, ms", "largest pixel difference from catgan sample"],
                   rows)
    summary = {}
    by = {(p["stack"], p["path"]): p for p in pages if "one_cat_ms" in p}
    if tfjs:
        for measure in ("one_cat_ms", "grid_of_16_ms"):
            best = min(tfjs, key=lambda p: p[measure]["median"])
            summary[f"best_tfjs_{measure}"] = (best["path"], best[measure]["median"])
            for path in ("webgpu", "cpu"):
                mine = by.get(("catgan", path))
                if mine:
                    summary[f"catgan_{path}_{measure}"] = mine[measure]["median"]
        wasm = by.get(("tfjs", "wasm"))
        if wasm:
            summary["tfjs_wasm_one_cat_ms"] = wasm["one_cat_ms"]["median"]
            summary["tfjs_wasm_grid_of_16_ms"] = wasm["grid_of_16_ms"]["median"]
    lines += ["", "Ratios (catgan's time ÷ TF.js's; below 1 means catgan is faster):", ""]
    ratio_rows = []
    for measure, label in (("one_cat_ms", "one cat"), ("grid_of_16_ms", "grid of 16")):
        if f"best_tfjs_{measure}" not in summary:
            continue
        best_path, best = summary[f"best_tfjs_{measure}"]
        wasm = summary.get(f"tfjs_wasm_{measure}")
        tfjs_webgpu = by.get(("tfjs", "webgpu"))
        ratio_rows.append([
            label, f"{best_path} ({best:.1f} ms)",
            ratio(summary.get(f"catgan_webgpu_{measure}"), best),
            ratio(summary.get(f"catgan_webgpu_{measure}"),
                  tfjs_webgpu and tfjs_webgpu[measure]["median"]),
            ratio(summary.get(f"catgan_cpu_{measure}"), best),
            ratio(summary.get(f"catgan_cpu_{measure}"), wasm),
        ])
    lines += table(["", "fastest TF.js backend", "catgan WebGPU ÷ fastest TF.js",
                    "catgan WebGPU ÷ TF.js webgpu", "catgan CPU ÷ fastest TF.js",
                    "catgan CPU ÷ TF.js wasm"], ratio_rows)
    latent = next((p["latent_agreement"] for p in pages if "latent_agreement" in p), None)
    if latent:
        lines += ["", f"The TF.js page computes latents in JavaScript (bench/tfjs/dcgan.js); of "
                  f"{latent['compared']:,} latent values for 100 seeds, {latent['differing']} "
                  "differ from the wasm engine's `latent(seed, size)`."]
    adapter = next((p.get("adapter") for p in pages if p.get("adapter")), None)
    if adapter:
        lines += ["", f"WebGPU adapter in headless Chromium: vendor `{adapter.get('vendor')}`, "
                  f"architecture `{adapter.get('architecture')}`: SwiftShader, a software "
                  "implementation on the CPU. WebGL there is SwiftShader too. These numbers say "
                  "nothing about a real GPU."]
    return lines, summary


def shipped_precision():
    """Storage precision of the page's first model, from assets/manifest.json."""
    try:
        manifest = json.loads((ROOT / "assets" / "manifest.json").read_text())
        return manifest["models"][0]["precision"]
    except (OSError, ValueError, KeyError, IndexError):
        return "of unknown precision"


def payload_section(results):
    payload = results.get("payload")
    if not payload:
        return [], {}
    pages = [p for p in payload["pages"] if not p.get("skipped") and "download" in p]
    rows = []
    for p in pages:
        files = ", ".join(f"{Path(f['url']).name} {mb(f['raw'])}" for f in
                          sorted(p["download"]["files"], key=lambda f: -f["raw"])[:3])
        rows.append([p["label"], mb(p["download"]["raw"]), mb(p["download"]["gzip"]),
                     f"{p['navigation_to_first_cats_ms']:,}", files])
    full = payload.get("tfjs_full_bundle_webgl")
    if full:
        rows.append(["tfjs full bundle (tf.min.js) + weights, not loaded", mb(full["raw"]),
                     mb(full["gzip"]), "-", "tf.es2017.min.js + dcgan.safetensors"])
    lines = ["### Download before the first cats", ""]
    lines += table(["page", "raw", "gzip -9", "navigation to first cats, ms",
                    "largest files"], rows)
    # The page as visitors get it ('auto'), where the run measured it.
    catgan = next((p for p in pages if p["stack"] == "catgan" and p["path"] == "auto"),
                  next((p for p in pages if p["stack"] == "catgan"), None))
    tfjs = [p for p in pages if p["stack"] == "tfjs"]
    summary = {}
    if catgan and tfjs:
        smallest = min(tfjs, key=lambda p: p["download"]["raw"])
        summary = {"catgan_raw": catgan["download"]["raw"],
                   "catgan_gzip": catgan["download"]["gzip"],
                   "tfjs_raw": smallest["download"]["raw"],
                   "tfjs_gzip": smallest["download"]["gzip"],
                   "tfjs_label": smallest["label"]}
        parts = {}
        for f in catgan["download"]["files"]:
            kind = ("wasm" if f["url"].endswith(".wasm") else "weights" if "assets/" in f["url"]
                    and not f["url"].endswith(".json") else "JS, HTML, CSS, manifest")
            parts[kind] = [a + b for a, b in zip(parts.get(kind, [0, 0]), [f["raw"], f["gzip"]])]
        lines += ["", "catgan's page: " + "; ".join(f"{k} {mb(v[0])} ({mb(v[1])} gzipped)"
                                                     for k, v in parts.items()) + ".",
                  "", f"catgan ÷ the smallest TF.js page ({smallest['label']}): "
                  f"{ratio(summary['catgan_raw'], summary['tfjs_raw'])} raw, "
                  f"{ratio(summary['catgan_gzip'], summary['tfjs_gzip'])} gzipped. The TF.js "
                  "pages load tfjs-core plus the one backend package they use and f32 weights "
                  f"(catgan's are {shipped_precision()}; the TF.js weights are the same values "
                  "in f32, which is why they gzip well). catgan's page as visitors get it "
                  "(`catgan auto`) "
                  "downloads only its CPU-only engine before the first cats; it fetches the "
                  "WebGPU engine afterwards, and only where a hardware GPU adapter is granted. "
                  "Both engines are built by scripts/build-wasm without wasm-opt."]
    return lines, summary


def memory_section(results):
    lines, summary = ["### Memory", ""], {}
    rows = []
    for arch in ("dcgan", "resnet", "progan"):
        r = results.newest(f"memory-catgan-{arch}", f"train-catgan-{arch}")
        if r:
            rows.append([f"catgan bench --arch {arch}", mb(r["peak_rss_bytes"])])
    for name, label in (("train-pytorch-2", "PyTorch DCGAN (2 threads)"),
                        ("train-tensorflow", "TensorFlow DCGAN (tf.function)"),
                        ("train-tensorflow-xla", "TensorFlow DCGAN (XLA)")):
        r = results.get(name)
        if r and r.get("peak_rss_bytes"):
            rows.append([label, mb(r["peak_rss_bytes"])])
    if rows:
        lines += table(["training at batch 64", "peak resident memory"], rows) + [""]
    page = results.get("memory")
    if page and "samples" in page:
        samples = page["samples"]
        lines += [f"catgan's page on the CPU path (wasm), {page['moves']} slider moves, each "
                  "waited for until the cat was redrawn:", ""]
        lines += table(["slider moves", "wasm memory", "JS heap (page, after a forced GC)"],
                       [[s["moves"], mb(s["wasm_bytes"]), mb(s["js_heap_bytes"])] for s in samples])
        summary = {"growth": page["wasm_growth_bytes"], "moves": page["moves"],
                   "after_load": page["wasm_bytes_after_load"]}
    elif page:
        lines += [f"Page memory: failed ({page.get('error')})."]
    return lines, summary


# ---- targets and the document -----------------------------------------------------------------


def targets(train, page, payload, memory):
    out = []

    def line(met, text):
        out.append(f"- {'**met**' if met else '**not met**'}: {text}")

    if train.get("comparators"):
        best_name, best = max(train["comparators"].items(), key=lambda kv: kv[1])
        line(train["catgan"] >= best, f"catgan trains at {train['catgan']:.1f} images/s, the "
             f"fastest comparator, {best_name}, at {best:.1f} "
             f"(ratio {train['catgan'] / best:.2f}).")
    if "catgan_webgpu_one_cat_ms" in page:
        path, best = page["best_tfjs_one_cat_ms"]
        mine = page["catgan_webgpu_one_cat_ms"]
        line(mine <= best, f"one cat on catgan's WebGPU path: {mine:.1f} ms; TF.js's fastest "
             f"backend ({path}): {best:.1f} ms (ratio {mine / best:.2f}).")
    if "catgan_cpu_one_cat_ms" in page and "tfjs_wasm_one_cat_ms" in page:
        mine, wasm = page["catgan_cpu_one_cat_ms"], page["tfjs_wasm_one_cat_ms"]
        line(mine <= wasm, f"one cat on catgan's CPU fallback: {mine:.1f} ms; tfjs-backend-wasm: "
             f"{wasm:.1f} ms (ratio {mine / wasm:.2f}).")
    if payload:
        r = payload["catgan_raw"] / payload["tfjs_raw"]
        g = payload["catgan_gzip"] / payload["tfjs_gzip"]
        line(r <= 1 / 3 and g <= 1 / 3, "catgan's first-cat download is "
             f"{mb(payload['catgan_raw'])} raw / {mb(payload['catgan_gzip'])} gzipped, "
             f"{r:.2f} / {g:.2f} times the smallest TF.js page's ({payload['tfjs_label']}); "
             "the target is at most 0.33.")
    if memory:
        line(memory["growth"] == 0, f"the page's wasm memory grew by {memory['growth']:,} bytes "
             f"over {memory['moves']} slider moves (from {mb(memory['after_load'])} after load).")
    return out


def setup_lines(results):
    rows = []
    for name, what in (("python", "Python venv: torch, tensorflow-cpu (PyPI)"),
                       ("npm", "npm: @tensorflow/tfjs*, playwright-core")):
        r = results.get(f"setup-{name}")
        if r:
            rows.append([what, f"`{r['folder']}`", f"{r['bytes'] / 1e9:.2f} GB",
                         f"{r['install_seconds']} s"])
    if not rows:
        return []
    return ["### Comparator installs", ""] + table(["what", "where", "size", "install time"],
                                                   rows) + [""]


def commands(results):
    run = results.get("run") or {}
    measured = sorted({r["command"] for name, r in results.data.items()
                       if name != "run" and isinstance(r, dict) and "command" in r})
    return [run.get("command", "scripts/bench"), "# which ran:"] + measured + [
        "target/release/catgan tensors --model dcgan --assets target/site/assets "
        "--out target/bench/work/dcgan.safetensors",
        "target/release/catgan sample --model dcgan --seed S --count 1 --device cpu "
        "--assets target/site/assets --out target/bench/work/native-S.png  # S = 0, 7, 4242"]


def document(results, sections, goals):
    run = results.get("run") or {}
    m = run.get("machine") or machine()
    v = run.get("versions", {})
    lines = [
        "# Benchmarks", "",
        "catgan against the stacks people would otherwise use, measured on one machine in one "
        "run by `scripts/bench` (rerun it to refresh this page: `scripts/bench --write-docs`).", "",
        f"- **Date**: {run.get('date', '?')}, commit {run.get('commit', '?')}; run as "
        f"`{run.get('command', '?')}` with {run.get('steps')} timed training steps, "
        f"{run.get('repeats')} timed generations per page and backend, {run.get('moves')} slider "
        "moves.",
        f"- **Machine**: {m['cpu']} (family {m['family']}, model {m['model']}), {m['cores']} cores "
        f"at {m['mhz']:.0f} MHz, {m['memory_bytes'] / 2**30:.1f} GiB memory, SIMD "
        f"{', '.join(m['simd'])}, Linux {m['kernel']}, no GPU.",
        f"- **Peak**: {m['peak_assumption']}.",
        f"- **Software**: {v.get('catgan')}, {v.get('chromium')}, Node {v.get('node')}, "
        f"Python {v.get('python')}; comparator versions are in the tables.",
    ]
    load = run.get("load_average_at_start")
    if load and float(load[0]) > 0.5 or run.get("niced"):
        lines.append(f"- **Caution**: the load average was {' '.join(load)} when the run started"
                     f"{' and it ran under nice -n 19' if run.get('niced') else ''}: other work "
                     "shared the CPU, so absolute numbers are low and noisy; only ratios taken in "
                     "this same run mean anything.")
    lines += ["", "## Targets", ""] + goals + [""]
    for section in sections:
        if section:
            lines += [""] + section + [""]
    lines += setup_lines(results)
    lines += ["### Exact commands", "", "```sh"] + commands(results) + ["```", "", NOTES]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


NOTES = """### How each number is taken

- **Training**: every stack runs the same DCGAN (latent 128, generator 512-256-128-64-3 with
  batch norm, discriminator 64-128-256-512-1, N(0, 0.02) initialisation), the non-saturating
  logistic loss, Adam (2e-4, betas 0.5/0.999, eps 1e-8) for both networks and an EMA of the
  generator (beta 0.99), on random images and latents. One step: generator forward; discriminator
  update on the real batch and the detached fakes; generator update through the updated
  discriminator; EMA. Each step is timed alone after warm-up (2 steps for catgan, 3 for the
  others, which also covers TensorFlow's tracing); median and best images/s are reported.
  catgan's time also covers making its batch from bytes; the others reuse two random tensors.
  PyTorch runs eager (NCHW, oneDNN); TensorFlow runs the whole step as one `tf.function` (NHWC),
  once plain and once compiled with XLA. catgan uses Burn's Flex CPU backend on all cores.
- **Page**: a static server on 127.0.0.1 serves the built site and a TF.js page
  (`bench/tfjs/`) that builds the same generator from `catgan tensors` output (inference-mode
  batch norm). Each backend gets a fresh headless Chromium. One cat and a grid of 16 are timed
  from latents to RGBA bytes read back, after the first grid (warm-up): catgan's numbers are its
  worker's (`editorMs`, `gridMs`, a slider step and "New cats"), TF.js's are taken the same way
  in its page. The TF.js page is cross-origin isolated so tfjs-backend-wasm may use threads; it
  sizes its pool from `navigator.hardwareConcurrency / 2`, which is one thread here.
- **Agreement**: for seeds 0, 7 and 4242, each page's cat (TF.js: its generated pixels;
  catgan: the editor canvas of `#model=dcgan&seed=S&cat=0`) is compared channel by channel with
  `catgan sample --device cpu` for the same seed; the table gives the largest difference.
- **Payload**: the bytes the server actually sent from navigation until the first grid was
  drawn, and gzip -9 sizes of the same files (what a compressing server would send).
- **Memory**: peak resident set of the `catgan bench` process (kernel accounting via wait4) and of
  the Python processes (getrusage); the page's wasm linear memory (`window.catgan.memory()`) and
  main-thread JS heap (after a forced garbage collection) every 100 slider moves on the CPU
  path; the worker's JS heap and, on WebGPU, GPU buffers are not measured."""


def report(args):
    results = Results(args.results)
    run = results.get("run") or {}
    peak = (run.get("machine") or machine())["peak_flops"]
    train_lines, train = train_section(results, peak)
    page_lines, page = page_section(results)
    payload_lines, payload = payload_section(results)
    memory_lines, memory = memory_section(results)
    goals = targets(train, page, payload, memory)
    text = document(results, [train_lines, page_lines, payload_lines, memory_lines], goals)
    print(text)
    if args.write_docs:
        Path(args.write_docs).write_text(text)
        print(f"wrote {args.write_docs}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("run-info", help="record the machine and this run's settings")
    info.add_argument("--results", required=True)
    info.add_argument("--steps", type=int)
    info.add_argument("--repeats", type=int)
    info.add_argument("--moves", type=int)
    info.add_argument("--nice", type=int, default=0)
    info.add_argument("--invocation", default="scripts/bench")
    rep = sub.add_parser("report", help="print the tables; --write-docs FILE writes them too")
    rep.add_argument("--results", required=True)
    rep.add_argument("--write-docs")
    args = parser.parse_args()
    run_info(args) if args.command == "run-info" else report(args)


if __name__ == "__main__":
    main()

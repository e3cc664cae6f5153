"""Turns benchmark runs (bench/results/<date>/*.jsonl) into the generated part of BENCHMARKS.md
(between the bench:start / bench:end markers; the hand-written parts stay). Several runs may be
given (e.g. the full run and a later `bench/run.sh q8` section): each gets its sections under
its own heading with its own machine, since figures from different machines are not compared.

  python bench/report.py bench/results/2026-11-26-threads [bench/results/2026-12-04-q8 ...]
  (BENCHMARKS=path names another target file)
"""
import json, os, pathlib, re, sys

runs = [pathlib.Path(a) for a in sys.argv[1:]]
target = pathlib.Path(os.environ.get("BENCHMARKS", "BENCHMARKS.md"))


def rows(name):
    p = run / f"{name}.jsonl"
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []


def cpu():
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from machine import this_machine
    return this_machine()


def node_major(host):
    """'Node v24.22.3' -> 24 (0 for anything else)."""
    m = re.match(r"Node v(\d+)", host)
    return int(m.group(1)) if m else 0


def ms(x):
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def verdict(ratio, goal):
    return "✅" if ratio <= goal else "❌"


def pick(rs, **kw):
    for r in rs:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


out = []
for run in runs:
    meta = (run / "machine.txt").read_text().strip() if (run / "machine.txt").exists() else cpu()
    if len(runs) > 1:
        out.append(f"#### Run `{run.name}`\n")
    out.append(f"Run `{run.name}` on {meta}. Medians of repeated runs (p10–p90 in the JSON lines under `{run}`); "
               "each ratio is ours ÷ the peer's, measured in the same run. Lower is better.\n")

    SHAPES = [(1, 16), (1, 128), (1, 512), (8, 128)]
    OURS_WASM, TJS = "bert-tasks wasm", "transformers.js wasm (onnxruntime-web)"
    for fname, title in (("browser", "headless Chromium"), ("node", "Node")):
        flagged = [r for r in rows(fname) if r.get("node_flags")]
        rs = [r for r in rows(fname) if not r.get("node_flags") and r.get("dtype", "f32") == "f32"]
        if not rs:
            continue
        host = rs[0]["host"]
        allt = max(r.get("threads", 1) for r in rs)
        out.append(f"### 1. wasm inference in {title} ({host}), text in → probabilities out\n")
        out.append(f"| task | batch×tokens | bert-tasks 1 thread ms | transformers.js 1 thread ms | ratio "
                   f"| bert-tasks {allt} threads ms | transformers.js {allt} threads ms | ratio |")
        out.append("|---|---|---|---|---|---|---|---|")
        cell = lambda r: ms(r["median_ms"]) if r else "–"
        for task in ("classify", "tag"):
            for b, t in SHAPES:
                pair = []
                for th in (1, allt):
                    o = pick(rs, engine=OURS_WASM, task=task, batch=b, tokens=t, threads=th)
                    p = pick(rs, engine=TJS, task=task, batch=b, tokens=t, threads=th)
                    ratio = "–"
                    if o and p:
                        r = o["median_ms"] / p["median_ms"]
                        ratio = f"{r:.2f}" + (f" {verdict(r, 0.7)}" if (b, t) == (1, 128) else "")
                    pair.append(f"{cell(o)} | {cell(p)} | {ratio}")
                out.append(f"| {task} | {b}×{t} | {pair[0]} | {pair[1]} |")
        first = [r for r in rs if r["engine"] in (OURS_WASM, TJS) and r.get("first_ms") and (r["batch"], r["tokens"]) == (1, 16)]
        if first:
            out.append("\nFirst call (cold: before V8 has optimised the module; the rows above are warm), classify 1×16: " +
                       ", ".join(f"{'bert-tasks' if r['engine'] == OURS_WASM else 'transformers.js'} {r['threads']} thread{'s' if r['threads'] > 1 else ''} {ms(r['first_ms'])} ms"
                                 for r in first if r["task"] == "classify") + ".")
        if flagged:
            cells = []
            for r in flagged:
                p = pick(rs, engine=TJS, task=r["task"], batch=r["batch"], tokens=r["tokens"], threads=r["threads"])
                if (r["batch"], r["tokens"]) == (1, 128) and p:
                    cells.append(f"{r['task']} 1×128, {r['threads']} thread{'s' if r['threads'] > 1 else ''} ({r.get('build')}): "
                                 f"{ms(r['median_ms'])} ms, {r['median_ms'] / p['median_ms']:.2f} × transformers.js")
            out.append(f"\nWith `{flagged[0]['node_flags']}` (relaxed SIMD, on by default from Node 22), ours: " + "; ".join(cells) + ".")
        nat = [r for r in rs if r["engine"].startswith("transformers.js onnxruntime-node")]
        if nat:
            out.append(f"\nFor scale, transformers.js's Node default (onnxruntime-node, native, {nat[0]['threads']} threads): " +
                       ", ".join(f"{r['task']} {r['batch']}×{r['tokens']} {ms(r['median_ms'])} ms" for r in nat if r["task"] == "classify") + ".")
        out.append("")

    rs = rows("native")
    if rs:
        out.append("### 2. native CPU inference vs PyTorch (transformers, eager), same threads\n")
        out.append("| task | batch×tokens | threads | bert-tasks ms | PyTorch ms | ratio (goal ≤ 0.8) |")
        out.append("|---|---|---|---|---|---|")
        for task in ("classify", "tag"):
            for th in sorted({r["threads"] for r in rs}):
                for b, t in SHAPES:
                    o = pick(rs, engine="bert-tasks native", task=task, batch=b, tokens=t, threads=th)
                    p = pick(rs, engine="PyTorch", task=task, batch=b, tokens=t, threads=th)
                    if o and p:
                        r = o["median_ms"] / p["median_ms"]
                        out.append(f"| {task} | {b}×{t} | {th} | {ms(o['median_ms'])} | {ms(p['median_ms'])} | {r:.2f} {verdict(r, 0.8)} |")
        out.append("")

    for fname, title in (("train", "CPU"), ("gpu", "GPU")):
        rs = [r for r in rows(fname) if r.get("task") == "train_step"]
        if not rs:
            continue
        pairs = []
        for th in sorted({r["threads"] for r in rs}):
            o = pick(rs, engine="bert-tasks native", threads=th)
            p = pick(rs, engine="PyTorch", threads=th)
            if o and p:
                pairs.append((o, p))
        if not pairs:
            continue
        extra = f" ({(run / 'gpu.txt').read_text().strip()})" if fname == "gpu" and (run / "gpu.txt").exists() else ""
        o0 = pairs[0][0]
        out.append(f"### 3. training step on {title}{extra}: forward + backward + clipping + AdamW, batch {o0['batch']}×{o0['tokens']}\n")
        out.append("| engine | device | threads | ms / step | ratio (goal ≤ 1) |")
        out.append("|---|---|---|---|---|")
        for o, p in pairs:
            r = o["median_ms"] / p["median_ms"]
            out.append(f"| bert-tasks | {o['device']} | {o['threads']} | {ms(o['median_ms'])} | {r:.2f} {verdict(r, 1.0)} |")
            out.append(f"| PyTorch | {p['device']} | {p['threads']} | {ms(p['median_ms'])} | 1 |")
        out.append("")

    rs = [r for r in rows("browser") if r.get("task") == "load"]
    if rs:
        out.append("### 4. load to ready in Chromium (classify model, f32, no cache), median of 3\n")
        out.append("| engine | bytes | raw fetch ms | load → usable ms | ratio (goal ≤ 1.5) | wasm memory after load | peak (after a 512-token call) |")
        out.append("|---|---|---|---|---|---|---|")
        for r in rs:
            mem = r.get("memory") or {}
            mb = lambda k: f"{mem[k] / 2**20:.0f} MiB" if k in mem else "–"
            ok = f" {verdict(r['ratio'], 1.5)}" if r["engine"] == OURS_WASM else ""
            out.append(f"| {r['engine']} | {r['bytes'] / 2**20:.1f} MiB | {ms(r['raw_fetch_ms'])} | {ms(r['load_ms'])} | {r['ratio']:.2f}{ok} | {mb('after_load_bytes')} | {mb('peak_bytes')} |")
        out.append("")

    rs = rows("size")
    if rs:
        # Ours: the single-threaded build; the threaded one (threads/…, when built) is compared too.
        mine = [r for r in rs if r["file"].endswith("bert_tasks_bg.wasm")]
        name = lambda r: r["file"].split("/")[0] if "/" in r["file"] else "baseline"
        out.append("### 5. size of the .wasm (ratios: ours ÷ theirs, gzip; goal ≤ 0.33)\n")
        out.append("| file | raw | gzip -9 | " + " | ".join(f"{name(r)} ÷ it" for r in mine) + " |")
        out.append("|---|---|---|" + "---|" * len(mine))
        for r in rs:
            ratios = ["–" if r in mine else f"{o['gzip_bytes'] / r['gzip_bytes']:.2f} {verdict(o['gzip_bytes'] / r['gzip_bytes'], 0.33)}" for o in mine]
            out.append(f"| {r['file']} | {r['bytes'] / 2**20:.2f} MiB | {r['gzip_bytes'] / 2**20:.2f} MiB | " + " | ".join(ratios) + " |")
        out.append("")

    rs = rows("q8")
    if rs:
        out.append("### 6. q8 (int8 weights and int8 kernels) against transformers.js's q8 and q4, text in → probabilities out\n")
        allt = max(r.get("threads", 1) for r in rs if "threads" in r)
        # One table per host: Chromium, then each Node (the system's, 20 here, and the current
        # LTS since bench/run.sh runs both). The Node goal is for Node 20, which has no
        # relaxed SIMD; on Node 22+ the package runs its relaxed builds, like Chromium.
        hosts = sorted({r["host"] for r in rs if "host" in r}, key=lambda h: (not h.startswith("Chromium"), node_major(h)))
        for host in hosts:
            hr = [r for r in rs if r.get("host") == host]
            goal = 0.7 if host.startswith("Chromium") else 0.8 if node_major(host) < 22 else None
            out.append(f"{host} (goal: ours q8 ≤ {goal} × transformers.js q8):\n" if goal else
                       f"{host} (relaxed SIMD on by default; for comparison, no goal of its own):\n")
            out.append(f"| task | batch×tokens | ours q8 1 thread | tjs q8 1 thread | ratio | tjs q4 1 thread | ours q8 {allt} threads | tjs q8 {allt} threads | ratio | tjs q4 {allt} threads |")
            out.append("|---|---|---|---|---|---|---|---|---|---|")
            cell = lambda r: ms(r["median_ms"]) if r else "–"
            for task in ("classify", "tag"):
                for b, t in SHAPES:
                    cells = []
                    for th in (1, allt):
                        o = pick(hr, engine=OURS_WASM, task=task, batch=b, tokens=t, threads=th, dtype="q8")
                        p = pick(hr, engine=TJS, task=task, batch=b, tokens=t, threads=th, dtype="q8")
                        p4 = pick(hr, engine=TJS, task=task, batch=b, tokens=t, threads=th, dtype="q4")
                        ratio = f"{o['median_ms'] / p['median_ms']:.2f}" + (f" {verdict(o['median_ms'] / p['median_ms'], goal)}" if goal and (b, t) == (1, 128) else "") if o and p else "–"
                        cells.append(f"{cell(o)} | {cell(p)} | {ratio} | {cell(p4)}")
                    out.append(f"| {task} | {b}×{t} | {cells[0]} | {cells[1]} |")
            out.append("")
        nat = [r for r in rs if r.get("engine") == "bert-tasks native"]
        if nat:
            out.append("Native (goal: q8 ≤ 0.6 × our f32, same run; q4 runs the same int8 kernels):\n")
            out.append("| task | batch×tokens | threads | f32 ms | q8 ms | ratio | q4 ms |")
            out.append("|---|---|---|---|---|---|---|")
            for task in ("classify", "tag"):
                for th in sorted({r["threads"] for r in nat}):
                    for b, t in SHAPES:
                        f = pick(nat, task=task, batch=b, tokens=t, threads=th, dtype="f32")
                        q = pick(nat, task=task, batch=b, tokens=t, threads=th, dtype="q8")
                        q4 = pick(nat, task=task, batch=b, tokens=t, threads=th, dtype="q4")
                        if f and q:
                            r = q["median_ms"] / f["median_ms"]
                            out.append(f"| {task} | {b}×{t} | {th} | {ms(f['median_ms'])} | {ms(q['median_ms'])} | {r:.2f} {verdict(r, 0.6)} | {ms(q4['median_ms']) if q4 else '–'} |")
            out.append("")
        sizes = [r for r in rs if "model_file" in r]
        if sizes:
            f32 = next((r["bytes"] for r in sizes if r["model_file"] == "classify/model.safetensors"), None)
            out.append("Download (classify model weights): " + ", ".join(
                f"`{r['model_file']}` {r['bytes'] / 1e6:.1f} MB" + (f" ({r['bytes'] / f32:.3f}×)" if f32 else "") for r in sizes) + ".\n")

block = "\n".join(out)
text = target.read_text() if target.exists() else "# Benchmarks\n\n<!-- bench:start -->\n<!-- bench:end -->\n"
text = re.sub(r"<!-- bench:start -->.*<!-- bench:end -->", lambda _: f"<!-- bench:start -->\n{block}\n<!-- bench:end -->", text, flags=re.S)
print(text, end="")

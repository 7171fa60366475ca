#!/usr/bin/env python3
"""Head-to-head benchmark: hybridc against ONNX Runtime, OpenVINO and PyTorch eager on the same networks.

Each model spec is built in PyTorch (nets.py, from ARCHITECTURES.md) with seeded weights; the state_dict is saved
as safetensors and fed to `hybridc compile`, and the model is exported to ONNX for ONNX Runtime and OpenVINO.
Before timing, every peer's output is compared with PyTorch's. Every peer runs in its own subprocess (one warm-up,
then --repeat timed runs; median), and its peak RSS is that subprocess's ru_maxrss. Prints a Markdown table and
writes the raw numbers as JSON.

    python3 bench.py --models restormer --input 3x256x256 --threads 2 --repeat 5
    python3 bench.py --models mambairunet --input 3x128x128 --peers ort,openvino --exporter both
    python3 bench.py --blocks --threads 2          # one T and one S block at C=96, 128x128

Internal sub-commands (run by the harness in subprocesses): `worker`, `export`.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

PEERS = ["hybridc", "ort", "openvino", "torch"]
PEER_NAMES = {"hybridc": "hybridc", "ort": "ONNX Runtime", "openvino": "OpenVINO", "torch": "PyTorch eager"}
CHECK_TOLERANCE = 1e-4
TIME_BIN = "/usr/bin/time"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_shape(text):
    parts = [int(v) for v in text.lower().split("x")]
    if len(parts) != 3:
        raise SystemExit(f"--input wants CxHxW, not {text!r}")
    return tuple(parts)


def rel_error(got, ref):
    got, ref = np.asarray(got, np.float64).reshape(-1), np.asarray(ref, np.float64).reshape(-1)
    if got.shape != ref.shape:
        return float("inf")
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))


# ------------------------------------------------------------------------------------------------------------
# Building models (spec -> torch module), per-block variants

BLOCK_STAGE = 1  # encoder_level2: C = 96 at H/2 for dim 48


def build_model(target):
    """target: {'spec': path} for a whole network, or {'block': 'T'|'S', 'spec': path} for one block."""
    import nets
    cfg = nets.load_spec(target["spec"])
    if "block" in target:
        kind = target["block"]
        cfg = dict(cfg)
        cfg["layout"] = [[kind] * len(g) for g in cfg["layout"]]
        return nets.SingleBlock(cfg, BLOCK_STAGE, kind), cfg
    return nets.UNet(cfg), cfg


def load_model(target, weights_path):
    import torch
    from safetensors.torch import load_file
    model, cfg = build_model(target)
    model.load_state_dict(load_file(weights_path), strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def save_weights(target, seed, path):
    import nets
    from safetensors.torch import save_file
    model, _ = build_model(target)
    nets.init_weights(model, seed)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)


# ------------------------------------------------------------------------------------------------------------
# Subprocess workers

def cmd_export(args):
    """Exports target to ONNX at a fixed input shape; prints one JSON line."""
    import torch
    import nets
    nets.SCAN["split"] = False
    nets.SCAN["chunk"] = args.chunk
    target = json.loads(args.target)
    model = load_model(target, args.weights)
    x = torch.from_numpy(np.load(args.input))
    t0 = time.perf_counter()
    with torch.no_grad():
        if args.exporter == "dynamo":
            prog = torch.onnx.export(model, (x,), dynamo=True, optimize=True)
            prog.save(args.output)
        else:
            torch.onnx.export(model, (x,), args.output, dynamo=False, opset_version=17,
                              input_names=["input"], output_names=["output"], do_constant_folding=True)
    seconds = time.perf_counter() - t0
    import onnx
    m = onnx.load(args.output, load_external_data=False)
    print(json.dumps({"seconds": seconds, "nodes": len(m.graph.node), "bytes": os.path.getsize(args.output)}))


def time_loop(fn, repeat, warmup=1):
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def cmd_worker(args):
    """Times one peer on one input; writes its output to args.output and prints one JSON line."""
    x = np.load(args.input)
    info = {}
    if args.peer == "torch":
        import torch
        import nets
        nets.SCAN["chunk"] = args.chunk
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
        model = load_model(json.loads(args.target), args.weights)
        xt = torch.from_numpy(x)

        def run():
            with torch.inference_mode():
                return model(xt).numpy()
        info["version"] = torch.__version__
    elif args.peer == "ort":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        t0 = time.perf_counter()
        sess = ort.InferenceSession(args.onnx, so, providers=["CPUExecutionProvider"])
        info["load_seconds"] = time.perf_counter() - t0
        name = sess.get_inputs()[0].name

        def run():
            return sess.run(None, {name: x})[0]
        info["version"] = ort.__version__
    elif args.peer == "openvino":
        import openvino as ov
        core = ov.Core()
        t0 = time.perf_counter()
        compiled = core.compile_model(core.read_model(args.onnx), "CPU", {
            "INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32"})
        info["load_seconds"] = time.perf_counter() - t0
        request = compiled.create_infer_request()

        def run():
            request.infer({0: x})
            return request.get_output_tensor(0).data.copy()
        info["version"] = ov.get_version()
    else:
        raise SystemExit(f"unknown peer {args.peer}")
    times, out = time_loop(run, args.repeat, args.warmup)
    np.save(args.output, np.asarray(out, np.float32))
    info["times"] = times
    print(json.dumps(info))


# ------------------------------------------------------------------------------------------------------------
# Running subprocesses with their own peak RSS

def run_measured(argv, timeout, log_path):
    """Runs argv; returns (returncode or None on timeout, stdout text, peak RSS in MB, wall seconds)."""
    # Peak RSS comes from /usr/bin/time: ru_maxrss of a direct child of this (large) Python process would
    # include the parent's RSS copied at fork, which Linux keeps as the child's high-water mark across exec.
    rss_path = log_path + ".rss"
    if os.access(TIME_BIN, os.X_OK):
        argv = [TIME_BIN, "-f", "maxrss_kb %M", "-o", rss_path] + list(argv)
    t0 = time.perf_counter()
    with open(log_path, "w") as err, open(log_path + ".out", "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, start_new_session=True)
        rc, usage = None, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                rc = os.waitstatus_to_exitcode(status)
                proc.returncode = rc
                break
            if time.perf_counter() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                rc = None
                break
            time.sleep(0.2)
    wall = time.perf_counter() - t0
    with open(log_path + ".out") as f:
        stdout = f.read()
    rss_mb = usage.ru_maxrss / 1024.0
    try:
        with open(rss_path) as f:
            m = re.search(r"maxrss_kb (\d+)", f.read())
        if m:
            rss_mb = int(m.group(1)) / 1024.0
    except OSError:
        pass
    return rc, stdout, rss_mb, wall


def tail(path, n=6):
    try:
        with open(path) as f:
            lines = [l.rstrip() for l in f if l.strip()]
        return " | ".join(lines[-n:])
    except OSError:
        return ""


def last_json(stdout):
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


# ------------------------------------------------------------------------------------------------------------
# The harness

def hybridc_gflop(hybridc, spec, shape):
    out = subprocess.run([hybridc, "check", spec, "--input", "x".join(map(str, shape))], capture_output=True,
                         text=True)
    m = re.search(r"GFLOP:\s*([0-9.]+)", out.stdout)
    return float(m.group(1)) if m else None


def block_gflop(target, shape):
    """Analytic count for one block at (C, H, W): 2*MAC of conv/matmul via torch's FLOP counter + nothing else."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    import nets
    model, _ = build_model(target)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros((1,) + tuple(shape)))
    return counter.get_total_flops() / 1e9


def export_onnx(args, target, weights, bench_in, exporter, workdir, tag):
    path = os.path.join(workdir, f"{tag}.{exporter}.onnx")
    if args.reuse_export and os.path.exists(path):
        log(f"reusing {path}")
        return {"exporter": exporter, "status": "ok", "path": path, "reused": True, "wall_seconds": 0,
                "peak_rss_mb": 0, "bytes": os.path.getsize(path)}
    argv = [sys.executable, __file__, "export", "--target", json.dumps(target), "--weights", weights,
            "--input", bench_in, "--exporter", exporter, "--chunk", str(args.export_chunk), "-o", path]
    log(f"export {tag} with the {exporter} exporter (timeout {args.export_timeout:.0f} s)")
    rc, stdout, rss, wall = run_measured(argv, args.export_timeout, os.path.join(workdir, f"export-{tag}-{exporter}.log"))
    rec = {"exporter": exporter, "wall_seconds": round(wall, 1), "peak_rss_mb": round(rss)}
    if rc is None:
        rec["status"] = f"failed: did not finish in {args.export_timeout:.0f} s"
    elif rc != 0:
        rec["status"] = "failed: " + tail(os.path.join(workdir, f"export-{tag}-{exporter}.log"), 3)[-600:]
    else:
        rec.update(last_json(stdout) or {})
        rec["status"] = "ok"
        rec["path"] = path
    log(f"export {tag} {exporter}: {rec['status'][:300]} ({wall:.0f} s)")
    return rec


def run_case(args, target, tag, shape, gflop, workdir):
    """Runs every selected peer on one model/block; returns the case record."""
    C, H, W = shape
    case = {"model": tag, "input": "x".join(map(str, shape)), "threads": args.threads, "gflop": gflop,
            "rows": {}, "exports": []}
    weights = os.path.join(workdir, f"{tag}.safetensors")
    save_weights(target, args.seed, weights)
    rng = np.random.default_rng(args.seed)
    bench_in = os.path.join(workdir, f"{tag}-in.npy")
    np.save(bench_in, rng.random((1, C, H, W), dtype=np.float32))
    is_block = "block" in target

    # ---- ONNX export (one or both exporters); ORT and OpenVINO read the first that worked
    onnx_path = None
    if {"ort", "openvino"} & set(args.peers):
        exporters = ["legacy", "dynamo"] if args.exporter == "both" else [args.exporter]
        for exporter in exporters:
            rec = export_onnx(args, target, weights, bench_in, exporter, workdir, tag)
            case["exports"].append(rec)
            if rec["status"] == "ok" and onnx_path is None:
                onnx_path = rec["path"]
                case["onnx_exporter"] = exporter

    # ---- hybridc: compile, check on a small input, then time
    if "hybridc" in args.peers:
        row = case["rows"].setdefault("hybridc", {})
        if is_block:
            row["status"] = "not run: hybridc compiles whole networks (per-block cost: the program's --profile)"
        else:
            prog = os.path.join(workdir, f"{tag}-hybridc")
            t0 = time.perf_counter()
            log(f"hybridc compile {tag} --input {case['input']}")
            cp = subprocess.run([args.hybridc, "compile", target["spec"], "--weights", weights, "--input",
                                 case["input"], "-o", prog], capture_output=True, text=True)
            row["compile_seconds"] = round(time.perf_counter() - t0, 1)
            if cp.returncode != 0:
                row["status"] = "not run: compile failed: " + (cp.stderr.strip().splitlines() or ["?"])[-1]
            else:
                row["status"] = "pending"
                case["_prog"] = prog

    # ---- correctness check on a small input (PyTorch vs hybridc), before timing
    import torch
    import nets
    nets.SCAN["chunk"] = args.chunk
    cc, ch, cw = parse_shape(args.check_size) if not is_block else (C, 16, 16)
    small = np.random.default_rng(args.seed + 1).random((1, cc, ch, cw), dtype=np.float32)
    small_in = os.path.join(workdir, f"{tag}-check-in.npy")
    np.save(small_in, small)
    model = load_model(target, weights)
    with torch.no_grad():
        ref_small = model(torch.from_numpy(small)).numpy()
    del model
    if "_prog" in case:
        out_small = os.path.join(workdir, f"{tag}-check-hybridc.npy")
        r = subprocess.run([case["_prog"], small_in, out_small, "--threads", str(args.threads)],
                           capture_output=True, text=True)
        how = "compiled program"
        if r.returncode != 0:  # the program may not take other sizes; the interpreter does
            how = "hybridc interpret"
            r = subprocess.run([args.hybridc, "interpret", target["spec"], "--weights", weights, small_in, out_small],
                               capture_output=True, text=True)
        if r.returncode == 0:
            err = rel_error(np.load(out_small), ref_small)
            case["check"] = {"size": f"{cc}x{ch}x{cw}", "by": how, "rel_error": err}
            log(f"check {tag} at {cc}x{ch}x{cw} ({how}): max rel error vs PyTorch {err:.2e}")
            if not err < CHECK_TOLERANCE:
                case["rows"]["hybridc"]["mismatch"] = f"max rel error {err:.2e} vs PyTorch at {cc}x{ch}x{cw}"
        else:
            case["check"] = {"error": r.stderr.strip()[-400:]}

    # ---- timing, each peer in its own subprocess
    order = [p for p in ["torch", "hybridc", "ort", "openvino"] if p in args.peers]
    outputs = {}
    for peer in order:
        row = case["rows"].setdefault(peer, {})
        repeat = args.repeat
        if peer == "hybridc":
            if "_prog" not in case:
                continue
            out_path = os.path.join(workdir, f"{tag}-out-hybridc.npy")
            argv = [case["_prog"], bench_in, out_path, "--threads", str(args.threads)]
            run_measured(argv, args.timeout, os.path.join(workdir, f"run-{tag}-hybridc-warm.log"))  # warm-up
            log(f"time hybridc on {tag} ({repeat} runs)")
            rc, stdout, rss, wall = run_measured(argv + ["--repeat", str(repeat)], args.timeout,
                                                 os.path.join(workdir, f"run-{tag}-hybridc.log"))
            text = tail(os.path.join(workdir, f"run-{tag}-hybridc.log"), 20)
            m = re.search(r"median ([0-9.]+) ms", text)
            if rc != 0 or not m:
                row["status"] = f"not run: program failed (rc {rc}): {text[-300:]}"
                continue
            row.update(status="measured", median_s=float(m.group(1)) / 1e3, runs=repeat, peak_rss_mb=round(rss))
            outputs[peer] = out_path
            continue
        if peer in ("ort", "openvino") and onnx_path is None:
            row["status"] = "not run: no ONNX export succeeded (see exports)"
            continue
        out_path = os.path.join(workdir, f"{tag}-out-{peer}.npy")
        argv = [sys.executable, __file__, "worker", peer, "--target", json.dumps(target), "--weights", weights,
                "--input", bench_in, "--threads", str(args.threads), "--repeat", str(repeat),
                "--warmup", str(args.warmup), "--chunk", str(args.chunk), "-o", out_path]
        if onnx_path:
            argv += ["--onnx", onnx_path]
        log(f"time {peer} on {tag} ({args.warmup} warm-up + {repeat} runs)")
        log_path = os.path.join(workdir, f"run-{tag}-{peer}.log")
        rc, stdout, rss, wall = run_measured(argv, args.timeout, log_path)
        info = last_json(stdout) if rc == 0 else None
        if info is None:
            why = f"timed out after {args.timeout:.0f} s" if rc is None else tail(log_path, 3)[-400:]
            row["status"] = f"not run: failed: {why}"
            log(f"{peer}: {row['status']}")
            continue
        times = info.pop("times")
        row.update(status="measured", median_s=statistics.median(times), runs=len(times),
                   times_s=[round(t, 4) for t in times], peak_rss_mb=round(rss), **info)
        if peer in ("ort", "openvino"):
            row["onnx_exporter"] = case.get("onnx_exporter")
        outputs[peer] = out_path
        log(f"{peer}: median {row['median_s']:.3f} s, peak RSS {rss:.0f} MB")

    # ---- agreement of the benchmark outputs (PyTorch's is the reference when it ran)
    ref_peer = "torch" if "torch" in outputs else next(iter(outputs), None)
    if ref_peer:
        ref = np.load(outputs[ref_peer])
        for peer, path in outputs.items():
            case["rows"][peer]["rel_error_vs_" + ref_peer] = rel_error(np.load(path), ref)
    case.pop("_prog", None)
    for peer, row in case["rows"].items():
        if row.get("status") == "measured" and gflop:
            row["gflops"] = gflop / row["median_s"]
    hyb = case["rows"].get("hybridc", {})
    for peer, row in case["rows"].items():
        if row.get("status") == "measured" and hyb.get("status") == "measured":
            row["time_vs_hybridc"] = row["median_s"] / hyb["median_s"]
    return case


def versions(args):
    v = {"python": platform.python_version()}
    for mod, attr in (("torch", "__version__"), ("onnxruntime", "__version__"), ("onnx", "__version__"),
                      ("onnxscript", "__version__")):
        try:
            v[mod] = getattr(__import__(mod), attr)
        except Exception as e:  # noqa: BLE001
            v[mod] = f"unavailable ({e})"
    try:
        import openvino as ov
        v["openvino"] = ov.get_version()
    except Exception as e:  # noqa: BLE001
        v["openvino"] = f"unavailable ({e})"
    if "hybridc" not in args.peers:
        v["hybridc"] = "(not run)"
        return v
    hyb_repo = os.path.abspath(os.path.join(os.path.dirname(args.hybridc), "..", ".."))
    git = subprocess.run(["git", "-C", hyb_repo, "log", "-1", "--format=%h %cs"], capture_output=True, text=True)
    built = datetime.datetime.fromtimestamp(os.path.getmtime(args.hybridc), datetime.timezone.utc)
    v["hybridc"] = (f"{args.hybridc} (built {built:%Y-%m-%d %H:%M} UTC; its repo's HEAD is "
                    f"{git.stdout.strip() or '?'})")
    return v


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return {"cpu": model, "cores": os.cpu_count(), "mem_gib": round(mem, 1), "kernel": platform.release()}


def fmt_time(s):
    return f"{s:.3f}" if s < 10 else f"{s:.1f}"


def markdown(result):
    m, v = result["machine"], result["versions"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB; {result['threads']} threads; "
             f"{result['date']}. Versions: hybridc {v['hybridc']}, ONNX Runtime {v['onnxruntime']}, "
             f"OpenVINO {v['openvino']}, PyTorch {v['torch']}, onnx {v['onnx']}, onnxscript {v['onnxscript']}.",
             f"Command: `{result['command']}`", ""]
    lines.append("| model | input | peer | status | median s | runs | GFLOP/s | peak RSS MB | time / hybridc | "
                 "max rel err vs PyTorch's output |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for case in result["cases"]:
        for peer in PEERS:
            row = case["rows"].get(peer)
            if row is None:
                continue
            name = PEER_NAMES[peer] + (f" ({row['onnx_exporter']} export)" if row.get("onnx_exporter") else "")
            if row.get("status") == "measured":
                err_key = next((k for k in row if k.startswith("rel_error_vs_")), None)
                err = row.get(err_key) if err_key else None
                if err is not None and err_key != "rel_error_vs_torch":
                    err_note = f" (vs {err_key.removeprefix('rel_error_vs_')})"
                else:
                    err_note = ""
                note = "measured" + (f"; {row['mismatch']}" if row.get("mismatch") else "")
                lines.append(f"| {case['model']} | {case['input']} | {name} | {note} | {fmt_time(row['median_s'])} "
                             f"| {row['runs']} | {row['gflops']:.1f} | {row['peak_rss_mb']} | "
                             f"{row.get('time_vs_hybridc', float('nan')):.2f}x | "
                             f"{'' if err is None else f'{err:.1e}{err_note}'} |".replace("nanx", "–"))
            else:
                why = row.get("status", "not run").replace("|", "/").replace("\n", " ")
                lines.append(f"| {case['model']} | {case['input']} | {name} | {why} | – | – | – | – | – | – |")
    for case in result["cases"]:
        if case.get("check"):
            c = case["check"]
            if "rel_error" in c:
                lines.append(f"\nCheck before timing, {case['model']}: hybridc ({c['by']}) vs PyTorch at {c['size']}: "
                             f"max rel error {c['rel_error']:.2e} (tolerance {CHECK_TOLERANCE:g}).")
            else:
                lines.append(f"\nCheck before timing, {case['model']}: failed to run: {c.get('error')}")
        for e in case["exports"]:
            detail = (f"{e.get('nodes')} nodes, {e.get('bytes', 0) / 1e6:.0f} MB, {e.get('seconds', 0):.1f} s"
                      if e["status"] == "ok" else e["status"])
            lines.append(f"\nONNX export of {case['model']} at {case['input']} with the {e['exporter']} exporter: "
                         f"{detail} (wall {e['wall_seconds']} s, peak RSS {e['peak_rss_mb']} MB).")
    return "\n".join(lines)


def resolve_models(names):
    specs = []
    for name in names:
        path = name if os.path.exists(name) else os.path.join(REPO, "Graphs", "models", name.removesuffix(".yml") + ".yml")
        if not os.path.exists(path):
            raise SystemExit(f"no model spec {name!r}")
        specs.append(os.path.abspath(path))
    return specs


def cmd_run(args):
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for p in args.peers:
        if p not in PEERS:
            raise SystemExit(f"unknown peer {p!r} (choose from {', '.join(PEERS)})")
    if not os.access(args.hybridc, os.X_OK) and ("hybridc" in args.peers or not args.blocks):
        raise SystemExit(f"no hybridc at {args.hybridc} (build it with `swift build -c release` or pass --hybridc)")
    workdir = os.path.abspath(args.work_dir)
    os.makedirs(workdir, exist_ok=True)
    shape = parse_shape(args.input)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "command": " ".join(["Benchmarks/peers/run.sh"] + sys.argv[1:]), "threads": args.threads,
              "repeat": args.repeat, "machine": machine(), "versions": versions(args), "cases": []}
    targets = []
    if args.blocks:
        spec_t = resolve_models(["restormer"])[0]
        spec_s = resolve_models(["mambairunet"])[0]
        C = 2 * 48
        bshape = (C, shape[1] // 2, shape[2] // 2)
        targets.append(({"spec": spec_t, "block": "T"}, "T-block-C96", bshape))
        targets.append(({"spec": spec_s, "block": "S"}, "S-block-C96", bshape))
    else:
        for spec in resolve_models(args.models.split(",")):
            targets.append(({"spec": spec}, os.path.basename(spec).removesuffix(".yml"), shape))
    for target, tag, tshape in targets:
        if "block" in target:
            gflop = block_gflop(target, tshape)
        else:
            gflop = hybridc_gflop(args.hybridc, target["spec"], tshape)
        log(f"== {tag} at {'x'.join(map(str, tshape))}: {gflop} GFLOP")
        case = run_case(args, target, tag, tshape, gflop, workdir)
        if "block" in target:
            case["gflop_note"] = "conv/matmul FLOP by torch's FlopCounterMode (elementwise not counted)"
        result["cases"].append(case)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    md = markdown(result)
    with open(args.markdown, "w") as f:
        f.write(md + "\n")
    print(md)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    ex = sub.add_parser("export")
    ex.add_argument("--target", required=True)
    ex.add_argument("--weights", required=True)
    ex.add_argument("--input", required=True)
    ex.add_argument("--exporter", choices=["legacy", "dynamo"], required=True)
    ex.add_argument("--chunk", type=int, default=16)
    ex.add_argument("-o", "--output", required=True)
    wk = sub.add_parser("worker")
    wk.add_argument("peer", choices=["torch", "ort", "openvino"])
    wk.add_argument("--target", required=True)
    wk.add_argument("--weights", required=True)
    wk.add_argument("--onnx")
    wk.add_argument("--input", required=True)
    wk.add_argument("--threads", type=int, default=2)
    wk.add_argument("--repeat", type=int, default=5)
    wk.add_argument("--warmup", type=int, default=1)
    wk.add_argument("--chunk", type=int, default=16)
    wk.add_argument("-o", "--output", required=True)

    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] in ("export", "worker"):
        args = ap.parse_args(argv)
        return cmd_export(args) if args.cmd == "export" else cmd_worker(args)

    rp = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    rp.add_argument("--models", default="restormer", help="comma-separated specs (names in Graphs/models or paths)")
    rp.add_argument("--input", default="3x256x256", help="CxHxW (default 3x256x256)")
    rp.add_argument("--threads", type=int, default=2)
    rp.add_argument("--repeat", type=int, default=5, help="timed runs after the warm-up (median)")
    rp.add_argument("--warmup", type=int, default=1)
    rp.add_argument("--peers", default=",".join(PEERS), help="subset of " + ",".join(PEERS))
    rp.add_argument("--hybridc", default=os.path.join(REPO, ".build", "release", "hybridc"))
    rp.add_argument("--exporter", choices=["legacy", "dynamo", "both"], default="legacy",
                    help="ONNX exporter(s) to try; ORT/OpenVINO use the first that works")
    rp.add_argument("--blocks", action="store_true",
                    help="per-block mode: one T and one S block at C=96 and half the --input size")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--chunk", type=int, default=16, help="scan chunk length for PyTorch eager")
    rp.add_argument("--export-chunk", type=int, default=16, help="scan chunk length in the exported graph")
    rp.add_argument("--check-size", default="3x32x32", help="input of the hybridc-vs-PyTorch check")
    rp.add_argument("--reuse-export", action="store_true",
                    help="use an .onnx file left in --work-dir by an earlier run (same model, input and seed)")
    rp.add_argument("--export-timeout", type=float, default=600.0)
    rp.add_argument("--timeout", type=float, default=3600.0, help="per peer subprocess")
    rp.add_argument("--work-dir", default=os.path.join(HERE, "out", "work"))
    rp.add_argument("--json", default=os.path.join(HERE, "out", "results.json"))
    rp.add_argument("--markdown", default=os.path.join(HERE, "out", "results.md"))
    args = rp.parse_args(argv)
    if not os.path.isabs(args.hybridc):
        args.hybridc = os.path.abspath(args.hybridc)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())

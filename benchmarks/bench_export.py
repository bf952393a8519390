"""Exporter benchmark: all-MiniLM-L6-v2, PyTorch vs ONNX Runtime vs OpenVINO, one process.

Two workloads, side by side:
- fixed shape: batch 32 x 128 tokens of real reviews (the issue's figures), seq/s as the
  median over ``--repeats`` timed runs after a warm-up;
- real data: the first ``--texts`` Musical Instruments reviews through each recfeat encoder
  backend (token-budget batching, max_length 256), texts/s.
Cosine is to PyTorch fp32 on the same inputs. Writes benchmarks/results/export.{json,md}.

    .venv/bin/python benchmarks/bench_export.py [--repeats 5] [--texts 2000] [--gpt2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RECFEAT_PROGRESS", "0")
RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(os.environ.get("RECFEAT_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
REVIEWS = DATA / "amazon_musical_instruments_5" / "reviews_Musical_Instruments_5.json.gz"


def read_reviews(n: int) -> list[str]:
    texts = []
    with gzip.open(REVIEWS, "rt", encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line).get("reviewText", "")
            if text.strip():
                texts.append(text)
            if len(texts) >= n:
                break
    return texts


def cos_mean(a, b) -> float:
    from recfeat.encode.similarity import cosine_rows

    return float(cosine_rows(a, b).mean())


def timed(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up (also the output compared)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def cpu_name() -> str:
    from recfeat.machine import cpu_model

    return cpu_model()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--gpt2", action="store_true", help="also export + validate a random GPT-2 shape")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from recfeat.encode.backends import compile_openvino as compile_ir
    from recfeat.encode.hf_models import load_transformer
    from recfeat.exporters.convert import build_pooled_module
    from recfeat.exporters.families import family_for_config
    from recfeat.exporters.plugin import OnnxExporter, OpenVinoExporter
    from recfeat.plugin.registry import get_registry

    corpus = read_reviews(max(args.texts, 1200))
    work = Path(tempfile.mkdtemp(prefix="bench_export."))
    t0 = time.time()
    exports = {}
    exports["dyn"] = OnnxExporter(optimize="O2", quantize="dynamic-int8").export("minilm", work / "dyn", texts=corpus[:1000])
    # static QDQ with the sensitivity search on: the cosine target is met, whatever it costs
    exports["static"] = OnnxExporter(quantize="static-int8", auto_exclude=True).export("minilm", work / "static", texts=corpus[:1000])
    exports["ov"] = OpenVinoExporter(quantize="static-int8").export("minilm", work / "ov", texts=corpus[:1000])
    export_seconds = time.time() - t0

    # -- fixed shape 32 x 128 ---------------------------------------------------------------
    loaded = load_transformer("minilm", max_length=128)  # sdpa: recfeat's torch path
    family = family_for_config(loaded.model.config)
    module = build_pooled_module(loaded, family, "mean", True)
    enc = loaded.tokenizer(corpus[:32], padding="max_length", truncation=True, max_length=128, return_tensors="np")
    feed = {k: enc[k].astype(np.int64) for k in family.input_names}
    tfeed = {k: torch.from_numpy(v) for k, v in feed.items()}
    threads = torch.get_num_threads()

    def torch_run(dtype):
        def run():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                return module(**tfeed).float().numpy()
        return run

    def ort_run(path):
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        return lambda: sess.run(None, {k: feed[k] for k in names})[0]

    def ov_run(path, precision):
        compiled = compile_ir(path, precision)
        req = compiled.create_infer_request()

        def run():
            req.infer(feed)
            return np.array(req.get_output_tensor(0).data, copy=True)
        return run

    dyn, static, ov = work / "dyn", work / "static", work / "ov"
    cases = [
        ("PyTorch fp32", torch_run("fp32")),
        ("PyTorch bf16 (autocast)", torch_run("bf16")),
        ("ORT fp32 (model.onnx)", ort_run(dyn / "model.onnx")),
        ("ORT optimized O2", ort_run(dyn / "model_O2.onnx")),
        ("ORT dynamic int8 (plain graph, sensitive MatMuls float)", ort_run(dyn / exports["dyn"]["default_file"])),
        ("ORT static int8 QDQ", ort_run(static / exports["static"]["default_file"])),
        ("OpenVINO fp32", ov_run(ov / "openvino_model.xml", "fp32")),
        ("OpenVINO bf16", ov_run(ov / "openvino_model.xml", "bf16")),
        ("OpenVINO int8 (NNCF static) + bf16", ov_run(ov / "openvino_model_int8.xml", "bf16")),
    ]
    fixed = []
    ref = None
    for name, fn in cases:
        sec, out = timed(fn, args.repeats)
        ref = out if ref is None else ref
        fixed.append({"path": name, "seq_per_s": round(32 / sec, 1), "cosine_to_torch_fp32": round(cos_mean(out, ref), 6)})
        print(f"{name:40s} {32 / sec:8.1f} seq/s  cos {fixed[-1]['cosine_to_torch_fp32']:.6f}", flush=True)
    base = fixed[0]["seq_per_s"]
    for row in fixed:
        row["x_torch_fp32"] = round(row["seq_per_s"] / base, 2)

    # -- real data through the encoder backends ---------------------------------------------
    texts = corpus[: args.texts]
    reg = get_registry("encoder")
    backends = [
        ("torch minilm fp32", reg.create("minilm")),
        ("torch minilm bf16", reg.create("minilm", precision="bf16")),
        ("onnx fp32 O2", reg.create("onnx", path=str(dyn), precision="fp32")),
        ("onnx dynamic int8", reg.create("onnx", path=str(dyn))),
        ("onnx static int8 QDQ", reg.create("onnx", path=str(static))),
        ("openvino bf16", reg.create("openvino", path=str(ov), precision="bf16")),
        ("openvino int8 + bf16", reg.create("openvino", path=str(ov), precision="int8")),
    ]
    real = []
    ref = None
    for name, encoder in backends:
        encoder.encode(texts[:64])  # load + warm-up
        t = time.perf_counter()
        vecs = encoder.encode(texts)
        sec = time.perf_counter() - t
        ref = vecs if ref is None else ref
        real.append({"backend": name, "texts_per_s": round(len(texts) / sec, 1), "cosine_to_torch_fp32": round(cos_mean(vecs, ref), 6)})
        print(f"{name:40s} {len(texts) / sec:8.1f} texts/s cos {real[-1]['cosine_to_torch_fp32']:.6f}", flush=True)
    for row in real:
        row["x_torch_fp32"] = round(row["texts_per_s"] / real[0]["texts_per_s"], 2)

    gpt2 = None
    if args.gpt2:
        m = OnnxExporter(optimize="O2", quantize="dynamic-int8").export(
            "gpt2", work / "gpt2", texts=corpus[:1000], init="random"
        )
        gpt2 = [{"step": s["validation"]["step"], "file": s["file"], **{k: round(s["validation"][k], 6) for k in ("cosine_mean", "cosine_min", "cosine_p1", "max_abs_diff")}} for s in m["steps"]]

    by = {r["path"]: r for r in fixed}
    int8_best = max((r for r in fixed if r["path"].startswith("ORT") and "int8" in r["path"] and r["cosine_to_torch_fp32"] >= 0.99), key=lambda r: r["seq_per_s"], default=None)
    recfeat_paths = [r for r in fixed if not r["path"].startswith("PyTorch") and r["cosine_to_torch_fp32"] >= 0.999]
    fastest = max(recfeat_paths, key=lambda r: r["seq_per_s"])
    targets = {
        "ORT int8 >= 2.5x PyTorch fp32 at cosine >= 0.99": {
            "measured": int8_best and int8_best["x_torch_fp32"], "path": int8_best and int8_best["path"],
            "met": bool(int8_best and int8_best["x_torch_fp32"] >= 2.5)},
        "ORT fp32 optimized >= 1.2x PyTorch fp32": {
            "measured": by["ORT optimized O2"]["x_torch_fp32"], "met": by["ORT optimized O2"]["x_torch_fp32"] >= 1.2},
        "fastest recfeat export path (cos >= 0.999) >= OpenVINO bf16 peer": {
            "measured": fastest["seq_per_s"], "path": fastest["path"], "peer": by["OpenVINO bf16"]["seq_per_s"],
            "met": fastest["seq_per_s"] >= by["OpenVINO bf16"]["seq_per_s"]},
        "GPT-2-shaped export runs and validates": {"met": bool(gpt2) if args.gpt2 else None},
    }
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": threads, "python": platform.python_version()},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "note": (
            f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
            "(above the core count means other work shared the CPU); ratios within this run "
            "are the meaningful part"
        ),
        "caveats": [
            "the peer OpenVINO bf16 row is the same OpenVINO runtime recfeat's openvino backend uses, so the third target compares recfeat's paths with that runtime on identical inputs; an optimum-intel peer was not run",
            "contention hits the PyTorch baseline differently from ORT/OpenVINO (ORT fp32 unoptimised shows >1x PyTorch fp32, where the issue measured parity on a quiet machine), so the x-PyTorch ratios overstate what a quiet machine would show",
        ],
        "export_seconds": round(export_seconds, 1),
        "validation": {k: [{"step": s["validation"]["step"], "cosine_mean": round(s["validation"]["cosine_mean"], 6)} for s in v["steps"]] for k, v in exports.items()},
        "static_int8_excluded_nodes": len(exports["static"]["steps"][-1]["settings"].get("excluded_nodes", [])),
        "fixed_32x128": fixed,
        "real_reviews": {"texts": len(texts), "rows": real},
        "gpt2_random_export": gpt2,
        "targets": targets,
        "versions": exports["dyn"]["versions"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    from recfeat.jsonable import jsonable

    (RESULTS / "export.json").write_text(json.dumps(jsonable(result), indent=2) + "\n")
    (RESULTS / "export.md").write_text(render_md(result))
    print(json.dumps(targets, indent=2))
    return 0


def render_md(r) -> str:
    lines = [
        "# Exporter benchmark (all-MiniLM-L6-v2)", "",
        f"- date: {r['date']}", f"- machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, torch threads {r['machine']['torch_threads']}",
        f"- command: `{r['command']}`", f"- note: {r['note']}",
        *[f"- caveat: {c}" for c in r.get("caveats", [])], "",
        "## Batch 32 x 128 tokens (real reviews), median seq/s", "",
        "| path | seq/s | x PyTorch fp32 | cosine to PyTorch fp32 |", "|---|---:|---:|---:|",
    ]
    lines += [f"| {x['path']} | {x['seq_per_s']} | {x['x_torch_fp32']} | {x['cosine_to_torch_fp32']} |" for x in r["fixed_32x128"]]
    lines += ["", f"## Real Musical Instruments reviews ({r['real_reviews']['texts']} texts, token-budget batching)", "",
              "| backend | texts/s | x torch fp32 | cosine to torch fp32 |", "|---|---:|---:|---:|"]
    lines += [f"| {x['backend']} | {x['texts_per_s']} | {x['x_torch_fp32']} | {x['cosine_to_torch_fp32']} |" for x in r["real_reviews"]["rows"]]
    lines += ["", f"Static int8 QDQ: auto-exclude kept {r['static_int8_excluded_nodes']} nodes in float to reach mean cosine >= 0.99.", ""]
    if r["gpt2_random_export"]:
        lines += ["## GPT-2 shape (random weights) export validation", "", "| step | file | cos mean | cos min | cos p1 | max abs |", "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {g['step']} | {g['file']} | {g['cosine_mean']} | {g['cosine_min']} | {g['cosine_p1']} | {g['max_abs_diff']} |" for g in r["gpt2_random_export"]]
        lines.append("")
    lines += ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for name, t in r["targets"].items():
        measured = {k: v for k, v in t.items() if k != "met"}
        lines.append(f"| {name} | {json.dumps(measured)} | {t['met']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

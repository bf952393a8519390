"""Issue 26: the default dynamic int8 export of all-MiniLM-L6-v2 against fp32 ONNX and the
old (O2-based) int8, one process, interleaved.

One export with the new defaults (``--optimize O2 --quantize dynamic-int8``, built-in
validation texts: the plain graph is quantised, sensitive MatMuls found and put back one at
a time) gives model.onnx, model_O2.onnx and the new int8 file; the old path's files are
made beside it from model_O2.onnx with the same preset: plain int8 (what the old default
wrote, refused by its gate on this CPU) and ``--auto-exclude`` (the whole FFN
down-projection role in float, the old search's answer). Each variant then encodes the same
``--texts`` Musical Instruments reviews through recfeat's encode loop (``engine.encode`` on
an ``OnnxRuntimeBackend``, what ``OnnxEncoder`` runs) with 1 thread, in ``--rounds``
interleaved rounds (order rotated per round); seq/s is the median. Cosine is to torch fp32
(the minilm encoder) on those reviews and on the exporter's built-in validation texts.
Also timed: ``batch_tokens`` 2048 / 4096 / 8192 / 16384, and the preset's per-channel /
reduce_range choice flipped with the same nodes in float.
Writes benchmarks/results/export_int8_default.{json,md}.

``--batch-tokens FOLDER`` instead times only OnnxEncoder's token budget on an export folder
this script made (its default int8 file and model.onnx, 2048 / 4096 / 8192 / 16384 tokens),
with the padding each budget costs: benchmarks/results/export_int8_batch_tokens.{json,md}.

    .venv/bin/python benchmarks/bench_int8_default.py [--texts 300] [--rounds 3]
    .venv/bin/python benchmarks/bench_int8_default.py --batch-tokens /tmp/bench_int8_default.X/minilm --rounds 4
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import itertools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RECFEAT_PROGRESS", "0")
RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(os.environ.get("RECFEAT_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
REVIEWS = DATA / "amazon_musical_instruments_5" / "reviews_Musical_Instruments_5.json.gz"


def read_reviews(n: int) -> list[str]:
    with gzip.open(REVIEWS, "rt", encoding="utf-8") as fh:
        texts = (json.loads(line).get("reviewText", "") for line in fh)
        return list(itertools.islice((t for t in texts if t.strip()), n))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-tokens", type=Path, default=None, metavar="FOLDER")
    args = parser.parse_args()
    if args.batch_tokens is not None:
        return batch_tokens_only(args.batch_tokens, read_reviews(args.texts), args.rounds)

    import transformers

    from recfeat.encode import engine
    from recfeat.encode.backends import OnnxRuntimeBackend
    from recfeat.encode.engine import BatchPlan
    from recfeat.encode.similarity import cosine_rows
    from recfeat.exporters import quantize as q
    from recfeat.exporters import validate as val
    from recfeat.exporters.plugin import OnnxExporter
    from recfeat.machine import cpu_model
    from recfeat.plugin.registry import get_registry

    texts = read_reviews(args.texts)
    builtin = list(val.BUILTIN_TEXTS)
    work = Path(tempfile.mkdtemp(prefix="bench_int8_default."))
    folder = work / "minilm"
    t0 = time.perf_counter()
    manifest = OnnxExporter(optimize="O2", quantize="dynamic-int8").export("minilm", folder)
    export_s = time.perf_counter() - t0
    qstep = manifest["steps"][-1]
    settings = qstep["settings"]
    preset = q.check_preset(settings["preset"])

    torch_enc = get_registry("encoder").create("minilm")
    ref = {"reviews": torch_enc.encode(texts), "builtin": torch_enc.encode(builtin)}
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, use_fast=True)

    # the old path: O2 graph quantised, plain and with the old role-level search's answer
    o2 = folder / "model_O2.onnx"
    old_plain, old_auto = work / "old_O2_int8.onnx", work / "old_O2_int8_ffn_float.onnx"
    q.quantize_dynamic_int8(o2, old_plain, preset)
    ffn_role = [n for role, ns in q.role_groups(q.quantizable_nodes(o2)).items()
                if q.role_priority(role) == 0 for n in ns]  # fmt: skip
    q.quantize_dynamic_int8(o2, old_auto, preset, exclude=ffn_role)
    # the preset's choices flipped, same nodes in float as the new default
    flipped_rr = work / "new_int8_rr_flipped.onnx"
    q.quantize_dynamic_int8(folder / "model.onnx", flipped_rr,
                            dataclasses.replace(preset, reduce_range=not preset.reduce_range),
                            exclude=settings["excluded_nodes"])  # fmt: skip
    per_tensor = work / "new_int8_per_tensor.onnx"
    q.quantize_dynamic_int8(folder / "model.onnx", per_tensor, preset, per_channel=False,
                            exclude=settings["excluded_nodes"])  # fmt: skip

    new = folder / qstep["file"]
    variants = {  # name: (file, batch_tokens)
        "fp32 model.onnx": (folder / "model.onnx", 4096),
        "fp32 model_O2.onnx": (o2, 4096),
        "int8 new default (plain graph), batch_tokens 4096": (new, 4096),
        "int8 new default, batch_tokens 2048": (new, 2048),
        "int8 new default, batch_tokens 8192": (new, 8192),
        "int8 new default, batch_tokens 16384": (new, 16384),
        "int8 old: O2 graph, FFN role float (--auto-exclude), batch_tokens 16384": (old_auto, 16384),
        "int8 old: O2 graph, no float (refused by its gate), batch_tokens 16384": (old_plain, 16384),
        f"int8 new nodes, reduce_range {not preset.reduce_range}": (flipped_rr, 4096),
        "int8 new nodes, per-tensor": (per_tensor, 4096),
    }
    backends = {f: OnnxRuntimeBackend(f, dim=384, output=manifest["output"], threads=1, provider="cpu")
                for f in {f for f, _ in variants.values()}}  # fmt: skip

    def run(name, batch):
        file, batch_tokens = variants[name]
        plan = BatchPlan(batch_tokens, 256, 1, manifest["max_length"])
        return engine.encode(batch, tokenizer=tokenizer, backend=backends[file], plan=plan)[0]

    rows = {name: {"seconds": [], "file": variants[name][0].name, "batch_tokens": variants[name][1]}
            for name in variants}  # fmt: skip
    for name in variants:  # warm-up, and the vectors compared
        for key, batch in (("reviews", texts), ("builtin", builtin)):
            rows[name][f"cosine_{key}"] = float(cosine_rows(ref[key], run(name, batch)).mean())
    names = list(variants)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t = time.perf_counter()
            run(name, texts)
            rows[name]["seconds"].append(time.perf_counter() - t)
    base = statistics.median(rows["fp32 model.onnx"]["seconds"])
    for row in rows.values():
        row["seq_per_s"] = len(texts) / statistics.median(row["seconds"])
        row["vs_fp32"] = base / statistics.median(row["seconds"])

    result = {
        "cpu": cpu_model(), "preset": preset.name, "texts": len(texts), "rounds": args.rounds,
        "threads": 1, "builtin_texts": len(builtin), "export_seconds": export_s, "rows": rows,
        "quantize_step": {k: settings[k] for k in ("per_channel", "reduce_range", "excluded_nodes",
                                                   "excluded_why", "exclusion", "attempts")},
        "validation": qstep["validation"],
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "export_int8_default.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "export_int8_default.md").write_text(report(result))
    print(report(result))
    return 0


def batch_tokens_only(folder: Path, texts: list[str], rounds: int) -> int:
    import transformers

    from recfeat.encode import engine
    from recfeat.encode.backends import OnnxRuntimeBackend
    from recfeat.encode.engine import BatchPlan
    from recfeat.machine import cpu_model

    manifest = json.loads((folder / "manifest.json").read_text())
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, use_fast=True)
    files = {"int8": folder / manifest["default_file"], "fp32": folder / "model.onnx"}
    backends = {k: OnnxRuntimeBackend(f, dim=384, output=manifest["output"], threads=1, provider="cpu")
                for k, f in files.items()}  # fmt: skip
    variants = [(k, b) for k in ("int8", "fp32") for b in (2048, 4096, 8192, 16384) if k == "int8" or b != 8192]
    rows = {f"{k} {b}": {"file": files[k].name, "batch_tokens": b, "seconds": []} for k, b in variants}

    def run(kind, budget, batch):
        plan = BatchPlan(budget, 256, 1, manifest["max_length"])
        return engine.encode(batch, tokenizer=tokenizer, backend=backends[kind], plan=plan)[1]

    for kind, budget in variants:  # warm-up; the plan's padding is a property of the texts
        run(kind, budget, texts[:30])
        stats = run(kind, budget, texts)
        rows[f"{kind} {budget}"].update(batches=stats["batches"], padding_ratio=stats["padding_ratio"])
    for r in range(rounds):
        for kind, budget in variants[r % len(variants):] + variants[: r % len(variants)]:
            t = time.perf_counter()
            run(kind, budget, texts)
            rows[f"{kind} {budget}"]["seconds"].append(time.perf_counter() - t)
    for name, row in rows.items():
        base = statistics.median(rows[f"{name.split()[0]} 16384"]["seconds"])
        row["seq_per_s"] = len(texts) / statistics.median(row["seconds"])
        row["vs_16384"] = base / statistics.median(row["seconds"])
    result = {"cpu": cpu_model(), "texts": len(texts), "rounds": rounds, "threads": 1, "rows": rows}
    (RESULTS / "export_int8_batch_tokens.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# OnnxEncoder token budget (issue 26)", "",
             f"`benchmarks/bench_int8_default.py --batch-tokens`, {result['cpu']}: {len(texts)} Musical "
             f"Instruments reviews, 1 thread, {rounds} interleaved rounds in one process (median), "
             "recfeat's encode loop on the default int8 export and on model.onnx. The machine is "
             "shared: read ratios.", "",
             "| file | batch_tokens | batches | padding ratio | seq/s | vs 16384 |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for row in rows.values():
        lines.append(f"| `{row['file']}` | {row['batch_tokens']} | {row['batches']} | "
                     f"{row['padding_ratio']:.3f} | {row['seq_per_s']:.1f} | {row['vs_16384']:.2f}x |")  # fmt: skip
    (RESULTS / "export_int8_batch_tokens.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def report(r: dict) -> str:
    s = r["quantize_step"]
    lines = [
        "# Default dynamic int8 export (issue 26)", "",
        f"`benchmarks/bench_int8_default.py`, {r['cpu']}, preset `{r['preset']}`: "
        f"{r['texts']} Musical Instruments reviews, 1 thread, {r['rounds']} interleaved rounds "
        "in one process (median); cosine to torch fp32 on those reviews and on the exporter's "
        f"{r['builtin_texts']} built-in "
        "validation texts. The machine is shared: read ratios, not absolute seq/s.", "",
        "| variant | file | seq/s | vs fp32 | cosine reviews | cosine built-in |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for name, row in r["rows"].items():
        lines.append(f"| {name} | `{row['file']}` | {row['seq_per_s']:.1f} | {row['vs_fp32']:.2f}x | "
                     f"{row['cosine_reviews']:.5f} | {row['cosine_builtin']:.5f} |")  # fmt: skip
    lines += ["", f"Default export (`--optimize O2 --quantize dynamic-int8`, built-in texts): "
              f"{r['export_seconds']:.0f} s on the shared machine; per-channel {s['per_channel']}, "
              f"reduce_range {s['reduce_range']}; {len(s['excluded_nodes'])} MatMuls in float.", "",
              "| trial | nodes float | mean cosine (built-in) | passed |", "| --- | ---: | ---: | --- |"]  # fmt: skip
    for a in s["attempts"]:
        lines.append(f"| {a['trial']} | {a['excluded_nodes']} | {a['cosine_mean']:.5f} | {a['passed']} |")
    lines += ["", "Why each node stayed in float (the manifest's `excluded_why`):", ""]
    lines += [f"- `{node}`: {why}" for node, why in s["excluded_why"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

"""``recfeat export``: an encoder (pooling included) -> validated ONNX / OpenVINO folder."""

from __future__ import annotations

import click

import recfeat.api as api
import recfeat.progress as progress
from recfeat.cli.params import gate_interactions_option
from recfeat.cli.tables import wide_option

HELP = """Export ENCODER (+ pooling, + optional L2 norm) as one ONNX graph, optionally optimise
and quantise it, and validate every step against PyTorch fp32.

\b
The folder --out holds model.onnx (+ suffixed variants such as model_O2.onnx or
model_qint8_avx512_vnni.onnx), the tokenizer files and manifest.json (source weights
hash, family, pooling, opset, versions, quantisation settings, validation figures and the
sha256 of every file). It is built aside and moved into place only when every step passes.

\b
Validation texts come from --calibration (stratified by length), else a built-in varied
set. A step below --min-cosine (default 0.9999 fp32, 0.99 int8) fails with the figures;
--auto-exclude keeps the most sensitive MatMul roles in float (ONNX nodes_to_exclude, NNCF
IgnoredScope for --backend openvino) until it holds. It is on by default for dynamic-int8
(--no-auto-exclude: fail instead), which quantises the plain graph (model.onnx) even with
--optimize and then puts the excluded MatMuls back into int8 one at a time, last layer
first, while the mean cosine stays 0.002 above the gate; the manifest records which nodes
stayed in float and why. Quality-preserving int8 on a CPU:
--backend openvino --quantize static-int8 --calibration DATA --min-cosine 0.995 --auto-exclude
(NNCF, calibrated on DATA; float parts in bf16 where the CPU has bf16 units).
Use the result with `recfeat extract --encoder DIR` (its manifest names the backend).

\b
--config FILE takes the exporter and its options from the file's [exporter] table
(use = "onnx" or "openvino", optimize, quantize, preset, per_channel, calibration_method,
calibration_size, min_cosine, auto_exclude, exclude_nodes, opset, external_data); a flag
given on the command line overrides the file.
"""


def print_table(rows, *, wide: bool = False) -> None:
    """The validation table, fitted to the terminal (the last line names the default file,
    so the file column is the first to go)."""
    from recfeat.cli.tables import print_table as fitted

    header = ["step", "file", "cosine mean", "cosine min", "cosine p1", "max abs diff", "min", "ok"]
    body = [[v.step, v.file, f"{v.cosine_mean:.6f}", f"{v.cosine_min:.6f}", f"{v.cosine_p1:.6f}",
             f"{v.max_abs_diff:.3g}", f"{v.min_cosine}", "yes" if v.passed else "NO"]
            for v in rows]  # fmt: skip
    fitted(header, body, wide=wide, title="validation against PyTorch fp32",
           align=["left", "left"] + ["right"] * 6, drop_first=("file", "min", "cosine p1"),
           row_noun="step")  # fmt: skip


def register(cli: click.Group) -> None:
    @cli.command("export", help=HELP)
    @click.option("--encoder", "encoder_name", default=None,
                  help="Text encoder to export: a registry name (minilm, bert-base, distilbert, "
                       "gpt2) or a Hugging Face model (hub name or folder) "
                       "[default: the config's [encoder], else minilm].")
    @click.option("--init", type=click.Choice(["pretrained", "random"]), default=None,
                  help="random: the standard shape with random weights (labelled random).")
    @click.option("--pooling", type=click.Choice(["cls", "mean", "max", "last-token"]), default=None)
    @click.option("--normalize/--no-normalize", default=None, help="L2-normalise inside the graph.")
    @click.option("--max-length", type=int, default=None)
    @click.option("--out", required=True, help="Output folder (refused if it exists, unless --force).")
    @click.option("--optimize", type=click.Choice(["O1", "O2", "O3"], case_sensitive=False), default=None)
    @click.option("--quantize", type=click.Choice(["dynamic-int8", "static-int8", "fp16"]), default=None)
    @click.option("--preset", type=click.Choice(["avx2", "avx512", "avx512_vnni", "arm64"]), default=None,
                  help="int8 preset (default: detected from this CPU).")
    @click.option("--per-channel/--per-tensor", default=None, help="int8 weight scales (default: preset's).")
    @click.option("--calibration", default=None, help="Your texts: .txt (one per line) or a dataset file.")
    @click.option("--calibration-format", default="auto", show_default=True,
                  help="text, or a dataset format (amazon, csv, jsonl, parquet, ...).")
    @click.option("--calibration-method", type=click.Choice(["minmax", "entropy", "percentile"]),
                  default=None, help="Static int8 calibration [default: minmax].")
    @click.option("--calibration-size", type=int, default=None, help="Calibration texts [default: 128].")
    @click.option("--min-cosine", type=float, default=None,
                  help="Fail below this mean cosine (default 0.9999 fp32, 0.999 fp16/bf16, 0.99 int8).")
    @click.option("--auto-exclude/--no-auto-exclude", default=None,
                  help="Keep the most sensitive nodes in float until --min-cosine holds "
                       "[default: on for dynamic-int8, off otherwise].")
    @click.option("--exclude-node", "exclude_nodes", multiple=True, help="Node name to keep in float (repeatable).")
    @click.option("--backend", type=click.Choice(["onnx", "openvino"]), default=None,
                  help="Backend the export runs on [default: the config's, else onnx].")
    @click.option("--config", "config_path", default=None,
                  help="TOML pipeline: [encoder] names what to export, [exporter] the backend "
                       "(use) and its options; flags override it.")
    @click.option("--opset", type=int, default=None, help="ONNX opset (default 17).")
    @click.option("--external-data", is_flag=True, default=None, help="Weights in model.onnx.data (automatic over 2 GB).")
    @click.option("--force", is_flag=True, help="Replace an existing --out folder.")
    @click.option("--gate", "gate_data", default=None,
                  help="Dataset: also judge the exported model on its task (cold-start NDCG@10 of "
                       "content, RMSE of ridge on a sample split) against torch fp32; a drop over "
                       "--max-drop fails the export (nothing written).")
    @click.option("--gate-format", default="auto", show_default=True, help="Format of --gate's dataset.")
    @click.option("--max-drop", default="1%", show_default=True,
                  help="--gate: largest relative loss of a downstream metric vs torch fp32.")
    @gate_interactions_option("--gate")
    @wide_option
    def export_command(encoder_name, init, pooling, normalize, max_length, out, optimize,
                       quantize, preset, per_channel, calibration, calibration_format,
                       calibration_method, calibration_size, min_cosine, auto_exclude,
                       exclude_nodes, backend, config_path, opset, external_data, force, gate_data,
                       gate_format, max_drop, gate_interactions, wide):  # fmt: skip
        settings = api.export_settings(
            config_path, encoder=encoder_name, init=init, pooling=pooling, normalize=normalize,
            max_length=max_length, backend=backend, optimize=optimize, quantize=quantize,
            preset=preset, per_channel=per_channel, calibration=calibration,
            calibration_format=calibration_format, calibration_method=calibration_method,
            calibration_size=calibration_size, min_cosine=min_cosine, auto_exclude=auto_exclude,
            exclude_nodes=exclude_nodes, opset=opset, external_data=external_data, gate=gate_data,
            gate_format=gate_format, max_drop=max_drop, gate_interactions=gate_interactions,
        )  # fmt: skip
        rows = []
        try:
            manifest = api.export(out=out, settings=settings, force=force, on_step=rows.append,
                                  echo=progress.say)  # fmt: skip
        finally:
            if rows:
                print_table(rows, wide=wide)
        src = manifest["source"]
        label = " (RANDOM weights)" if src["random_init"] else ""
        click.echo(
            f"exported {manifest['family']} {src['model']}{label} -> {out} "
            f"(default file {manifest['default_file']}, pooling {manifest['pooling']})"
        )

"""Built-in exporter plugin: exporters ``onnx`` / ``openvino`` and the encoder backends that
run their artifact folders. Registered like any third-party plugin; nothing heavy is
imported here (torch, onnx, onnxruntime and openvino load inside the functions that use them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recfeat.components import Exporter
from recfeat.plugin.hookspecs import hookimpl
from recfeat.plugin.registry import get_registry


class OnnxExporter(Exporter):
    """Encoder + pooling (+ L2 norm) as one ONNX graph, optimised, quantised and validated."""

    name = "onnx"
    format = "onnx"

    def __init__(
        self,
        *,
        optimize: str | None = None,
        quantize: str | None = None,
        preset: str | None = None,
        per_channel: bool | None = None,
        calibration_method: str = "minmax",
        calibration_size: int = 128,
        min_cosine: float | None = None,
        auto_exclude: bool | None = None,  # None: on for dynamic-int8
        exclude_nodes: tuple[str, ...] = (),
        opset: int | None = None,
        external_data: bool | None = None,
    ):
        self.optimize = optimize
        self.quantize = quantize
        self.preset = preset
        self.per_channel = per_channel
        self.calibration_method = calibration_method
        self.calibration_size = calibration_size
        self.min_cosine = min_cosine
        self.auto_exclude = auto_exclude
        self.exclude_nodes = tuple(exclude_nodes)
        self.opset = opset
        self.external_data = external_data

    def validate(self) -> None:
        """Value checks the registry (and ``recfeat config validate``) run before any work."""
        from .pipeline import check_settings

        check_settings(optimize=self.optimize, quantize=self.quantize, preset=self.preset,
                       calibration_method=self.calibration_method, min_cosine=self.min_cosine)  # fmt: skip

    def export(
        self,
        encoder,
        out_dir: str | Path,
        *,
        texts: Sequence[str] | None = None,
        force: bool = False,
        on_step: Callable[[Any], None] | None = None,
        check: Callable[[Path, dict[str, Any]], dict[str, Any] | None] | None = None,
        **encoder_overrides: Any,
    ) -> dict[str, Any]:
        """Export ``encoder`` (a torch encoder instance or registered name) to ``out_dir``.

        ``texts``: the user's corpus, for the validation sample and static calibration.
        ``encoder_overrides``: model, init, pooling, normalize, max_length. Returns the
        manifest; raises ValidationFailedError (and writes nothing) below the thresholds.
        ``check(folder, manifest)``: a last test of the finished folder before it is
        committed (``recfeat export --gate``); see ``pipeline.run_export``.
        """
        from .pipeline import ExportSpec, run_export, spec_from_encoder

        if isinstance(encoder, str):
            encoder = get_registry("encoder").create(encoder)
        spec = spec_from_encoder(encoder, **encoder_overrides)
        for field in (
            "optimize", "quantize", "preset", "per_channel", "calibration_method",
            "calibration_size", "min_cosine", "auto_exclude", "exclude_nodes", "opset",
            "external_data",
        ):  # fmt: skip
            setattr(spec, field, getattr(self, field))
        spec.texts = list(texts) if texts is not None else None
        spec.format = self.format
        if not isinstance(spec, ExportSpec):  # pragma: no cover - defensive
            raise TypeError(spec)
        return run_export(spec, out_dir, force=force, on_step=on_step, check=check)


class OpenVinoExporter(OnnxExporter):
    """ONNX -> OpenVINO IR (fp32 file, bf16 inference hint; int8 via NNCF), validated."""

    name = "openvino"
    format = "openvino"


@hookimpl
def register_exporters(register):
    register(OnnxExporter, name="onnx")
    register(OpenVinoExporter, name="openvino")


@hookimpl
def register_encoders(register):
    from .runtime_onnx import OnnxEncoder
    from .runtime_openvino import OpenVinoEncoder

    register(OnnxEncoder, name="onnx")
    register(OpenVinoEncoder, name="openvino")

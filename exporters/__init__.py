"""Exporters: encoder (pooling included) -> optimized, quantized, validated ONNX / OpenVINO."""

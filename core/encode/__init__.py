"""The encoding engine: tokenise, plan batches by token budget, run a backend (torch, ONNX
Runtime, OpenVINO), pool, restore order, count tokens and truncation."""

"""``recfeat serve``: embeddings (OpenAI-compatible and recfeat's own) and recommendations
over HTTP, with dynamic micro-batching. This command parses the flags into
``recfeat.api.serve_settings`` and runs ``recfeat.api.serve`` (docs/serving.md).
"""

from __future__ import annotations

import click

import recfeat.api as api


@click.command("serve")
@click.option("--encoder", default=None,
              help="Text encoder: a registry name, a Hugging Face model folder, or an export "
                   "folder [default: the config's [encoder], else minilm].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML pipeline ([encoder], cleaners, [dataset] for --data); flags override it.")
@click.option("--backend", default=None, help="torch, onnx or openvino (default: torch, or "
              "what an export folder holds).")
@click.option("--precision", default=None, help="fp32, bf16, fp16 (CUDA), int8 (exports).")
@click.option("--device", default=None, help="torch device: cpu (default) or cuda.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads of the encoder (default: the runtime's; one replica per core set).")
@click.option("--model", default=None, metavar="MODEL_FILE",
              help="Recommendation model saved by `recfeat train`, for POST /recommend.")
@click.option("--data", default=None, metavar="DATASET",
              help="Dataset whose item texts are encoded at start (text-profile recommendations).")
@click.option("--format", "fmt", default=None,
              help="Format of --data [default: the config's [dataset], else auto].")
@click.option("--item-features", default=None, metavar="FILE.parquet",
              help="Item vectors from `recfeat extract --level item` (same encoder), instead "
              "of encoding --data's texts at start.")
@click.option("--cleaners", default=None,
              help="Cleaner chain for input texts (default: the config's cleaners, else "
                   "extract's default; 'none': raw).")
@click.option("--keep-pii", is_flag=True,
              help="Leave personal data in input texts: the default chain without pii "
                   "(docs/privacy.md).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 exposes the server to the network).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port; 0 picks a free one (the start-up line says which).")
@click.option("--api-key", default=None,
              help="Require 'Authorization: Bearer KEY' on every route but /health and /ready "
              "[default: env RECFEAT_API_KEY; unset: no key].")
@click.option("--max-batch-tokens", type=click.IntRange(min=1), default=8192, show_default=True,
              help="Token budget of one micro-batch (one engine call); a call is also cut at "
                   "about 1 s of engine time, learned from the server's own calls.")
@click.option("--batch-window-ms", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Longest wait for more requests to join a batch.")
@click.option("--max-queue", type=click.IntRange(min=1), default=256, show_default=True,
              help="Requests waiting at most; more get 429 with Retry-After.")
@click.option("--max-inputs", type=click.IntRange(min=1), default=256, show_default=True,
              help="Texts in one request at most (413 above).")
@click.option("--max-chars", type=click.IntRange(min=1), default=16384, show_default=True,
              help="Characters in one text at most (413 above).")
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=8 * 1024 * 1024,
              show_default=True, help="Request body size at most (413 above).")
@click.option("--request-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds a request may wait for its vectors (503 after).")
@click.option("--body-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Seconds a client has to send the whole request body "
              "(408 after).")
@click.option("--cache-size", type=click.IntRange(min=0), default=10000, show_default=True,
              help="Texts kept in the in-memory LRU cache (0: off).")
@click.option("--max-items", type=click.IntRange(min=1), default=1_000_000, show_default=True,
              help="Items the store holds at most, start-up items included (507 above).")
@click.option("--index", default="auto", show_default=True, metavar="exact|hnsw|auto",
              help="Top-k search of text-profile recommendations: exact scores every item; "
              "hnsw is approximate (pip install 'recfeat[ann]'); auto is hnsw from 100,000 "
              "items when faiss is installed.")
@click.option("--trust", is_flag=True,
              help="Also open an OLD pickle model file (runs code from it; only your own files).")
def serve_command(encoder, config_path, backend, precision, device, threads, model, data, fmt,
                  item_features, cleaners, keep_pii, host, port, api_key, max_batch_tokens,
                  batch_window_ms, max_queue, max_inputs, max_chars, max_body_bytes,
                  request_timeout, body_timeout, cache_size, max_items, index, trust) -> None:  # fmt: skip
    """Serve embeddings and recommendations over HTTP until SIGTERM / Ctrl-C."""
    settings = api.serve_settings(
        config_path, encoder=encoder, backend=backend, precision=precision, device=device,
        threads=threads, cleaners=cleaners, keep_pii=keep_pii, model=model, trust=trust, data=data, format=fmt,
        item_features=item_features, host=host, port=port, api_key=api_key,
        max_batch_tokens=max_batch_tokens, batch_window_ms=batch_window_ms,
        max_queue=max_queue, max_inputs=max_inputs, max_chars=max_chars,
        max_body_bytes=max_body_bytes, request_timeout=request_timeout,
        body_timeout=body_timeout, cache_size=cache_size, max_items=max_items, index=index,
    )  # fmt: skip
    api.serve(settings=settings, echo=lambda line: click.echo(line))


def register(cli: click.Group) -> None:
    cli.add_command(serve_command)

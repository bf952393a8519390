"""``recfeat serve``: embeddings and recommendations over HTTP (FastAPI + uvicorn).

One job per module: ``state`` (settings and shared state), ``errors`` (one-line JSON
errors), ``schemas`` (request bodies), ``auth`` (bearer key), ``middleware`` (the gate:
metrics, auth, shutdown, body limit and deadline, disconnects), ``cache`` (LRU of
vectors), ``metrics`` (Prometheus), ``batcher`` (the bounded queue and the fair
micro-batching worker), ``embedder`` (limits, clean, cache, batch, encode through the one
engine), ``items`` (the item vector store, bounded ids and size), ``recommender`` (model,
text-profile and popularity paths), ``index`` (exact and approximate top-k search for the
text profile, ``--index``), ``app`` (routes), ``server`` (load, warm up, bind, run, shut down
gracefully). fastapi, faiss, uvicorn, prometheus_client and torch are imported inside
functions, so ``recfeat --help`` stays instant; docs/serving.md is the guide.
"""

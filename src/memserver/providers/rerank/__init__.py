"""Rerankers: the port (`base`), the HTTP adapter for `/rerank` servers (`http`), the per-process breaker."""

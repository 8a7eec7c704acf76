"""Offline all-MiniLM-L6-v2 on ONNX Runtime, with request coalescing.

Concurrent callers' texts are gathered into one model call: while the model runs a batch,
new requests queue up and become the next batch. Throughput then tracks the model's batched
speed instead of its one-sentence-at-a-time speed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from memserver.providers.embedder.minilm_onnx import HIDDEN, ensure_model_file, weights_dir
from memserver.providers.errors import ProviderError

log = logging.getLogger(__name__)

MAX_TOKENS = 256  # the model's max_seq_length in sentence-transformers


class LocalEmbedder:
    """all-MiniLM-L6-v2, 384 dimensions, CPU."""

    dim = HIDDEN

    def __init__(self, cache_dir: Path, *, quantized: bool = True, threads: int = 0, max_batch: int = 32,
                 cache_size: int = 4096):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.name = f"local:all-MiniLM-L6-v2{'-int8' if quantized else ''}"
        model_path = ensure_model_file(cache_dir, quantized=quantized)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        # Idle ORT threads must not spin: the API and Postgres share these cores.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        tok = Tokenizer.from_file(str(weights_dir() / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(MAX_TOKENS)
        self._tokenizer = tok
        self._max_batch = max_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")
        self._queue: asyncio.Queue[tuple[list[str], asyncio.Future[NDArray[np.float32]]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._cache: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._cache_size = cache_size
        self.calls = 0  # model invocations, for benchmarks

    # -- synchronous core (runs on the executor thread) -----------------------------------------
    def embed_sync(self, texts: Sequence[str]) -> NDArray[np.float32]:
        out = np.empty((len(texts), HIDDEN), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # little padding per batch
        for start in range(0, len(order), self._max_batch):
            idx = order[start : start + self._max_batch]
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            self.calls += 1
            out[idx] = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out

    # -- async front --------------------------------------------------------------------------
    async def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        result = np.empty((len(texts), HIDDEN), dtype=np.float32)
        missing: list[int] = []
        for i, t in enumerate(texts):
            hit = self._cache.get(t) if self._cache_size else None
            if hit is None:
                missing.append(i)
            else:
                result[i] = hit
        if missing:
            unique = list(dict.fromkeys(texts[i] for i in missing))
            vectors = await self._submit(unique)
            by_text = dict(zip(unique, vectors, strict=True))
            for i in missing:
                result[i] = by_text[texts[i]]
            if self._cache_size:
                for t, v in by_text.items():
                    self._cache[t] = v
                    if len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        return result

    async def _submit(self, texts: list[str]) -> NDArray[np.float32]:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run_batches(self._queue), name="embedder-batcher")
        fut: asyncio.Future[NDArray[np.float32]] = asyncio.get_running_loop().create_future()
        await self._queue.put((texts, fut))
        return await fut

    async def _run_batches(self, queue: asyncio.Queue[tuple[list[str], asyncio.Future[NDArray[np.float32]]]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await queue.get()]
            total = len(jobs[0][0])
            while not queue.empty() and total < self._max_batch * 4:
                job = queue.get_nowait()
                jobs.append(job)
                total += len(job[0])
            texts = [t for job_texts, _ in jobs for t in job_texts]
            try:
                vectors = await loop.run_in_executor(self._executor, self.embed_sync, texts)
            except Exception as exc:  # surface the model failure to every waiting request
                log.exception("local embedder failed")
                for _, fut in jobs:
                    if not fut.done():
                        fut.set_exception(ProviderError(f"local embedder failed: {exc}"))
                continue
            offset = 0
            for job_texts, fut in jobs:
                if not fut.done():
                    fut.set_result(vectors[offset : offset + len(job_texts)])
                offset += len(job_texts)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

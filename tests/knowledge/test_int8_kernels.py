"""The embedding model's graph on int8 kernels (knowledge/int8_kernels.py), checked
against the same file run as published (its weights unpacked to float32)."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort  # type: ignore[import-untyped]
import pytest
from onnx import TensorProto, helper, numpy_helper

from cybergine.knowledge.embeddings import LocalMiniLM, default_model_path
from cybergine.knowledge.int8_kernels import int8_kernels, x86_without_vnni

QUESTIONS = [
    "How do I reset my password?",
    "Where is my parcel?",
    "Do you ship to France, and how long does it take?",
    "ok",
    "Refunds are issued within 14 days of receiving the returned item, to the original "
    "payment method. Items must be unused and in their original packaging.",
]


@pytest.fixture(scope="module")
def published() -> bytes:
    return default_model_path().read_bytes()


def vectors(model: bytes, provider: LocalMiniLM) -> npt.NDArray[np.float32]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    rows = []
    for ids in provider._encode(QUESTIONS):
        input_ids = np.array([ids], dtype=np.int64)
        feeds = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
        if "token_type_ids" in {i.name for i in session.get_inputs()}:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        pooled = session.run(None, feeds)[0][0].mean(axis=0)
        rows.append(pooled / np.linalg.norm(pooled))
    return np.array(rows)


def test_every_weight_matrix_runs_on_integer_kernels(published: bytes) -> None:
    before = onnx.load_from_string(published).graph
    rewritten = int8_kernels(published, unsigned_weights=False)
    onnx.checker.check_model(rewritten)
    after = onnx.load_from_string(rewritten).graph
    ops = collections.Counter(node.op_type for node in after.node)
    assert ops["MatMulInteger"] == 36  # 6 layers x (query, key, value, output, 2 feed-forward)
    assert ops["DynamicQuantizeLinear"] == 24  # one per distinct MatMul input, shared by Q/K/V
    # The attention's activation-by-activation products stay in float32.
    assert ops["MatMul"] == collections.Counter(n.op_type for n in before.node)["MatMul"] - 36
    # No int8 constant is unpacked to float32 any more, and the float32 constants left
    # are small: the word embeddings stay an int8 table.
    constants = {t.name: t for t in after.initializer}
    producers = {output: node for node in after.node for output in node.output}
    for node in after.node:
        if node.op_type == "Cast" and node.input[0] in constants:
            assert constants[node.input[0]].data_type != TensorProto.INT8
    floats = [
        numpy_helper.to_array(t) for t in after.initializer if t.data_type == TensorProto.FLOAT
    ]
    assert max(a.size for a in floats) < 384 * 512 * 1.01  # position embeddings' scales, biases
    assert all(producers.get(t.name) is None for t in after.initializer)


def test_vectors_match_the_published_computation(published: bytes) -> None:
    provider = LocalMiniLM()
    reference = vectors(published, provider)
    signed = vectors(int8_kernels(published, unsigned_weights=False), provider)
    unsigned = vectors(int8_kernels(published, unsigned_weights=True), provider)
    # The activations are 8-bit, so not equal (least for a two-word-piece "ok", ~0.977);
    # a wrong scale or axis would give ~0.
    cosines = (signed * reference).sum(axis=1)
    assert cosines.min() > 0.97
    assert cosines.mean() > 0.99
    # uint8 weights (+128, zero point 128) are the same products, exactly.
    np.testing.assert_allclose(unsigned, signed, atol=1e-5)


def test_the_provider_runs_the_rewritten_graph(published: bytes) -> None:
    provider = LocalMiniLM()
    expected = vectors(int8_kernels(published), provider)
    np.testing.assert_allclose(np.array(provider._embed_now(QUESTIONS)), expected, atol=1e-5)


def test_a_float32_model_is_left_as_it_is(tmp_path: Path) -> None:
    weights = numpy_helper.from_array(np.eye(4, dtype=np.float32), "weights")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "weights"], ["y"])],
        "float32",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [weights],
    )
    data = helper.make_model(graph).SerializeToString()
    assert int8_kernels(data) == data


def dequantizing_model(scales: npt.NDArray[np.float32]) -> bytes:
    """``x @ (float(W) * scales)`` for an int8 ``W`` of 4 x 4, as the published file does."""
    weights = np.arange(-8, 8, dtype=np.int8).reshape(4, 4) * 8
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["w_q"], ["w_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["w_f", "w_scale"], ["w"]),
            helper.make_node("MatMul", ["x", "w"], ["y"]),
        ],
        "dequantizing",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [numpy_helper.from_array(weights, "w_q"), numpy_helper.from_array(scales, "w_scale")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def run(model: bytes, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x})
    return np.asarray(y)


@pytest.mark.parametrize("unsigned_weights", [False, True])
def test_a_scale_per_column_factors_out_of_the_product(unsigned_weights: bool) -> None:
    x = np.array([[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -0.5, 1.0]], dtype=np.float32)
    model = dequantizing_model(np.array([[0.01, 0.02, 0.03, 0.04]], dtype=np.float32))
    rewritten = int8_kernels(model, unsigned_weights=unsigned_weights)
    onnx.checker.check_model(rewritten)
    ops = [node.op_type for node in onnx.load_from_string(rewritten).graph.node]
    assert "MatMulInteger" in ops
    assert "MatMul" not in ops
    # x is quantized to 8 bits over its range (-1..2): within a step of it, times |W|.
    np.testing.assert_allclose(run(rewritten, x), run(model, x), atol=0.05)


def test_a_scale_per_row_is_left_to_float32() -> None:
    model = dequantizing_model(np.array([[0.01], [0.02], [0.03], [0.04]], dtype=np.float32))
    assert int8_kernels(model) == model


@pytest.mark.parametrize(
    ("machine", "cpuinfo", "saturating"),
    [
        ("x86_64", "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n", False),
        ("x86_64", "flags\t\t: fpu sse2 avx2 avx_vnni\n", False),
        ("x86_64", "flags\t\t: fpu sse2 avx2 avx512f avx512bw\n", True),
        ("AMD64", None, True),  # cannot tell: the exact kernel
        ("aarch64", "Features\t: fp asimd asimddp\n", False),
    ],
)
def test_uint8_weights_where_int8_products_saturate(
    machine: str, cpuinfo: str | None, saturating: bool
) -> None:
    assert x86_without_vnni(machine, cpuinfo) is saturating

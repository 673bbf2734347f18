"""One small loader per inference engine, each importing only its own runtime, inside the
function: TensorFlow (fp32 SavedModel with memory-mapped weights), LiteRT (int8) and OpenVINO
(fp32 IR). `autotagger.model` picks one behind its lazy getter; nothing else imports these
runtimes.

Every classifier has `name` (the model's, whatever engine serves it), `engine`, `batching`
(whether stacking concurrent requests into one forward pays on this engine: the getter adds a
`MicroBatcher` only then), `infer(batch)` (probabilities and, when the model has that output,
the embedding, from one forward) and `predict(batch)` (the probabilities alone).
"""

from __future__ import annotations

import os
import queue
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

OUTPUTS = 1000
# OpenVINO's hints: LATENCY runs one stream on every core (one forward at a time, so the
# micro-batcher stacks concurrent requests); THROUGHPUT runs one stream per core with a pool of
# infer requests, each request batch 1 (no micro-batching). Chosen by measurement: `make bench`.
OPENVINO_HINTS = ("latency", "throughput")


@dataclass(frozen=True)
class Inference:
    """One forward's outputs: (N, 1000) probabilities and (N, D) L2-normalised embeddings, or
    None for a model without the embedding output (an artifact built before it existed)."""

    probabilities: np.ndarray
    embeddings: np.ndarray | None = None

    def rows(self, start: int, stop: int) -> Inference:
        embeddings = None if self.embeddings is None else self.embeddings[start:stop]
        return Inference(self.probabilities[start:stop], embeddings)


def pick_outputs(widths: list[int]) -> tuple[int, int | None]:
    """(index of the probabilities, index of the embedding or None) among outputs whose last
    dimensions are `widths`: outputs are told apart by shape, since converters reorder them."""
    probabilities = [i for i, w in enumerate(widths) if w == OUTPUTS]
    others = [i for i, w in enumerate(widths) if w != OUTPUTS]
    if len(probabilities) != 1 or len(others) > 1:
        raise ValueError(f"unexpected model outputs (last dimensions {widths})")
    return probabilities[0], (others[0] if others else None)


def split_outputs(outputs: Any) -> Inference:
    """A forward's result (one tensor, a list, or a dict of named outputs) as an Inference."""
    if isinstance(outputs, dict):
        arrays = [np.asarray(v, dtype=np.float32) for v in outputs.values()]
    elif isinstance(outputs, list | tuple):
        arrays = [np.asarray(v, dtype=np.float32) for v in outputs]
    else:
        arrays = [np.asarray(outputs, dtype=np.float32)]
    first, second = pick_outputs([int(a.shape[-1]) for a in arrays])
    return Inference(arrays[first], None if second is None else arrays[second])


def cores() -> int:
    """CPUs this process may run on (the container's share, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def mapped_weights(artifact: Path, entry: dict[str, Any]) -> list[np.ndarray]:
    """The artifact's weights as read-only views of one private memory map (no copy, no read:
    pages come from the page cache when first touched)."""
    if entry.get("dtype", "float32") != "float32":
        raise ValueError(f"{artifact}: unsupported weights dtype {entry.get('dtype')!r}")
    # mode "c" (private, copy-on-write): writable views, which DLPack can export; nothing writes.
    raw = np.memmap(artifact / entry["path"], dtype=np.uint8, mode="c")
    arrays = []
    for tensor in entry["tensors"]:
        shape = tuple(int(d) for d in tensor["shape"])
        start = int(tensor["offset"])
        size = int(np.prod(shape)) * 4
        if start + size > raw.size:
            raise ValueError(f"{artifact}: weights file is truncated")
        arrays.append(raw[start : start + size].view("<f4").reshape(shape))
    return arrays


# -- TensorFlow -----------------------------------------------------------------------------------


class TensorFlowClassifier:
    """A compiled forward pass with a fixed input signature (no `predict()` overhead).

    TensorFlow runs concurrent calls safely (they share its intra-op thread pool); stacking
    them into one forward pays (per-image time falls with the batch), hence `batching`.
    """

    engine = "tensorflow"
    batching = True
    embedding_dim: int | None = None  # set by the warm-up forward

    def __init__(self, forward: Any, name: str, keep: Any = None) -> None:
        self._forward = forward
        self._keep = keep  # what `forward` needs alive: the loaded SavedModel, mapped weights
        self.name = name

    def infer(self, batch: np.ndarray) -> Inference:
        return split_outputs(self._forward(batch))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.infer(batch).probabilities


def load_tensorflow(
    directory: Path, name: str, weights: dict[str, Any] | None
) -> TensorFlowClassifier:
    """A SavedModel: the artifact's graph fed the memory-mapped `weights.bin` (zero copy), or,
    `weights` None, a self-contained one (variables restored, i.e. copied)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))
    if weights is None:
        restored = getattr(loaded, "serve", None) or loaded.signatures["serving_default"]
        return TensorFlowClassifier(restored, name, keep=loaded)
    arrays = mapped_weights(directory.parent, weights)
    tensors = [tf.experimental.dlpack.from_dlpack(a.__dlpack__()) for a in arrays]
    serve = loaded.serve

    def forward(batch: np.ndarray) -> Any:
        return serve(batch, *tensors)

    return TensorFlowClassifier(forward, name, keep=(loaded, tensors, arrays))


# -- LiteRT (int8) --------------------------------------------------------------------------------


class LiteRTClassifier:
    """Dynamic-range int8 VGG16 under LiteRT (XNNPACK), without TensorFlow.

    An interpreter is not thread-safe: each is used by one thread at a time, taken from a small
    pool (by default one interpreter using every core; each extra one packs its own copy of the
    weights, +140 MB, for no throughput gain on a few cores). Images of a batch run one by one
    on the batch-1 graph: batching gives LiteRT no per-image gain here, and resizing the input
    would re-plan the graph.
    """

    engine = "litert"
    batching = False
    embedding_dim: int | None = None  # set by the warm-up forward

    def __init__(self, make: Any, name: str, pool_size: int = 1) -> None:
        self.name = name
        self._pool: queue.SimpleQueue[Any] = queue.SimpleQueue()
        first = make()
        self._input = first.get_input_details()[0]["index"]
        outputs = first.get_output_details()
        chosen, embedding = pick_outputs([int(d["shape"][-1]) for d in outputs])
        self._output = outputs[chosen]["index"]
        self._embedding = None if embedding is None else outputs[embedding]["index"]
        self._embedding_dim = None if embedding is None else int(outputs[embedding]["shape"][-1])
        self._pool.put(first)
        for _ in range(pool_size - 1):
            self._pool.put(make())

    def infer(self, batch: np.ndarray) -> Inference:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        interpreter = self._pool.get()
        try:
            out = np.empty((len(batch), OUTPUTS), dtype=np.float32)
            embeddings = (
                None
                if self._embedding_dim is None
                else np.empty((len(batch), self._embedding_dim), dtype=np.float32)
            )
            for i in range(len(batch)):
                interpreter.set_tensor(self._input, batch[i : i + 1])
                interpreter.invoke()
                out[i] = interpreter.get_tensor(self._output)[0]
                if embeddings is not None:
                    embeddings[i] = interpreter.get_tensor(self._embedding)[0]
            return Inference(out, embeddings)
        finally:
            self._pool.put(interpreter)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.infer(batch).probabilities


def load_litert(
    name: str, path: Path | None = None, content: bytes | None = None
) -> LiteRTClassifier:
    """LiteRT only (no TensorFlow import): `path` is memory-mapped by the interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    def make() -> Any:
        if path is not None:
            interpreter = Interpreter(model_path=str(path), num_threads=cores())
        else:
            interpreter = Interpreter(model_content=content, num_threads=cores())
        interpreter.allocate_tensors()
        return interpreter

    return LiteRTClassifier(make, name)


# -- OpenVINO (fp32 IR) ---------------------------------------------------------------------------


class OpenVINOClassifier:
    """A compiled OpenVINO model and a pool of infer requests (as many as the hint's streams:
    one under LATENCY, one per core under THROUGHPUT). A request serves one call at a time;
    `infer` releases the GIL, so the rest of other requests runs meanwhile."""

    engine = "openvino"
    outputs_known = True  # the compiled model's shapes give `embedding_dim`, no forward needed

    def __init__(self, compiled: Any, name: str, hint: str) -> None:
        self.name = name
        self.hint = hint
        self.batching = hint == "latency"  # one stream: stacking is the only way to use it
        self._compiled = compiled
        widths = [int(port.get_partial_shape()[-1].get_length()) for port in compiled.outputs]
        self._output, self._embedding = pick_outputs(widths)
        self.embedding_dim = None if self._embedding is None else widths[self._embedding]
        self.requests = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._pool: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(self.requests):
            self._pool.put(compiled.create_infer_request())

    def infer(self, batch: np.ndarray) -> Inference:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        request = self._pool.get()
        try:
            request.infer({0: batch}, share_inputs=True)
            # copies: the request's output buffers are reused by its next call
            probabilities = np.array(request.get_output_tensor(self._output).data, np.float32)
            embeddings = (
                None
                if self._embedding is None
                else np.array(request.get_output_tensor(self._embedding).data, np.float32)
            )
            return Inference(probabilities, embeddings)
        finally:
            self._pool.put(request)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.infer(batch).probabilities


def without_openvino_telemetry() -> None:
    """Keep `import openvino` from sending a usage event to Google Analytics. Unless a consent
    file in $HOME says otherwise, its model-conversion package (imported by `openvino` itself)
    sends one on import, from a child it forks off this process (mid-load, 1+ GB, gRPC
    running). A classification service sends nothing anywhere: with `openvino_telemetry`
    unimportable, OpenVINO uses its own no-op stand-in. Nothing else is changed."""
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]


def import_openvino() -> Any:
    """The `openvino` module, imported without its telemetry: what every import of it here
    (serving, building artifacts, tests, the bench) goes through."""
    without_openvino_telemetry()
    import openvino

    return openvino


def load_openvino(xml: Path, name: str, hint: str = "latency") -> OpenVINOClassifier:
    """The IR on OpenVINO's CPU plugin (no TensorFlow import). The `.bin` is memory-mapped;
    inference precision is pinned to fp32: on CPUs with AMX or AVX512-FP16 the plugin would
    otherwise default to bf16/fp16 and the labels would drift from TensorFlow's."""
    ov = import_openvino()
    if hint not in OPENVINO_HINTS:
        raise ValueError(f"OpenVINO hint must be one of {OPENVINO_HINTS}, got {hint!r}")
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(str(xml)),
        "CPU",
        {"PERFORMANCE_HINT": hint.upper(), "INFERENCE_PRECISION_HINT": "f32"},
    )
    return OpenVINOClassifier(compiled, name, hint)

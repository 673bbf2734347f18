"""The warm-up forward: done by a load nobody waits for (the preload), left to the request's own
forward when a request is the one waiting (OpenVINO knows its outputs without a forward); the
answers are the same either way. Loading OpenVINO sends no telemetry."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from autotagger import model


def _batch() -> np.ndarray:
    return np.random.default_rng(7).uniform(-110, 130, (2, *model.INPUT_SHAPE)).astype(np.float32)


@pytest.mark.slow
def test_a_request_loading_the_model_skips_the_warm_up_and_gets_the_same_answer(
    model_dir: Path,
) -> None:
    weights = str(model_dir)
    model.release(weights)
    skipped = model.warm_ups_skipped
    try:
        background = model.get_model(weights, engine="openvino", background=True)
        assert model.warm_ups_skipped == skipped  # nobody waited: warmed up
        assert model.embedding_dim(background) == 512
        expected = model.infer(background, _batch())
        model.release(weights)
        del background

        loaded: list[model.Classifier] = []
        callers = [
            threading.Thread(
                target=lambda: loaded.append(model.get_model(weights, engine="openvino"))
            )
            for _ in range(3)
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        assert model.warm_ups_skipped == skipped + 1  # one load, its warm-up left to a request
        assert len({id(c) for c in loaded}) == 1
        assert model.embedding_dim(loaded[0]) == 512
        got = model.infer(loaded[0], _batch())
        assert got.embeddings is not None and expected.embeddings is not None
        np.testing.assert_allclose(got.probabilities, expected.probabilities, rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.embeddings, expected.embeddings, rtol=0, atol=1e-6)
    finally:
        model.release(weights)


# Runs in a fresh interpreter: counts the forks made while OpenVINO is imported and the model
# loaded and used (OpenVINO's telemetry forks a child to send its usage event).
NO_TELEMETRY = """
import os, sys, json
forks = []
os.register_at_fork(before=lambda: forks.append(1))
from autotagger import model
import numpy as np
classifier = model.get_model(sys.argv[1], engine="openvino")
model.infer(classifier, np.zeros((1, *model.INPUT_SHAPE), np.float32))
import time; time.sleep(0.5)  # the event is sent from a background thread
print(json.dumps({"forks": len(forks), "telemetry": repr(sys.modules.get("openvino_telemetry"))}))
"""


@pytest.mark.slow
def test_loading_openvino_sends_no_telemetry(model_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_TELEMETRY, str(model_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {"forks": 0, "telemetry": "None"}

"""The serving side of the vocabulary in a fresh process: scikit-learn stays build side."""

from __future__ import annotations

from pathlib import Path


def test_serving_never_imports_scikit_learn() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    script = (
        "import sys\n"
        "from autotagger import pipeline, vocabulary, vocabulary_rescore\n"
        "from autotagger.queue import worker\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy', 'joblib')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(root / "function")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "[]"

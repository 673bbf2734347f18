"""What every command shares: exit codes, the one-line error, and the model the function uses."""

from __future__ import annotations

from autotagger import model
from autotagger.config import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BUDGET = 75  # EX_TEMPFAIL: the Admin API's hourly budget is spent; resume after the reset


class CliError(Exception):
    """Reported as one line on stderr; `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def classifier(settings: Settings) -> model.Classifier:
    """The model the function would use: MODEL_WEIGHTS, plus the other MODEL_* settings that
    this version of the settings has (precision, batch size), passed the way the pipeline does."""
    options = {
        name: getattr(settings, f"model_{name}")
        for name in ("precision", "max_batch", "engine", "openvino_hint")
        if hasattr(settings, f"model_{name}")
    }
    return model.get_model(settings.model_weights, **options)

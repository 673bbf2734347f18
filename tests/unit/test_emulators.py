"""How infra/emulators.py starts gcloud's emulators (the process itself is not started here)."""

from __future__ import annotations

from typing import Any

import pytest

from infra import emulators


@pytest.mark.parametrize("kind", ["firestore", "pubsub"])
@pytest.mark.parametrize("own", [None, "-Xmx512m"])
def test_the_emulators_jvm_compiles_with_c1_only_and_keeps_the_users_options(
    kind: emulators.EmulatorKind, own: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []

    class Started:
        pid = 0

        def __init__(self, command: list[str], **kwargs: Any) -> None:
            started.append({"command": command, **kwargs})

    if own is None:
        monkeypatch.delenv("JAVA_TOOL_OPTIONS", raising=False)
    else:
        monkeypatch.setenv("JAVA_TOOL_OPTIONS", own)
    monkeypatch.setattr(emulators.subprocess, "Popen", Started)
    monkeypatch.setattr(emulators, "wait_until_up", lambda *args: None)
    _, host = emulators.start_gcloud_emulator(kind, port=8470)
    assert host == "127.0.0.1:8470"
    (call,) = started
    assert f"--host-port={host}" in call["command"]
    options = call["env"]["JAVA_TOOL_OPTIONS"].split()
    assert "-XX:TieredStopAtLevel=1" in options
    assert own is None or options[0] == own

"""What `make run` uses when nothing is configured: a local Cloudinary, the best model it can get.

- `start_local_cloudinary(env, ...)`: with no `CLOUDINARY_URL`, the local Cloudinary
  (`infra/local_cloudinary/`) on 127.0.0.1 with a generated API key and secret, an unsigned
  upload preset for the page, and signed upload notifications to `on_upload` (as Cloudinary's
  notification URL does). It sets `CLOUDINARY_URL` (with `upload_prefix`),
  `CLOUDINARY_DELIVERY_HOSTS`, `CLOUDINARY_UPLOAD_PRESET` and `LOCAL_CLOUDINARY=1` in `env`, the
  environment of both functions. The secret travels in that environment only: never on a
  command line, never printed.
- `model_weights(env, ...)`: with no `MODEL_WEIGHTS`, VGG16 with ImageNet weights (Keras's
  download, once, then the serving artifact built into `.cache/`), else (offline) the seeded
  random weights, saying how to get real ones.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, MutableMapping
from pathlib import Path

import requests

from infra.local_cloudinary import CloudinaryStandin

ROOT = Path(__file__).resolve().parents[1]
LOCAL_CLOUD_NAME = "local"
LOCAL_PRESET = "autotagger_local"
DEFAULT_LOCAL_CLOUDINARY_PORT = 8082
# Keras's own URL for VGG16's ImageNet weights (keras.applications.vgg16.WEIGHTS_PATH); Keras
# caches the file in ~/.keras/models/ (KERAS_HOME).
KERAS_VGG16_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
)
IMAGENET_MODEL_DIRS = {
    "fp32": ROOT / ".cache" / "models" / "vgg16-imagenet-fp32",
    "int8": ROOT / ".cache" / "models" / "vgg16-imagenet-int8",
}
NETWORK_PROBE_S = 5.0
BUILD_TIMEOUT_S = 1800.0


def mask(secret: str) -> str:
    """`1234…` : enough to recognise a key in a log, never the whole of it."""
    return f"{secret[:4]}…" if len(secret) > 8 else "…"


def start_local_cloudinary(
    env: MutableMapping[str, str], on_upload_url: str, port: int = DEFAULT_LOCAL_CLOUDINARY_PORT
) -> CloudinaryStandin | None:
    """Start the local Cloudinary and point `env` at it; None (nothing started) when
    `CLOUDINARY_URL` is set."""
    if env.get("CLOUDINARY_URL", "").strip():
        return None
    standin = CloudinaryStandin(
        cloud_name=LOCAL_CLOUD_NAME,
        api_key=str(secrets.randbelow(9 * 10**14) + 10**14),  # 15 digits, like Cloudinary's
        api_secret=secrets.token_urlsafe(20),
        port=port,
    )
    with socket.socket() as probe:  # werkzeug would print and exit on a busy port
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug does
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SystemExit(
                f"the local Cloudinary cannot listen on 127.0.0.1:{port} ({exc.strerror}): "
                "set LOCAL_CLOUDINARY_PORT to a free port, or CLOUDINARY_URL to use your account"
            ) from None
    standin.start()
    try:
        standin.notification_url = on_upload_url.rstrip("/") + "/"
        # The first classification loads the model: give on_upload time to answer.
        standin.notification_timeout_s = 120.0
        created = requests.post(
            f"{standin.url}/v1_1/{standin.cloud_name}/upload_presets",
            data={"name": LOCAL_PRESET, "unsigned": "true"},
            auth=(standin.api_key, standin.api_secret),
            timeout=10,
        )
        created.raise_for_status()
    except BaseException:
        standin.stop()
        raise
    hosts = [h for h in env.get("CLOUDINARY_DELIVERY_HOSTS", "").split(",") if h.strip()]
    env.update(
        CLOUDINARY_URL=standin.cloudinary_url,
        CLOUDINARY_DELIVERY_HOSTS=",".join([*hosts, standin.delivery_host]),
        CLOUDINARY_UPLOAD_PRESET=LOCAL_PRESET,
        LOCAL_CLOUDINARY="1",
    )
    print(
        f"CLOUDINARY_URL is not set: local Cloudinary on {standin.url} (cloud "
        f"{standin.cloud_name!r}, generated API key {mask(standin.api_key)} and secret, unsigned "
        f"preset {LOCAL_PRESET!r}, upload notifications to {standin.notification_url}). No account "
        "needed; set CLOUDINARY_URL in .env to use yours."
    )
    return standin


def _reachable(url: str, timeout_s: float) -> bool:
    """True if `url` answers within `timeout_s` (DNS included: the probe runs in a thread)."""
    answered: list[bool] = []

    def probe() -> None:
        try:
            response = requests.head(url, timeout=timeout_s, allow_redirects=True)
            answered.append(response.status_code < 400)
        except requests.RequestException:
            answered.append(False)

    thread = threading.Thread(target=probe, name="weights-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(answered and answered[0])


def _is_built(directory: Path) -> bool:
    return (directory / "manifest.json").exists()


def build_imagenet_artifact(precision: str) -> Path:
    """Build (once) the ImageNet artifact in `.cache/`; int8 from the fp32 one."""
    directory = IMAGENET_MODEL_DIRS[precision]
    if _is_built(directory):
        return directory
    source = "imagenet" if precision == "fp32" else str(build_imagenet_artifact("fp32"))
    command = [sys.executable, str(ROOT / "infra" / "build_model.py"), "--weights", source]
    command += ["--out", str(directory), "--precision", precision]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=BUILD_TIMEOUT_S)
    return directory


def model_weights(
    env: MutableMapping[str, str],
    random_artifact: Callable[[str], Path],
    weights_url: str = KERAS_VGG16_WEIGHTS_URL,
    probe_s: float = NETWORK_PROBE_S,
) -> str:
    """`MODEL_WEIGHTS` for `make run`: as set, else ImageNet's artifact, else random weights
    (`random_artifact(precision)` builds those)."""
    if env.get("MODEL_WEIGHTS", "").strip():
        return env["MODEL_WEIGHTS"]
    precision = "int8" if env.get("MODEL_PRECISION", "").strip().lower() == "int8" else "fp32"
    directory = IMAGENET_MODEL_DIRS[precision]
    if _is_built(directory):
        print(f"MODEL_WEIGHTS is not set: VGG16 with ImageNet weights ({directory})")
        return str(directory)
    if _reachable(weights_url, probe_s):
        print("MODEL_WEIGHTS is not set: downloading VGG16's ImageNet weights (528 MB, once;")
        print(f"Keras caches them) and building {directory} ...", flush=True)
        try:
            return str(build_imagenet_artifact(precision))
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"building the ImageNet artifact failed ({exc}).")
    print(
        "MODEL_WEIGHTS is not set and VGG16's ImageNet weights could not be downloaded (offline?):"
    )
    print("using VGG16 with seeded random weights: labels are meaningless (the page says so).")
    print("For real labels, run `make run` once with internet access (the weights are cached in")
    print("~/.keras/models and the artifact in .cache/models/vgg16-imagenet-fp32), or build one")
    print("elsewhere with `python infra/build_model.py --weights imagenet --out DIR` and set")
    print("MODEL_WEIGHTS=DIR in .env.")
    return str(random_artifact(precision))


def local_cloudinary_port(env: MutableMapping[str, str]) -> int:
    """`LOCAL_CLOUDINARY_PORT` (make run only), 8082 by default."""
    raw = env.get("LOCAL_CLOUDINARY_PORT", "").strip()
    return int(raw) if raw else DEFAULT_LOCAL_CLOUDINARY_PORT

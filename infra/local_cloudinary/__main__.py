"""``python -m infra.local_cloudinary``: serve the stand-in until interrupted (demos)."""

from __future__ import annotations

import argparse
import time

from infra.local_cloudinary.signing import HASHES
from infra.local_cloudinary.standin import CloudinaryStandin


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted; prints the CLOUDINARY_URL to use."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.local_cloudinary",
        description="Local Cloudinary stand-in for demos and tests.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--cloud-name", default="demo")
    parser.add_argument("--api-key", default="123456789012345")
    parser.add_argument("--api-secret", default="standin-secret")
    parser.add_argument("--signature-algorithm", choices=sorted(HASHES), default="sha1")
    parser.add_argument("--notification-url", help="account-wide notification URL")
    args = parser.parse_args(argv)
    standin = CloudinaryStandin(
        args.cloud_name,
        args.api_key,
        args.api_secret,
        args.signature_algorithm,
        args.host,
        args.port,
    ).start(quiet=False)
    standin.notification_url = args.notification_url
    print(f"CLOUDINARY_URL={standin.cloudinary_url}", flush=True)
    print(
        f"delivery: {standin.url}/{standin.cloud_name}/image/upload/<public_id>.<ext>", flush=True
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()

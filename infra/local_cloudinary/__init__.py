"""The local Cloudinary: a stand-in for Cloudinary's HTTP APIs (Cloudinary ships no emulator).

One threaded WSGI server answers, in Cloudinary's documented formats:

* Upload API: ``POST /v1_1/<cloud>/<resource_type>/upload`` and ``.../tags`` (signed or unsigned);
* Admin API (basic auth): resources, resources by tag, upload presets, usage, ping, with the
  hourly budget's ``X-FeatureRateLimit-*`` headers (``admin_rate_limit`` simulates a small one);
* delivery: ``GET /<cloud>/<resource_type>/upload/[<transformation>/][v<version>/]<id>.<ext>``;
* webhooks: signed ``upload`` and ``resource_tags_changed`` notifications.

Point the real SDK at it with ``CLOUDINARY_URL=<standin.cloudinary_url>`` (it sets
``upload_prefix``); build delivery URLs with ``cname=standin.delivery_host, secure=False``.

Video (and audio, which Cloudinary stores as ``video``) is probed with PyAV at upload:
``duration``, ``width``/``height``, ``frame_rate`` and ``is_audio`` appear in upload responses,
notifications and the Admin API; a delivery URL of a video with an image extension is a frame of
it (``so_<seconds>``, else the middle frame, as Cloudinary's video thumbnails), decoded with PyAV
at that time and transformed like an image.

Deliberate deviations, all for a loopback test server: plain ``http`` everywhere (``secure_url``
too); remote-URL uploads fetch loopback URLs only; a video PyAV cannot read is stored undecoded
(no duration); notifications are POSTed once, never retried; only the transformations listed in
``media.parse_transformation`` exist. Run ``python -m infra.local_cloudinary --port 8090`` for
demos.

Modules, one job each: ``signing`` (strings to sign, signatures, basic auth), ``media`` (probes,
transformations, renditions, video frames), ``state`` (account, assets, presets, faults, logs),
``shapes`` (an asset's JSON), ``notifications`` (webhooks), ``upload_api``, ``admin_api``,
``delivery``, ``server`` (WSGI app, router, thread), ``standin`` (the ``CloudinaryStandin``
facade), ``params`` and ``responses`` (request parsing, Cloudinary's answers).
"""

from infra.local_cloudinary.media import parse_transformation, render
from infra.local_cloudinary.signing import sign, string_to_sign
from infra.local_cloudinary.standin import CloudinaryStandin
from infra.local_cloudinary.state import Fault

__all__ = [
    "CloudinaryStandin",
    "Fault",
    "parse_transformation",
    "render",
    "sign",
    "string_to_sign",
]

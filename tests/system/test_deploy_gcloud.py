"""Every gcloud command infra/deploy.sh can run passes the real gcloud's argument parser.

The commands are not listed here: they are whatever `DRY_RUN=1` prints (first deployment), under
configurations that together set every variable the script's `--help` names and take both sides
of each of its branches, plus whatever a real first deployment, re-deployment and secret-less
re-deployment run against the recording fake gcloud of tests/system/test_infra.py (the look-ups a
dry run cannot show). Each one is then parsed by the installed Google Cloud CLI (all in one of its
processes, each as `gcloud` would run it) with an empty CLOUDSDK_CONFIG and no account: a valid
command stops at "You do not currently have an active account selected"; a bad flag, choice or
value stops earlier with a parse error.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.support.gcloudignore import uploaded
from tests.system.test_infra import DEPLOY, FAKE_GCLOUD, ROOT, _deploy

GCLOUD = shutil.which("gcloud")
NO_ACCOUNT = "You do not currently have an active account selected"
pytestmark = pytest.mark.skipif(GCLOUD is None, reason="the Google Cloud CLI is not installed")

PASS_THROUGH = {
    "CLOUDINARY_DELIVERY_HOSTS": "res.cloudinary.com,cdn.example.com",
    "MODEL_PRECISION": "int8",
    "MODEL_MAX_BATCH": "8",
    "DOWNLOAD_RENDITION": "0",
    "WEBHOOK_MAX_AGE_S": "3600",
    "MAX_BODY_BYTES": "65536",
    "MAX_IMAGE_BYTES": "20000000",
    "MAX_IMAGE_PIXELS": "50000000",
    "DOWNLOAD_TIMEOUT_S": "15",
    "CLAIM_TTL_S": "360",
    "VIDEO_FRAMES": "4",
    "MAX_VIDEO_SECONDS": "600",
    "CONCEPT_THRESHOLD": "0.6",
    "VOCABULARY_REFRESH_S": "120",
    "PUBSUB_PUBLISH_TIMEOUT_S": "20",
    "MODEL_PRELOAD": "0",
    "MODEL_CACHE_DIR": "/tmp/models",
}
# Dry-run configurations (each on top of _deploy's PROJECT, BUCKET, MODEL_DIR, CLOUDINARY_URL).
# Together: every variable of `deploy.sh --help` set to a non-default value somewhere, and both
# sides of every branch (model uploaded or given, secret value given or kept, min instances,
# project from PROJECT, GOOGLE_CLOUD_PROJECT or gcloud's configuration).
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "every setting": {
        "REGION": "europe-west1",
        "FIRESTORE_LOCATION": "eur3",
        "FIRESTORE_DATABASE": "autotagger-db",
        "FIRESTORE_COLLECTION": "photos",
        "BUCKET": "other-models",
        "SECRET_NAME": "cld-url",
        "CLOUDINARY_UPLOAD_PRESET": "page-preset",
        "SERVICE_ACCOUNT": "tagger-sa",
        "ON_UPLOAD_NAME": "tagger-hook",
        "RESULTS_NAME": "tagger-page",
        "CONCURRENCY": "4",
        "MIN_INSTANCES": "1",
        "MAX_INSTANCES": "3",
        "TOP_K": "3",
        "TAG_THRESHOLD": "0.5",
        "TAG_PREFIX": "auto:",
        "LOG_LEVEL": "DEBUG",
        "PYTHON": sys.executable,
        **PASS_THROUGH,
        # access control: private (the default) with every upload pin set
        "TOKEN_SECRET_NAME": "tagger-token",
        "UPLOAD_MODE": "signed",
        "UPLOAD_FOLDER": "team/photos",
        "UPLOAD_ALLOWED_FORMATS": "jpg,png,mp4",
        "UPLOAD_MAX_BYTES": "10000000",
        "FORWARD_BUDGET_PER_MIN": "20",
        "FORWARD_BUDGET_PER_HOUR": "30",
        "ADMIN_API_QUOTA": "2000",
        # the Pub/Sub queue
        "WEBHOOK_MODE": "queue",
        "PUBSUB_TOPIC": "tagger-uploads",
        "ON_MESSAGE_NAME": "tagger-worker",
        "WORKER_MAX_INSTANCES": "50",
        "MAX_DELIVERY_ATTEMPTS": "10",
        # int8 lets on_upload ship without tensorflow-cpu
        "WITHOUT_TENSORFLOW": "1",
        "ON_UPLOAD_MEMORY": "3Gi",
        "NEAR_DUPLICATE_DISTANCE": "0.002",
    },
    "public results, OpenVINO engine, model given": {
        "RESULTS_ACCESS": "public",
        "MODEL_ENGINE": "openvino",
        "MODEL_OPENVINO_HINT": "throughput",
        "MODEL_WEIGHTS": "gs://shared-models/models/vgg16-imagenet",
    },
    "model given, secret kept, project from GOOGLE_CLOUD_PROJECT": {
        "PROJECT": "",
        "GOOGLE_CLOUD_PROJECT": "env-project",
        "MODEL_WEIGHTS": "gs://shared-models/models/vgg16-imagenet",
        "CLOUDINARY_URL": "",
        "MIN_INSTANCES": "0",
    },
}
# Named in --help but not deploy settings of their own: the dry-run switch, MODEL_DIR (_deploy
# always sets it, to a fresh artifact directory), THREADS (the function's, from CONCURRENCY) and
# README (where the help points to).
NOT_SETTINGS = {"DRY_RUN", "MODEL_DIR", "THREADS", "README"}


def _config_dir(tmp_path: Path, project: str | None = None) -> Path:
    """An empty gcloud configuration (no account); with `project` as core/project."""
    config = tmp_path / f"gcloud-config-{project or 'empty'}"
    config.mkdir(exist_ok=True)
    if project:
        subprocess.run(
            [GCLOUD or "gcloud", "config", "set", "project", project],
            env=_gcloud_env(config),
            capture_output=True,
            check=True,
            timeout=120,
        )
    return config


def _gcloud_env(config: Path) -> dict[str, str]:
    """Nothing of this machine's identity: PATH, an empty HOME and configuration, no prompts."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(config),
        "CLOUDSDK_CONFIG": str(config),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
    }


def _printed_gcloud_commands(output: str) -> list[list[str]]:
    """The gcloud commands of DRY_RUN's `+ ` lines (a pipeline's gcloud part; comments off)."""
    commands = []
    for line in output.splitlines():
        if not line.startswith("+ "):
            continue
        lexer = shlex.shlex(line[2:], posix=True, punctuation_chars="|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        segment: list[str] = []
        for token in [*lexer, "|"]:
            if token != "|":
                segment.append(token)
                continue
            if segment and segment[0] == "gcloud":
                commands.append(segment)
            segment = []
    return commands


def _help_variables() -> set[str]:
    usage = subprocess.run(
        ["bash", str(DEPLOY), "--help"], capture_output=True, text=True, check=True
    ).stdout
    environment = usage.split("Environment", 1)[1]
    return set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\b[A-Z]{4,}\b", environment))


# The installed CLI's own interpreter runs its own bootstrap (lib/gcloud.py) once, then parses
# every command with its CLI object, as the `gcloud` script would one by one: a process per
# command costs a second of start-up each, on a machine shared with CI jobs.
_GCLOUD_IN_ONE_PROCESS = r"""
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
import gcloud
gcloud._fix_google_module()
from googlecloudsdk.core import log
cli = gcloud._import_gcloud_main().CreateCLI([])
results = []
for args in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    log.Reset(stdout=out, stderr=err)
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.Execute(args)
        except SystemExit as exit:
            code = exit.code
        except BaseException as exc:
            code = repr(exc)
    results.append([code, err.getvalue()])
with open(sys.argv[2], "w") as answers:
    json.dump(results, answers)
"""


def _verdict(command: tuple[str, ...], code: object, stderr: str) -> tuple[str, str | None]:
    """(the command, None) when it reached the account check, else (it, the parser's error)."""
    if code != 0 and NO_ACCOUNT in stderr:
        return shlex.join(command), None
    return shlex.join(command), (stderr.strip() or f"exit {code}")[:600]


def _gcloud_python(config: Path) -> tuple[str, Path]:
    """The interpreter the installed CLI runs on and its lib/ directory, as it reports them."""
    info = subprocess.run(
        [GCLOUD or "gcloud", "info", "--format=value(basic.python_location,installation.sdk_root)"],
        env=_gcloud_env(config),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    python, root = info.stdout.split("\t")
    return python.strip(), Path(root.strip()) / "lib"


def _parse_errors(commands: list[list[str]], tmp_path: Path) -> dict[str, str]:
    """Parse each command (once) with the real gcloud, all in one of its processes; what did
    not reach the account check."""
    config = _config_dir(tmp_path)
    unique = sorted({tuple(c) for c in commands})
    python, lib = _gcloud_python(config)
    answers = tmp_path / "gcloud-answers.json"
    done = subprocess.run(
        [python, "-S", "-c", _GCLOUD_IN_ONE_PROCESS, str(lib), str(answers)],
        env=_gcloud_env(config),
        input=json.dumps([list(c[1:]) for c in unique]),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0 and answers.exists(), done.stderr[-3000:]
    results = [
        _verdict(c, code, err)
        for c, (code, err) in zip(unique, json.loads(answers.read_text()), strict=True)
    ]
    answers.unlink()
    assert len(results) == len(unique)
    return {command: error for command, error in results if error is not None}


def _parse_errors_one_by_one(commands: list[list[str]], tmp_path: Path) -> dict[str, str]:
    """The same check through the `gcloud` command itself, one process per command."""
    config = _config_dir(tmp_path)

    def check(command: tuple[str, ...]) -> tuple[str, str | None]:
        done = subprocess.run(
            [GCLOUD or "gcloud", *command[1:]],
            env=_gcloud_env(config),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return _verdict(command, done.returncode, done.stderr)

    unique = sorted({tuple(c) for c in commands})
    with ThreadPoolExecutor(max_workers=2) as pool:  # a 2-core machine shared with CI jobs
        results = list(pool.map(check, unique))
    assert len(results) == len(unique)
    return {command: error for command, error in results if error is not None}


def test_every_help_variable_is_exercised() -> None:
    """A variable added to --help must be added to CONFIGURATIONS, so its flags get checked."""
    exercised = {name for config in CONFIGURATIONS.values() for name in config} | NOT_SETTINGS
    exercised |= {"PROJECT", "CLOUDINARY_URL", "BUCKET", "MODEL_DIR"}  # _deploy's own
    assert _help_variables() - exercised == set()


def _dry_run_commands(tmp_path: Path) -> list[list[str]]:
    """What DRY_RUN prints (a first deployment) under each of CONFIGURATIONS."""
    commands = []
    for name, config in CONFIGURATIONS.items():
        done = _deploy(tmp_path, DRY_RUN="1", **config)
        assert done.returncode == 0, (name, done.stderr)
        printed = _printed_gcloud_commands(done.stdout)
        assert printed, name
        commands += printed
    return commands


def _recorded_commands(tmp_path: Path) -> list[list[str]]:
    """What real runs execute, recorded by the fake gcloud: a first deployment (defaults), a
    re-deployment (everything exists: the describe and URL look-ups, the secret compared), one
    without CLOUDINARY_URL (the secret's latest version checked), one with MIN_INSTANCES."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "gcloud"
    fake.write_text(f"#!{sys.executable}\n{FAKE_GCLOUD}")
    fake.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_GCLOUD_STATE": str(state)}
    for run in ({}, {}, {"CLOUDINARY_URL": ""}, {"MIN_INSTANCES": "2"}):
        done = _deploy(tmp_path, **env, **run)
        assert done.returncode == 0, done.stderr + done.stdout
    calls = [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]
    return [["gcloud", *call["args"]] for call in calls]


def test_every_command_deploy_sh_runs_passes_the_real_gcloud_parser(tmp_path) -> None:
    printed, recorded = _dry_run_commands(tmp_path), _recorded_commands(tmp_path)
    assert {a for c in printed for a in c if a.startswith("--project=")} == {
        "--project=demo-proj",
        "--project=env-project",
    }
    kinds = {" ".join(c[1:4]) for c in recorded}
    for look_up in ("functions describe", "secrets versions access", "secrets versions describe"):
        assert any(k.startswith(look_up) for k in kinds), look_up
    every = printed + recorded
    assert _parse_errors(every, tmp_path) == {}
    print(f"\n{len({tuple(c) for c in every})} distinct gcloud commands checked")


def test_a_bad_flag_is_caught(tmp_path) -> None:
    """The check itself can fail: a typo in a flag or a choice stops at the parser, in the same
    process as valid commands of the same groups; and it agrees with the `gcloud` command run
    once per command."""
    commands = [
        ["gcloud", "functions", "deploy", "f", "--gen2", "--concurrency=8", "--project=p"],
        ["gcloud", "functions", "deploy", "f", "--gen2", "--concurency=8", "--project=p"],
        [
            "gcloud",
            "firestore",
            "databases",
            "create",
            "--type=firestore-native",
            "--location=nam5",
            "--project=p",
        ],
        ["gcloud", "firestore", "databases", "create", "--type=firestore", "--project=p"],
        ["gcloud", "services", "enable", "run.googleapis.com", "--project=p"],
    ]
    errors = _parse_errors(commands, tmp_path)
    assert sorted(errors) == [
        "gcloud firestore databases create --type=firestore --project=p",
        "gcloud functions deploy f --gen2 --concurency=8 --project=p",
    ]
    assert all("ERROR: (gcloud." in error for error in errors.values())
    assert "--concurrency" in errors["gcloud functions deploy f --gen2 --concurency=8 --project=p"]
    one_by_one = _parse_errors_one_by_one(commands, tmp_path)
    assert sorted(one_by_one) == sorted(errors)
    for command, error in errors.items():
        assert error.splitlines()[0] == one_by_one[command].splitlines()[0]


def test_project_defaults_to_google_cloud_project_then_gcloud_config(tmp_path) -> None:
    env_only = _deploy(tmp_path, DRY_RUN="1", PROJECT="", GOOGLE_CLOUD_PROJECT="env-project")
    assert env_only.returncode == 0, env_only.stderr
    assert "--project=env-project" in env_only.stdout
    both = _deploy(tmp_path, DRY_RUN="1", PROJECT="explicit", GOOGLE_CLOUD_PROJECT="env-project")
    assert "--project=explicit" in both.stdout and "--project=env-project" not in both.stdout
    configured = _config_dir(tmp_path, "config-project")
    from_config = _deploy(tmp_path, DRY_RUN="1", PROJECT="", CLOUDSDK_CONFIG=str(configured))
    assert from_config.returncode == 0, from_config.stderr
    assert "--project=config-project" in from_config.stdout
    assert "GOOGLE_CLOUD_PROJECT=config-project" in from_config.stdout
    nothing = _deploy(tmp_path, DRY_RUN="1", PROJECT="", CLOUDSDK_CONFIG=str(_config_dir(tmp_path)))
    assert nothing.returncode == 2
    assert "PROJECT is not set" in nothing.stderr
    assert nothing.stdout == ""


# -- what each function uploads and installs -----------------------------------------------------

ENGINES = {"tensorflow", "tensorflow-cpu", "keras", "openvino", "ai-edge-litert", "tflite-runtime"}
# Before the recording fake gcloud: a copy of each deployed function's --source, as uploaded.
_KEEP_SOURCES = r"""
import os, pathlib, shutil, sys
_args = sys.argv[1:]
if _args[:2] == ["functions", "deploy"]:
    _source = next(a.split("=", 1)[1] for a in _args if a.startswith("--source="))
    _copy = pathlib.Path(os.environ["FAKE_GCLOUD_STATE"]) / "sources" / _args[2]
    shutil.rmtree(_copy, ignore_errors=True)
    shutil.copytree(_source, _copy)
"""


def _deployed_sources(tmp_path: Path, **env: str) -> dict[str, Path]:
    """A real run of deploy.sh against the fake gcloud: function name -> its uploaded source."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "gcloud"
    fake.write_text(f"#!{sys.executable}\n{_KEEP_SOURCES}\n{FAKE_GCLOUD}")
    fake.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    path = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_GCLOUD_STATE": str(state)}
    done = _deploy(tmp_path, **path, **env)
    assert done.returncode == 0, done.stderr + done.stdout
    return {source.name: source for source in (state / "sources").iterdir()}


def _pinned(requirements: Path) -> set[str]:
    names = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", requirements.read_text(), re.M)
    return {canonicalize_name(name) for name in names}


def test_each_function_installs_its_role_s_lock(tmp_path) -> None:
    sources = _deployed_sources(tmp_path / "default")
    assert sorted(sources) == [
        "autotagger-on-message",
        "autotagger-on-upload",
        "autotagger-results",
    ]
    results = sources["autotagger-results"] / "requirements.txt"
    assert results.read_bytes() == (ROOT / "requirements" / "serve-results.txt").read_bytes()
    assert _pinned(results) & ENGINES == set()
    assert {"functions-framework", "google-cloud-firestore", "cloudinary"} <= _pinned(results)
    for name in ("autotagger-on-upload", "autotagger-on-message"):
        classify = sources[name] / "requirements.txt"
        assert classify.read_bytes() == (ROOT / "function" / "requirements.txt").read_bytes()
        assert {"tensorflow-cpu", "keras", "openvino", "ai-edge-litert"} <= _pinned(classify)
        assert "--hash=sha256:" in classify.read_text()

    lite = _deployed_sources(tmp_path / "lite", WITHOUT_TENSORFLOW="1", MODEL_PRECISION="int8")
    on_upload = _pinned(lite["autotagger-on-upload"] / "requirements.txt")
    assert {"openvino", "ai-edge-litert"} <= on_upload
    assert on_upload & {"tensorflow", "tensorflow-cpu", "keras"} == set()
    assert "tensorflow-cpu" in _pinned(lite["autotagger-on-message"] / "requirements.txt")
    assert _pinned(lite["autotagger-results"] / "requirements.txt") & ENGINES == set()


def _gcloud_uploads(source: Path, tmp_path: Path) -> set[str]:
    """What the installed gcloud would upload from `source` (.gcloudignore applied)."""
    done = subprocess.run(
        [GCLOUD or "gcloud", "meta", "list-files-for-upload", str(source)],
        env=_gcloud_env(_config_dir(tmp_path)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return set(done.stdout.split())


def test_gcloud_uploads_no_cli_and_reads_gcloudignore_as_the_unit_tests_do(tmp_path) -> None:
    staged = _deployed_sources(tmp_path)["autotagger-results"]
    # leftovers of a local run or an install, as a copy of a checkout may carry
    (staged / "__pycache__").mkdir(exist_ok=True)
    (staged / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"")
    (staged / "autotagger.egg-info").mkdir(exist_ok=True)  # an editable install's is there
    (staged / "autotagger.egg-info" / "PKG-INFO").write_text("Name: autotagger\n")
    for source in (ROOT / "function", staged):
        files = _gcloud_uploads(source, tmp_path)
        assert files == uploaded(source), source
        assert {"main.py", "requirements.txt", "autotagger/pipeline.py"} <= files
        assert "autotagger/model/engines.py" in files and "web/index.html" in files
        assert not [f for f in files if f == "cli.py" or f.startswith("autotagger/cli/")]
        assert not [f for f in files if "__pycache__" in f or "egg-info" in f]

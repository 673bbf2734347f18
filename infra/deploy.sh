#!/usr/bin/env bash
# Deploy autotagger to Google Cloud: APIs, Firestore (+ indexes), the CLOUDINARY_URL secret, the
# model artifact in Cloud Storage, one service account per function (least privilege), the two
# gen2 HTTP functions and the queue worker.
#
# Idempotent: every resource is looked up first and only created when missing; deploys and IAM
# bindings converge to the same state; a secret version is added only when the value changed.
# DRY_RUN=1 prints every command (prefixed "+ ") instead of running it; the secret value is never
# printed, in either mode. See infra/README.md for the whole procedure.
set -euo pipefail

# BEGIN generated settings (python infra/settings_docs.py; declared in function/autotagger/config.py)
# Settings passed on to each function only when set.
ON_UPLOAD_SETTINGS=(CLOUDINARY_DELIVERY_HOSTS MODEL_PRECISION MODEL_MAX_BATCH MODEL_ENGINE
  MODEL_OPENVINO_HINT MODEL_PRELOAD MODEL_CACHE_DIR DOWNLOAD_RENDITION CONCEPT_THRESHOLD
  WEBHOOK_MAX_AGE_S MAX_BODY_BYTES MAX_IMAGE_BYTES MAX_IMAGE_PIXELS DOWNLOAD_TIMEOUT_S CLAIM_TTL_S
  VIDEO_FRAMES MAX_VIDEO_SECONDS FORWARD_BUDGET_PER_MIN FORWARD_BUDGET_PER_HOUR WEBHOOK_MODE
  PUBSUB_TOPIC PUBSUB_PUBLISH_TIMEOUT_S VOCABULARY_REFRESH_S)
ON_MESSAGE_SETTINGS=(CLOUDINARY_DELIVERY_HOSTS MODEL_PRECISION MODEL_MAX_BATCH MODEL_ENGINE
  MODEL_OPENVINO_HINT MODEL_PRELOAD MODEL_CACHE_DIR DOWNLOAD_RENDITION CONCEPT_THRESHOLD
  MAX_IMAGE_BYTES MAX_IMAGE_PIXELS DOWNLOAD_TIMEOUT_S CLAIM_TTL_S VIDEO_FRAMES MAX_VIDEO_SECONDS
  VOCABULARY_REFRESH_S)
RESULTS_SETTINGS=(CLOUDINARY_DELIVERY_HOSTS UPLOAD_MODE UPLOAD_FOLDER UPLOAD_ALLOWED_FORMATS
  UPLOAD_MAX_BYTES NEAR_DUPLICATE_DISTANCE)
# END generated settings

# Print names after a label, wrapped to 100 columns.
wrap_names() {
  local line="    $1:" name
  shift
  for name in "$@"; do
    if ((${#line} + ${#name} + 1 > 100)); then
      printf '%s\n' "$line"
      line="     "
    fi
    line+=" $name"
  done
  printf '%s\n' "$line"
}

usage() {
  cat <<'EOF'
usage: PROJECT=ID [REGION=us-central1] [BUCKET=NAME] [MODEL_DIR=DIR] [CLOUDINARY_URL=...] infra/deploy.sh

Environment (defaults in brackets):
  PROJECT               Google Cloud project id [$GOOGLE_CLOUD_PROJECT, else
                        `gcloud config get-value project`]
  REGION                functions, bucket and Firestore region [us-central1]
  FIRESTORE_LOCATION    Firestore location, fixed forever once created [$REGION]
  FIRESTORE_DATABASE    Firestore database id [(default)]
  FIRESTORE_COLLECTION  collection of the documents [classifications]
  BUCKET                Cloud Storage bucket for the model [$PROJECT-autotagger-models]
  MODEL_DIR             artifact from infra/build_model.py [build/vgg16-imagenet]
  MODEL_WEIGHTS         a gs:// URI to use as is (skips the upload of MODEL_DIR)
  CLOUDINARY_URL        stored in Secret Manager (a new version only when it changed);
                        unset: the secret's current version is kept
  SECRET_NAME           Secret Manager secret [autotagger-cloudinary-url]
  CLOUDINARY_UPLOAD_PRESET  the page's unsigned preset (infra/cloudinary_setup.py) [autotagger]
  SERVICE_ACCOUNT       prefix of the service accounts, one per function: -upload (on_upload),
                        -results, -worker (on_message), -trigger (pushes to on_message)
                        [autotagger-fn]
  ON_UPLOAD_NAME        [autotagger-on-upload]     RESULTS_NAME  [autotagger-results]
  CONCURRENCY           on_upload requests per instance = gunicorn THREADS [8]
  MIN_INSTANCES         on_upload warm instances (billed while idle) [unset = 0]
  MAX_INSTANCES         on_upload instance cap [10]
  TOP_K, TAG_THRESHOLD, TAG_PREFIX, LOG_LEVEL  passed to on_upload and on_message (defaults:
                        the function's; TAG_PREFIX also reaches results: the page's concept
                        filters query the tags as written)
  RESULTS_ACCESS        private (listings need the access key) or public (anyone may list:
                        a public demo, only when asked for) [private]
  TOKEN_SECRET_NAME     Secret Manager secret of the access key, created with a random value
                        when absent (private only) [autotagger-results-token]
  ADMIN_API_QUOTA       the Cloudinary plan's Admin API requests an hour (free 500, paid 2000)
                        [500]: /forward may spend a fifth of it across MAX_INSTANCES
  FORWARD_BUDGET_PER_HOUR  per on_upload instance [ADMIN_API_QUOTA / 5 / MAX_INSTANCES, >= 1]
  MODEL_ENGINE          auto | openvino (ships only the IR, 2Gi) | tensorflow [unset = auto]
  ON_UPLOAD_MEMORY      on_upload's memory [2Gi with MODEL_ENGINE=openvino, else 4Gi]
  WITHOUT_TENSORFLOW=1  deploy on_upload without tensorflow-cpu (OpenVINO or int8 only)
  Pub/Sub queue (README, "Queue mode"):
  WEBHOOK_MODE          inline | queue: on_upload classifies, or publishes to PUBSUB_TOPIC [inline]
  PUBSUB_TOPIC          uploads topic (+ "-dead-letter") [autotagger-uploads]
  ON_MESSAGE_NAME       the queue worker function [autotagger-on-message]
  WORKER_MAX_INSTANCES  on_message instance cap: the spend cap of a backfill [10]
  MAX_DELIVERY_ATTEMPTS deliveries of a message before the dead-letter topic (5-100), enough
                        that the retries outlast CLAIM_TTL_S [7]
  DRY_RUN=1             print the commands instead of running them
  Passed on to the functions that read them, only when set (README, "Configuration"):
EOF
  wrap_names on_upload "${ON_UPLOAD_SETTINGS[@]}"
  wrap_names on_message "${ON_MESSAGE_SETTINGS[@]}"
  wrap_names results "${RESULTS_SETTINGS[@]}"
}

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi
# The project as gcloud users expect: PROJECT, else GOOGLE_CLOUD_PROJECT, else gcloud's own.
PROJECT="${PROJECT:-${GOOGLE_CLOUD_PROJECT:-}}"
if [[ -z "$PROJECT" ]] && command -v gcloud >/dev/null; then
  PROJECT="$(gcloud config get-value project 2>/dev/null || true)"
fi
if [[ -z "$PROJECT" ]]; then
  echo "deploy.sh: PROJECT is not set (nor GOOGLE_CLOUD_PROJECT, nor gcloud's core/project)" >&2
  usage >&2
  exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REGION="${REGION:-us-central1}"
FIRESTORE_LOCATION="${FIRESTORE_LOCATION:-$REGION}"
FIRESTORE_DATABASE="${FIRESTORE_DATABASE:-(default)}"
FIRESTORE_COLLECTION="${FIRESTORE_COLLECTION:-classifications}"
BUCKET="${BUCKET:-$PROJECT-autotagger-models}"
MODEL_DIR="${MODEL_DIR:-$ROOT/build/vgg16-imagenet}"
SECRET_NAME="${SECRET_NAME:-autotagger-cloudinary-url}"
UPLOAD_PRESET="${CLOUDINARY_UPLOAD_PRESET:-autotagger}"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-autotagger-fn}"
sa_email() { printf '%s@%s.iam.gserviceaccount.com' "$SERVICE_ACCOUNT-$1" "$PROJECT"; }
UPLOAD_SA="$(sa_email upload)"    # on_upload: Firestore, CLOUDINARY_URL, the model, publishes
RESULTS_SA="$(sa_email results)"  # results: reads Firestore, CLOUDINARY_URL, the access key
WORKER_SA="$(sa_email worker)"    # on_message: Firestore, CLOUDINARY_URL, the model
TRIGGER_SA="$(sa_email trigger)"  # the Pub/Sub trigger: may invoke on_message, nothing else
ON_UPLOAD_NAME="${ON_UPLOAD_NAME:-autotagger-on-upload}"
RESULTS_NAME="${RESULTS_NAME:-autotagger-results}"
CONCURRENCY="${CONCURRENCY:-8}"
MAX_INSTANCES="${MAX_INSTANCES:-10}"
PYTHON="${PYTHON:-python3}"
DRY_RUN="${DRY_RUN:-}"
export CLOUDSDK_CORE_DISABLE_PROMPTS=1

die() {
  echo "deploy.sh: $*" >&2
  exit 1
}

is_dry() { [[ "$DRY_RUN" == 1 ]]; }

# Print a command the way it could be pasted back: plain words as they are, the rest in single
# quotes.
show() {
  local word out="+" sq="'" esc="'\\''"
  for word in "$@"; do
    if [[ "$word" =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
      out+=" $word"
    else
      out+=" '${word//$sq/$esc}'"
    fi
  done
  printf '%s' "$out"
}

# Run a command, or print it under DRY_RUN=1.
run() {
  if is_dry; then
    show "$@"
    printf '\n'
    return 0
  fi
  "$@"
}

# A look-up whose success means "already there". Under DRY_RUN it is printed and treated as
# missing, so the output shows every command a first deployment runs.
exists() {
  if is_dry; then
    show "$@"
    printf '  # check (dry run: assumed missing)\n'
    return 1
  fi
  "$@" >/dev/null 2>&1
}

step() { printf '\n== %s\n' "$*"; }

# --- prerequisites ---------------------------------------------------------------------------
[[ "$CONCURRENCY" =~ ^[1-9][0-9]*$ ]] || die "CONCURRENCY must be a positive integer"
[[ "$MAX_INSTANCES" =~ ^[1-9][0-9]*$ ]] || die "MAX_INSTANCES must be a positive integer"
[[ -z "${MIN_INSTANCES:-}" || "$MIN_INSTANCES" =~ ^[0-9]+$ ]] ||
  die "MIN_INSTANCES must be a non-negative integer"
# Service account ids are 6-30 characters: letters, digits and hyphens.
[[ "$SERVICE_ACCOUNT-results" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
  die "SERVICE_ACCOUNT must be a lowercase id of at most 22 characters (suffixes are added)"
# A claim must outlive the longest delivery (on_message's timeout), or a live one is taken over.
WORKER_TIMEOUT_S=300
CLAIM_TTL="${CLAIM_TTL_S:-330}"
[[ "$CLAIM_TTL" =~ ^[0-9]+$ && $CLAIM_TTL -gt $WORKER_TIMEOUT_S ]] ||
  die "CLAIM_TTL_S must be more than on_message's timeout ($WORKER_TIMEOUT_S s)"
if [[ -n "${CLOUDINARY_URL:-}" && "$CLOUDINARY_URL" != cloudinary://* ]]; then
  die "CLOUDINARY_URL must look like cloudinary://API_KEY:API_SECRET@CLOUD_NAME"
fi
if ! is_dry; then
  command -v gcloud >/dev/null || die "gcloud not found: install the Google Cloud CLI (or DRY_RUN=1)"
fi
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (needed to read firestore.indexes.json)"
if [[ -n "${MODEL_WEIGHTS:-}" ]]; then
  [[ "$MODEL_WEIGHTS" == gs://* ]] || die "MODEL_WEIGHTS must be a gs:// URI here"
  UPLOAD_MODEL=""
else
  [[ -f "$MODEL_DIR/manifest.json" ]] ||
    die "MODEL_DIR=$MODEL_DIR has no manifest.json: run infra/build_model.py first"
  MODEL_WEIGHTS="gs://$BUCKET/models/$(basename "$MODEL_DIR")"
  UPLOAD_MODEL=1
fi
# The optional settings (the generated lists above) are passed on only when set.
for name in FIRESTORE_COLLECTION TAG_PREFIX UPLOAD_PRESET "${ON_UPLOAD_SETTINGS[@]}" \
  "${ON_MESSAGE_SETTINGS[@]}" "${RESULTS_SETTINGS[@]}"; do
  [[ "${!name:-}" != *"|"* ]] || die "$name cannot contain '|' (the env-var delimiter)"
done

# --- access control settings (issue 10) ---------------------------------------------------------
RESULTS_ACCESS="${RESULTS_ACCESS:-private}"
TOKEN_SECRET_NAME="${TOKEN_SECRET_NAME:-autotagger-results-token}"
[[ "$RESULTS_ACCESS" == private || "$RESULTS_ACCESS" == public ]] ||
  die "RESULTS_ACCESS must be private or public (public only for a public demo)"
# The forward's hourly Admin API budget: across MAX_INSTANCES, a fifth of the plan's quota.
ADMIN_API_QUOTA="${ADMIN_API_QUOTA:-500}"
[[ "$ADMIN_API_QUOTA" =~ ^[1-9][0-9]*$ ]] || die "ADMIN_API_QUOTA must be a positive integer"
if [[ -z "${FORWARD_BUDGET_PER_HOUR:-}" ]]; then
  FORWARD_BUDGET_PER_HOUR=$((ADMIN_API_QUOTA / 5 / MAX_INSTANCES))
  [[ $FORWARD_BUDGET_PER_HOUR -ge 1 ]] || FORWARD_BUDGET_PER_HOUR=1
fi
access_env="|RESULTS_ACCESS=$RESULTS_ACCESS"
upload_mode="${UPLOAD_MODE:-$([[ "$RESULTS_ACCESS" == public ]] && echo unsigned || echo signed)}"
# --- OpenVINO engine (issue 14) ---------------------------------------------------------------
# MODEL_ENGINE=openvino ships only the artifact's OpenVINO IR (manifest.json + openvino/, to
# ...-openvino in the bucket) and serves it without TensorFlow; on_upload then fits in 2Gi (peak
# RSS measured by `make bench`, the IR's pages included: the gs:// copy lives in the in-memory
# /tmp and is memory-mapped, so it is counted once). MODEL_ENGINE=tensorflow ships the SavedModel
# half only (4Gi). Unset/auto: the whole artifact, 4Gi, the function picks (OpenVINO when the
# IR is there). WITHOUT_TENSORFLOW=1 (MODEL_ENGINE=openvino or MODEL_PRECISION=int8|fp16)
# deploys on_upload with the lock that has no TensorFlow (requirements/serve-classify-lite.txt):
# a smaller image and a faster build; TensorFlow stays in the repo for building artifacts.
MODEL_ENGINE="${MODEL_ENGINE:-}"
MODEL_SYNC_FLAGS=()
case "$MODEL_ENGINE" in
  "" | auto) ON_UPLOAD_MEMORY="${ON_UPLOAD_MEMORY:-4Gi}" ;;
  openvino)
    ON_UPLOAD_MEMORY="${ON_UPLOAD_MEMORY:-2Gi}"
    if [[ -n "$UPLOAD_MODEL" ]]; then
      grep -q '"openvino"' "$MODEL_DIR/manifest.json" ||
        die "MODEL_DIR=$MODEL_DIR has no OpenVINO IR: rebuild it with infra/build_model.py"
      MODEL_WEIGHTS+="-openvino"
      MODEL_SYNC_FLAGS=('--exclude=^(saved_model/.*|weights\.bin)$')
    fi
    ;;
  tensorflow)
    ON_UPLOAD_MEMORY="${ON_UPLOAD_MEMORY:-4Gi}"
    if [[ -n "$UPLOAD_MODEL" ]]; then
      MODEL_WEIGHTS+="-tensorflow"
      MODEL_SYNC_FLAGS=('--exclude=^openvino(-fp16)?/.*$')
    fi
    ;;
  *) die "MODEL_ENGINE must be auto, openvino or tensorflow" ;;
esac
[[ "$ON_UPLOAD_MEMORY" =~ ^[1-9][0-9]*(Mi|Gi)$ ]] || die "ON_UPLOAD_MEMORY must look like 2Gi"
[[ -z "${MODEL_OPENVINO_HINT:-}" || "$MODEL_OPENVINO_HINT" =~ ^(latency|throughput)$ ]] ||
  die "MODEL_OPENVINO_HINT must be latency or throughput"
# --- sources: each function with its role's lock ----------------------------------------------
# Cloud Functions installs the requirements.txt of the deployed source. function/requirements.txt
# is the lock of the functions that classify (on_upload, on_message: the engines); results, which
# loads no engine, deploys from a copy of function/ whose requirements.txt is its own lock. The
# locks are generated from pyproject.toml by `make lock` (docs/deploy.md); .gcloudignore keeps
# the CLI and the build leftovers out of every upload.
STAGING="$(mktemp -d)"
trap 'rm -rf "$STAGING"' EXIT
# Copy function/ to $STAGING/$1 with requirements/$2 as its requirements.txt.
stage_source() {
  [[ -f "$ROOT/requirements/$2" ]] || die "requirements/$2 is missing: run make lock"
  cp -R "$ROOT/function" "$STAGING/$1"
  cp "$ROOT/requirements/$2" "$STAGING/$1/requirements.txt"
}
CLASSIFY_SOURCE="$ROOT/function"
ON_UPLOAD_SOURCE="$CLASSIFY_SOURCE"
stage_source results serve-results.txt
RESULTS_SOURCE="$STAGING/results"
if [[ "${WITHOUT_TENSORFLOW:-}" == 1 ]]; then
  [[ "$MODEL_ENGINE" == openvino || "${MODEL_PRECISION:-}" =~ ^(int8|fp16)$ ]] ||
    die "WITHOUT_TENSORFLOW=1 needs MODEL_ENGINE=openvino or MODEL_PRECISION=int8|fp16"
  stage_source on_upload serve-classify-lite.txt
  ON_UPLOAD_SOURCE="$STAGING/on_upload"
  echo "on_upload without tensorflow-cpu: deployed from $ON_UPLOAD_SOURCE"
fi

# --- APIs --------------------------------------------------------------------------------------
step "APIs"
run gcloud services enable \
  cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com \
  artifactregistry.googleapis.com firestore.googleapis.com secretmanager.googleapis.com \
  storage.googleapis.com iam.googleapis.com pubsub.googleapis.com eventarc.googleapis.com \
  --project="$PROJECT"

# --- Firestore ---------------------------------------------------------------------------------
step "Firestore database $FIRESTORE_DATABASE and indexes (incl. the vector index of embedding)"
if ! exists gcloud firestore databases describe --database="$FIRESTORE_DATABASE" \
  --project="$PROJECT"; then
  run gcloud firestore databases create --database="$FIRESTORE_DATABASE" \
    --location="$FIRESTORE_LOCATION" --type=firestore-native --project="$PROJECT"
fi

# One line per composite index of infra/firestore.indexes.json (label and public_id, each newest
# first, for `?label=` and `?public_id=`; tags array-contains newest first for `?tag=`): scope,
# then field configs, tab separated. Every index there is for the documents' collection, so FIRESTORE_COLLECTION applies.
index_lines() {
  "$PYTHON" - "$ROOT/infra/firestore.indexes.json" <<'PY'
import json, sys
for index in json.load(open(sys.argv[1]))["indexes"]:
    configs = []
    for f in index["fields"]:
        if "arrayConfig" in f:
            configs.append(f"field-path={f['fieldPath']},array-config=contains")
        elif "vectorConfig" in f:  # the flat vector index "more like this" searches
            dimension = f["vectorConfig"]["dimension"]
            vector = json.dumps({"dimension": str(dimension), "flat": "{}"}, separators=(",", ":"))
            configs.append(f"field-path={f['fieldPath']},vector-config={vector}")
        else:
            configs.append(f"field-path={f['fieldPath']},order={f['order'].lower()}")
    scope = index.get("queryScope", "COLLECTION").lower().replace("_", "-")
    print("\t".join([scope, *configs]))
PY
}

create_index() {
  local scope="$1"
  shift
  local args=(gcloud firestore indexes composite create --database="$FIRESTORE_DATABASE"
    --collection-group="$FIRESTORE_COLLECTION" --query-scope="$scope" --async
    --project="$PROJECT")
  local config
  for config in "$@"; do
    args+=("--field-config=$config")
  done
  if is_dry; then
    run "${args[@]}"
    return 0
  fi
  local output
  if output="$("${args[@]}" 2>&1)"; then
    echo "index created (building in the background): $*"
  elif grep -Eqi "already.exists" <<<"$output"; then
    echo "index exists: $*"
  else
    echo "$output" >&2
    die "could not create the index $*"
  fi
}

index_count=0
while IFS=$'\t' read -r -a parts; do
  [[ ${#parts[@]} -gt 1 ]] || continue
  create_index "${parts[@]}"
  index_count=$((index_count + 1))
done < <(index_lines)
[[ $index_count -gt 0 ]] || die "no indexes found in infra/firestore.indexes.json"

# --- service accounts --------------------------------------------------------------------------
# One per function, each granted only what its function needs (below, next to each resource).
# Firestore access is conditioned to this one database; the page (results) only reads it.
step "service accounts $SERVICE_ACCOUNT-{upload,results,worker,trigger}"
for role_of in upload:"autotagger on_upload" results:"autotagger results (the page)" \
  worker:"autotagger on_message (queue worker)" trigger:"autotagger Pub/Sub trigger"; do
  suffix="${role_of%%:*}"
  if ! exists gcloud iam service-accounts describe "$(sa_email "$suffix")" --project="$PROJECT"; then
    run gcloud iam service-accounts create "$SERVICE_ACCOUNT-$suffix" \
      --display-name="${role_of#*:}" --project="$PROJECT"
  fi
done
database_only="expression=resource.name==\"projects/$PROJECT/databases/$FIRESTORE_DATABASE\""
database_only+=",title=autotagger-$FIRESTORE_DATABASE,description=only the autotagger database"
for grant in "$UPLOAD_SA:roles/datastore.user" "$WORKER_SA:roles/datastore.user" \
  "$RESULTS_SA:roles/datastore.viewer"; do
  run gcloud projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:${grant%%:*}" \
    --role="${grant#*:}" --condition="$database_only" --format=none
done

# --- secret ------------------------------------------------------------------------------------
step "secret $SECRET_NAME"
if ! exists gcloud secrets describe "$SECRET_NAME" --project="$PROJECT"; then
  run gcloud secrets create "$SECRET_NAME" --replication-policy=automatic --project="$PROJECT"
fi
if [[ -n "${CLOUDINARY_URL:-}" ]]; then
  if is_dry; then
    # Printed with a placeholder: the value itself never reaches the output.
    add_version="$(show gcloud secrets versions add "$SECRET_NAME" --data-file=- \
      --project="$PROJECT")"
    # shellcheck disable=SC2016  # the literal text "$CLOUDINARY_URL" is the point
    printf '+ printf %%s "$CLOUDINARY_URL" |%s  # only when it differs from the latest\n' \
      "${add_version#+}"
  else
    current="$(gcloud secrets versions access latest --secret="$SECRET_NAME" \
      --project="$PROJECT" 2>/dev/null || true)"
    if [[ "$current" == "$CLOUDINARY_URL" ]]; then
      echo "secret unchanged: no new version"
    else
      printf '%s' "$CLOUDINARY_URL" |
        gcloud secrets versions add "$SECRET_NAME" --data-file=- --project="$PROJECT"
    fi
    unset current
  fi
elif ! is_dry; then
  gcloud secrets versions describe latest --secret="$SECRET_NAME" --project="$PROJECT" \
    >/dev/null 2>&1 || die "the secret has no version yet: set CLOUDINARY_URL"
  echo "CLOUDINARY_URL is not set: keeping the secret's latest version"
fi
for account in "$UPLOAD_SA" "$RESULTS_SA" "$WORKER_SA"; do
  run gcloud secrets add-iam-policy-binding "$SECRET_NAME" --member="serviceAccount:$account" \
    --role=roles/secretmanager.secretAccessor --project="$PROJECT" --format=none
done

# --- access key of results (issue 10) ----------------------------------------------------------
# RESULTS_ACCESS=private: listings and upload signatures need a Bearer token, kept in Secret
# Manager. When the secret has no version, one is added with a strong random value, generated
# and piped to gcloud's stdin: it is never on a command line and never printed. results reads
# it through --set-secrets.
token_secret=""
if [[ "$RESULTS_ACCESS" == private ]]; then
  step "secret $TOKEN_SECRET_NAME (access key of $RESULTS_NAME)"
  if ! exists gcloud secrets describe "$TOKEN_SECRET_NAME" --project="$PROJECT"; then
    run gcloud secrets create "$TOKEN_SECRET_NAME" --replication-policy=automatic \
      --project="$PROJECT"
  fi
  new_token() { "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32), end="")'; }
  if is_dry; then
    add_token="$(show gcloud secrets versions add "$TOKEN_SECRET_NAME" --data-file=- \
      --project="$PROJECT")"
    # shellcheck disable=SC2016  # printed as it runs, the value is generated inside the pipe
    printf '+ %s -c %s |%s  # only when the secret has no version\n' "$PYTHON" \
      "'import secrets; print(secrets.token_urlsafe(32), end=\"\")'" "${add_token#+}"
  elif gcloud secrets versions describe latest --secret="$TOKEN_SECRET_NAME" \
    --project="$PROJECT" >/dev/null 2>&1; then
    echo "access key exists: keeping it"
  else
    new_token | gcloud secrets versions add "$TOKEN_SECRET_NAME" --data-file=- \
      --project="$PROJECT"
    echo "access key created (a random value)"
  fi
  run gcloud secrets add-iam-policy-binding "$TOKEN_SECRET_NAME" \
    --member="serviceAccount:$RESULTS_SA" --role=roles/secretmanager.secretAccessor \
    --project="$PROJECT" --format=none
  token_secret=",RESULTS_TOKEN=$TOKEN_SECRET_NAME:latest"
fi

# --- model artifact ----------------------------------------------------------------------------
step "model $MODEL_WEIGHTS"
MODEL_BUCKET="${MODEL_WEIGHTS#gs://}"
MODEL_BUCKET="${MODEL_BUCKET%%/*}"
if [[ -n "$UPLOAD_MODEL" ]]; then
  if ! exists gcloud storage buckets describe "gs://$BUCKET" --project="$PROJECT"; then
    run gcloud storage buckets create "gs://$BUCKET" --location="$REGION" \
      --uniform-bucket-level-access --project="$PROJECT"
  fi
  # rsync uploads only what changed, and removes files the artifact no longer has.
  run gcloud storage rsync "$MODEL_DIR" "$MODEL_WEIGHTS" --recursive \
    --delete-unmatched-destination-objects "${MODEL_SYNC_FLAGS[@]}" --project="$PROJECT"
fi
for account in "$UPLOAD_SA" "$WORKER_SA"; do
  run gcloud storage buckets add-iam-policy-binding "gs://$MODEL_BUCKET" \
    --member="serviceAccount:$account" --role=roles/storage.objectViewer \
    --project="$PROJECT" --format=none
done

# --- Pub/Sub queue (1/2): topics, dead-letter subscription, publisher ----------------------------
# Created before the functions, so on_upload in queue mode can publish from its first request.
PUBSUB_TOPIC="${PUBSUB_TOPIC:-autotagger-uploads}"
DEAD_LETTER_TOPIC="$PUBSUB_TOPIC-dead-letter"
ON_MESSAGE_NAME="${ON_MESSAGE_NAME:-autotagger-on-message}"
WORKER_MAX_INSTANCES="${WORKER_MAX_INSTANCES:-10}"
MAX_DELIVERY_ATTEMPTS="${MAX_DELIVERY_ATTEMPTS:-7}"
[[ "${WEBHOOK_MODE:-inline}" =~ ^(inline|queue)$ ]] || die "WEBHOOK_MODE must be inline or queue"
[[ "$WORKER_MAX_INSTANCES" =~ ^[1-9][0-9]*$ ]] ||
  die "WORKER_MAX_INSTANCES must be a positive integer"
[[ "$MAX_DELIVERY_ATTEMPTS" =~ ^[0-9]+$ && $MAX_DELIVERY_ATTEMPTS -ge 5 &&
  $MAX_DELIVERY_ATTEMPTS -le 100 ]] || die "MAX_DELIVERY_ATTEMPTS must be 5 to 100"
# A redelivery of the same message continues its crashed claim at once; another message of the
# same asset waits for the claim to expire, so the retries (backoff from 10 s, roughly doubling,
# at most 600 s) must last longer than CLAIM_TTL_S.
retry_window=0
delay=10
for ((attempt = 1; attempt < MAX_DELIVERY_ATTEMPTS; attempt++)); do
  retry_window=$((retry_window + delay))
  delay=$((delay * 2 > 600 ? 600 : delay * 2))
done
[[ $retry_window -gt $CLAIM_TTL ]] || die "MAX_DELIVERY_ATTEMPTS=$MAX_DELIVERY_ATTEMPTS retries" \
  "for about $retry_window s, not longer than CLAIM_TTL_S=$CLAIM_TTL s: raise it"
step "Pub/Sub topics $PUBSUB_TOPIC and $DEAD_LETTER_TOPIC"
for topic in "$PUBSUB_TOPIC" "$DEAD_LETTER_TOPIC"; do
  if ! exists gcloud pubsub topics describe "$topic" --project="$PROJECT"; then
    run gcloud pubsub topics create "$topic" --project="$PROJECT"
  fi
done
# Dead letters are kept 7 days for inspection (`gcloud pubsub subscriptions pull`).
if ! exists gcloud pubsub subscriptions describe "$DEAD_LETTER_TOPIC" --project="$PROJECT"; then
  run gcloud pubsub subscriptions create "$DEAD_LETTER_TOPIC" --topic="$DEAD_LETTER_TOPIC" \
    --message-retention-duration=7d --project="$PROJECT"
fi
# Only on_upload's service account may publish uploads (a topic-level grant; grant no
# project-wide pubsub.publisher to anyone else).
run gcloud pubsub topics add-iam-policy-binding "$PUBSUB_TOPIC" \
  --member="serviceAccount:$UPLOAD_SA" --role=roles/pubsub.publisher --project="$PROJECT" \
  --format=none

# --- functions ---------------------------------------------------------------------------------
# The page (results) uploads through the unsigned preset and forwards the signed upload result to
# on_upload's /forward: results needs on_upload's URL (ON_UPLOAD_URL) and on_upload must allow
# the page's origin (ALLOWED_ORIGINS). Each URL is known once its function exists, so a first
# deployment deploys on_upload a second time at the end; later runs know both URLs up front.
url_of() {
  if is_dry; then
    return 0
  fi
  gcloud functions describe "$1" --gen2 --region="$REGION" --project="$PROJECT" \
    --format='value(serviceConfig.uri)' 2>/dev/null || true
}
origin_of() {
  local rest="${1#*://}"
  printf '%s://%s' "${1%%://*}" "${rest%%/*}"
}

common_env="GOOGLE_CLOUD_PROJECT=$PROJECT|FIRESTORE_DATABASE=$FIRESTORE_DATABASE"
common_env+="|FIRESTORE_COLLECTION=$FIRESTORE_COLLECTION|LOG_LEVEL=${LOG_LEVEL:-INFO}"
model_env="$common_env|MODEL_WEIGHTS=$MODEL_WEIGHTS|THREADS=$CONCURRENCY"
model_env+="|TOP_K=${TOP_K:-5}|TAG_THRESHOLD=${TAG_THRESHOLD:-0.2}|TAG_PREFIX=${TAG_PREFIX:-}"
# "|NAME=value" for each named setting that is set.
passed() {
  local name
  for name in "$@"; do
    if [[ -n "${!name:-}" ]]; then
      printf '|%s=%s' "$name" "${!name}"
    fi
  done
}
upload_env="$model_env$(passed "${ON_UPLOAD_SETTINGS[@]}")"
worker_env="$model_env$(passed "${ON_MESSAGE_SETTINGS[@]}")"
scaling=(--max-instances="$MAX_INSTANCES")
if [[ -n "${MIN_INSTANCES:-}" ]]; then
  scaling+=(--min-instances="$MIN_INSTANCES")
fi

deploy_on_upload() {
  local env="$upload_env$access_env"
  if [[ -n "$1" ]]; then
    env+="|ALLOWED_ORIGINS=$(origin_of "$1")"
  fi
  # "^|^" makes "|" the list delimiter, so values may contain commas (gcloud topic escaping).
  run gcloud functions deploy "$ON_UPLOAD_NAME" --gen2 --region="$REGION" --project="$PROJECT" \
    --runtime=python311 --source="$ON_UPLOAD_SOURCE" --entry-point=on_upload --trigger-http \
    --allow-unauthenticated --service-account="$UPLOAD_SA" --memory="$ON_UPLOAD_MEMORY" --cpu=2 \
    --concurrency="$CONCURRENCY" --timeout=120s "${scaling[@]}" \
    --set-secrets="CLOUDINARY_URL=$SECRET_NAME:latest" --set-env-vars="^|^$env"
}

page_url="$(url_of "$RESULTS_NAME")"
step "function $ON_UPLOAD_NAME (entry point on_upload)"
deploy_on_upload "$page_url"
webhook_url="$(url_of "$ON_UPLOAD_NAME")"

step "function $RESULTS_NAME (entry point results)"
results_env="$common_env|CLOUDINARY_UPLOAD_PRESET=$UPLOAD_PRESET|TAG_PREFIX=${TAG_PREFIX:-}"
results_env+="|ON_UPLOAD_URL=${webhook_url:-https://<$ON_UPLOAD_NAME URL>}"
results_env+="$(passed "${RESULTS_SETTINGS[@]}")"
run gcloud functions deploy "$RESULTS_NAME" --gen2 --region="$REGION" --project="$PROJECT" \
  --runtime=python311 --source="$RESULTS_SOURCE" --entry-point=results --trigger-http \
  --allow-unauthenticated --service-account="$RESULTS_SA" --memory=512Mi --timeout=30s \
  --max-instances="$MAX_INSTANCES" \
  --set-secrets="CLOUDINARY_URL=$SECRET_NAME:latest$token_secret" \
  --set-env-vars="^|^$results_env$access_env"

if [[ -z "$page_url" ]]; then
  page_url="$(url_of "$RESULTS_NAME")"
  step "function $ON_UPLOAD_NAME again, now that the page's origin is known (first deployment)"
  deploy_on_upload "${page_url:-https://<$RESULTS_NAME URL>}"
fi

# --- Pub/Sub queue (2/2): the on_message worker and its trigger's subscription -----------------
# Eventarc's Pub/Sub trigger pushes each message to on_message; --retry redelivers a message
# whose run raised (transient failures), with backoff, until MAX_DELIVERY_ATTEMPTS, then moves
# it to the dead-letter topic. WORKER_MAX_INSTANCES caps the spend: at most
# WORKER_MAX_INSTANCES x 2 vCPU x 4 GiB billed while a backlog drains (README, "Queue mode").
step "function $ON_MESSAGE_NAME (entry point on_message, trigger topic $PUBSUB_TOPIC)"
run gcloud functions deploy "$ON_MESSAGE_NAME" --gen2 --region="$REGION" --project="$PROJECT" \
  --runtime=python311 --source="$CLASSIFY_SOURCE" --entry-point=on_message \
  --trigger-topic="$PUBSUB_TOPIC" --retry --trigger-service-account="$TRIGGER_SA" \
  --no-allow-unauthenticated --service-account="$WORKER_SA" --memory=4Gi --cpu=2 \
  --concurrency="$CONCURRENCY" --timeout="${WORKER_TIMEOUT_S}s" \
  --max-instances="$WORKER_MAX_INSTANCES" \
  --set-secrets="CLOUDINARY_URL=$SECRET_NAME:latest" --set-env-vars="^|^$worker_env"
# The trigger pushes as its own service account: it may invoke on_message, nothing else may.
run gcloud functions add-invoker-policy-binding "$ON_MESSAGE_NAME" --region="$REGION" \
  --member="serviceAccount:$TRIGGER_SA" --project="$PROJECT"
if is_dry; then
  project_number="PROJECT_NUMBER"
  trigger_subscription="eventarc-$REGION-$ON_MESSAGE_NAME-000000-sub-000"
  show gcloud eventarc triggers describe "<trigger of $ON_MESSAGE_NAME>" --location="$REGION" \
    --project="$PROJECT" --format='value(transport.pubsub.subscription)'
  printf '  # the subscription Eventarc made for the trigger\n'
else
  project_number="$(gcloud projects describe "$PROJECT" --format='value(projectNumber)')"
  trigger="$(gcloud functions describe "$ON_MESSAGE_NAME" --gen2 --region="$REGION" \
    --project="$PROJECT" --format='value(eventTrigger.trigger)')"
  trigger_subscription="$(gcloud eventarc triggers describe "${trigger##*/}" \
    --location="$REGION" --project="$PROJECT" --format='value(transport.pubsub.subscription)')"
  [[ -n "$trigger_subscription" ]] || die "could not find the subscription of $ON_MESSAGE_NAME"
fi
pubsub_agent="service-$project_number@gcp-sa-pubsub.iam.gserviceaccount.com"
step "subscription ${trigger_subscription##*/}: dead letters after $MAX_DELIVERY_ATTEMPTS attempts"
run gcloud pubsub subscriptions update "${trigger_subscription##*/}" --project="$PROJECT" \
  --dead-letter-topic="$DEAD_LETTER_TOPIC" --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS" \
  --min-retry-delay=10s --max-retry-delay=600s --ack-deadline=600
# Pub/Sub's own service agent forwards dead letters: it must publish to the dead-letter topic and
# acknowledge on the trigger's subscription.
run gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" \
  --member="serviceAccount:$pubsub_agent" --role=roles/pubsub.publisher --project="$PROJECT" \
  --format=none
run gcloud pubsub subscriptions add-iam-policy-binding "${trigger_subscription##*/}" \
  --member="serviceAccount:$pubsub_agent" --role=roles/pubsub.subscriber --project="$PROJECT" \
  --format=none

# --- URLs --------------------------------------------------------------------------------------
step "done"
echo "webhook URL (Cloudinary notification URL): ${webhook_url:-https://<$ON_UPLOAD_NAME URL>}"
echo "page URL: ${page_url:-https://<$RESULTS_NAME URL>}/"
echo "results API: ${page_url:-https://<$RESULTS_NAME URL>}/api/results"
if [[ "$RESULTS_ACCESS" == private ]]; then
  echo "listings are private: the access key is in Secret Manager (gcloud secrets versions" \
    "access latest --secret=$TOKEN_SECRET_NAME --project=$PROJECT)"
else
  echo "RESULTS_ACCESS=public: anyone with the page URL can list every result"
fi
echo "webhook mode: ${WEBHOOK_MODE:-inline} (queue: publishes to $PUBSUB_TOPIC, drained by" \
  "$ON_MESSAGE_NAME, at most $WORKER_MAX_INSTANCES instances)"
echo "next: CLOUDINARY_URL=... python infra/cloudinary_setup.py --preset $UPLOAD_PRESET" \
  "--mode $upload_mode" \
  "--notification-url ${webhook_url:-https://<$ON_UPLOAD_NAME URL>}"

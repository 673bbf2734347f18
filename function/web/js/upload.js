// After an upload: forward it to on_upload, follow the classification through the results API,
// and show the outcome (or why there is none yet). Shared by the widget and local uploads.

import { rememberUpload } from "./access.js";
import { fetchRecord, forwardUpload } from "./api.js";
import { config } from "./config.js";
import { addMeta, offerCheckAgain, renderRecord, setState, showImage, showQueued } from "./current.js";
import { errorText, isFinal, sleep } from "./format.js";
import { refreshGallery } from "./gallery.js";
import { renderSkeleton } from "./labels.js";
import { PREVIEW, isVideo, mediaUrl } from "./media.js";
import { isLatest, nextRun, setUploading } from "./session.js";

const POLL_FIRST_MS = 300;
const POLL_MAX_MS = 1500;
const POLL_FACTOR = 1.5;

// Poll the results API with backoff until the record is final, the forward answers with it,
// a newer upload starts, or the time budget runs out.
async function follow(assetId, token, forwarded) {
  const limitMs = (Number(config.pollTimeoutS) || 60) * 1000;
  const deadline = Date.now() + limitMs;
  let forward = null;
  const forwardSettled = forwarded.then((result) => {
    forward = result;
  });
  let delay = POLL_FIRST_MS;
  let failures = 0;
  let lastError = null;
  while (Date.now() < deadline) {
    if (!isLatest(token)) return { superseded: true };
    if (forward && isFinal(forward.record) && forward.record.asset_id === assetId) {
      return { record: forward.record };
    }
    if (forward && forward.record && forward.record.status === "queued") showQueued();
    try {
      const record = await fetchRecord(assetId);
      failures = 0;
      if (!isLatest(token)) return { superseded: true };
      if (isFinal(record)) return { record };
    } catch (error) {
      failures += 1;
      lastError = error;
    }
    const pause = sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
    await (forward ? pause : Promise.race([pause, forwardSettled]));
    delay = Math.min(delay * POLL_FACTOR, failures ? 5 * POLL_MAX_MS : POLL_MAX_MS);
  }
  return {
    timeout: true,
    seconds: Math.round(limitMs / 1000),
    forwardError: forward ? forward.error : null,
    pollError: lastError ? errorText(lastError) : null,
  };
}

async function track(info, token, forwarded) {
  const outcome = await follow(info.asset_id, token, forwarded);
  if (outcome.superseded || !isLatest(token)) return;
  if (outcome.record) {
    renderRecord(outcome.record);
    refreshGallery();
    return;
  }
  const reasons = [];
  if (outcome.forwardError) reasons.push(`Forwarding to on_upload failed: ${outcome.forwardError}.`);
  if (outcome.pollError) reasons.push(`Last error: ${outcome.pollError}.`);
  setState(
    "timeout",
    "No result yet",
    `Stopped waiting after ${outcome.seconds} s. ${reasons.join(" ")} The result may still ` +
      "arrive: check again, or look for it in the gallery.",
  );
  addMeta("Public ID", info.public_id, true);
  offerCheckAgain(() => {
    const again = nextRun();
    setState("classifying", "Classifying…", "Checking for the result again.");
    renderSkeleton();
    addMeta("Public ID", info.public_id, true);
    track(info, again, Promise.resolve({ record: null, error: null }));
  });
}

// An upload starts: nothing is shown until it is stored.
export function startUpload(detail) {
  setUploading(true);
  nextRun();
  showImage(null);
  setState("uploading", "Uploading…", detail);
}

// The Upload API's response for a stored file.
export function onUploaded(info) {
  setUploading(false);
  const token = nextRun();
  if (!info || typeof info !== "object") return;
  if (info.resource_type && info.resource_type !== "image" && !isVideo(info)) {
    showImage(null);
    const kind = info.is_audio ? "audio" : info.resource_type;
    setState(
      "not-image",
      "That's not an image",
      `Cloudinary stored this file as ${kind}; only images and videos can be classified.`,
    );
    addMeta("Public ID", info.public_id, true);
    return;
  }
  rememberUpload(info.asset_id);
  showImage(mediaUrl(info, PREVIEW), info.original_filename || info.public_id);
  const looking = isVideo(info) ? "frames of your video" : "your photo";
  setState("classifying", "Classifying…", `Uploaded. The model is looking at ${looking}.`);
  renderSkeleton();
  addMeta("Public ID", info.public_id, true);
  track(info, token, forwardUpload(info));
}

export function onUploadError(error) {
  setUploading(false);
  nextRun();
  const text = errorText(error);
  showImage(null);
  if (/invalid image|not allowed|format|not an image|unsupported/i.test(text)) {
    setState("not-image", "That's not an image", text);
  } else {
    setState("error", "The upload did not go through", text);
  }
}

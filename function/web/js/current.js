// The current result: its state (uploading, classifying, done, ...), picture, labels, meta.

import { $, node } from "./dom.js";
import { clock, humanLabel, percent, seconds } from "./format.js";
import { clearFrameStrip, renderFrameStrip } from "./frames.js";
import { clearLabels, renderConcepts, renderPredictions, renderSkeleton, renderTags } from "./labels.js";
import { PREVIEW, isVideo, mediaUrl, safeUrl } from "./media.js";
import { nextRun } from "./session.js";
import { clearSimilar, loadSimilar } from "./similar.js";

const STATES = {
  idle: "Ready",
  uploading: "Uploading",
  classifying: "Classifying",
  queued: "Queued",
  done: "Done",
  failed: "Failed",
  "not-image": "Not an image",
  error: "Upload failed",
  timeout: "Still working",
};

const el = {
  current: $("current"),
  image: $("current-image"),
  backdrop: $("current-backdrop"),
  placeholder: $("current-placeholder"),
  status: $("current-status"),
  title: $("current-title"),
  detail: $("current-detail"),
  meta: $("current-meta"),
  actions: $("current-actions"),
  checkAgain: $("check-again"),
};

export function setState(state, title, detail) {
  el.current.dataset.state = state;
  el.current.setAttribute("aria-busy", String(state === "uploading" || state === "classifying"));
  el.status.textContent = STATES[state] || state;
  el.title.textContent = title;
  el.detail.textContent = detail || "";
  el.detail.hidden = !detail;
  clearLabels();
  clearFrameStrip();
  clearSimilar();
  el.meta.replaceChildren();
  el.meta.hidden = true;
  el.actions.hidden = true;
}

// WEBHOOK_MODE=queue: on_upload answered 202 "queued"; the worker stores the result later.
export function showQueued() {
  if (el.current.dataset.state !== "classifying") return;
  el.current.dataset.state = "queued";
  el.status.textContent = STATES.queued;
  el.detail.textContent = "Waiting in the queue; the result appears here once it is ready.";
  el.detail.hidden = false;
}

export function showImage(url, alt) {
  const safe = safeUrl(url);
  const { image, backdrop } = el;
  image.onload = null;
  image.onerror = null;
  image.hidden = true;
  backdrop.hidden = true;
  el.placeholder.hidden = false;
  if (!safe) {
    image.removeAttribute("src");
    backdrop.removeAttribute("src");
    return;
  }
  image.onload = () => {
    if (image.src !== safe) return;
    image.hidden = false;
    backdrop.hidden = false;
    el.placeholder.hidden = true;
  };
  image.onerror = () => {
    image.hidden = true;
    backdrop.hidden = true;
    el.placeholder.hidden = false;
  };
  image.alt = alt || "";
  image.src = safe;
  backdrop.src = safe;
}

export function addMeta(term, value, mono) {
  if (value === undefined || value === null || value === "") return;
  el.meta.append(node("dt", null, term), node("dd", mono ? "mono" : null, value));
  el.meta.hidden = false;
}

// The "Check again" button (after polling gave up).
export function offerCheckAgain(onClick) {
  el.actions.hidden = false;
  el.checkAgain.onclick = onClick;
}

export function renderRecord(record) {
  showImage(mediaUrl(record, PREVIEW), humanLabel(record.label) || record.public_id);
  if (record.status === "done") {
    setState("done", humanLabel(record.label), `${percent(record.score)} confidence`);
    renderPredictions(record.predictions);
    renderConcepts(record.concepts);
    renderTags(record);
    renderFrameStrip(record);
    loadSimilar(record);
  } else if (record.status === "failed") {
    const what = isVideo(record) ? "video" : "image";
    setState("failed", `Couldn't classify this ${what}`, record.error || "No reason was recorded.");
  } else {
    setState("classifying", "Classifying…", "The model is looking at this photo.");
    renderSkeleton();
  }
  addMeta("Public ID", record.public_id, true);
  if (isVideo(record)) addMeta("Duration", clock(record.duration));
  addMeta("Model", record.model);
  addMeta("Time", record.timings ? seconds(record.timings.total) : null);
  if (record.created_at) addMeta("Uploaded", new Date(record.created_at).toLocaleString());
}

// A stored result picked from the gallery or the similar strip: it becomes the current one.
export function showRecord(record) {
  nextRun();
  renderRecord(record);
  el.current.scrollIntoView({ behavior: "smooth", block: "start" });
}

// "More like this": the current result's nearest stored embeddings (GET /api/similar), as
// clickable thumbnails; near-duplicates (the same picture resized, recompressed or cropped) are
// marked. A listing: in private mode it needs the access key (Bearer header), like "Recent results".

import { ASSET_ID, accessKey } from "./access.js";
import { getJson } from "./api.js";
import { PRIVATE, config } from "./config.js";
import { $, node, placeholder, thumbnail } from "./dom.js";
import { errorText, humanLabel } from "./format.js";
import { SIMILAR_THUMB, isVideo, mediaUrl, videoBadge } from "./media.js";

const SIMILAR_LIMIT = 8;
const el = {
  block: $("current-similar-block"),
  list: $("current-similar"),
  message: $("current-similar-message"),
};

let request = 0; // bumps whenever the current result changes: older answers are dropped
let about = null; // the done result the strip is about (reloaded when the key changes)
let pick = () => {};

// What a click on a similar asset does (show it as the current result).
export function onPick(callback) {
  pick = callback;
}

export function clearSimilar() {
  request += 1;
  about = null;
  el.list.replaceChildren();
  el.block.hidden = true;
  el.message.hidden = true;
}

function similarMessage(text) {
  el.list.replaceChildren();
  el.message.textContent = text;
  el.message.hidden = false;
  el.block.hidden = false;
}

function similarCard(item) {
  const li = node("li", item.near_duplicate ? "similar-item near-duplicate" : "similar-item");
  const button = node("button", "similar-button");
  button.type = "button";
  const media = node("div", "similar-media");
  const url = mediaUrl(item, SIMILAR_THUMB);
  if (url) {
    const alt = humanLabel(item.label) || item.public_id || "Similar asset";
    media.append(thumbnail(url, alt, () => media.append(placeholder())));
  } else {
    media.append(placeholder());
  }
  if (isVideo(item)) media.append(videoBadge(item));
  if (item.near_duplicate) media.append(node("span", "similar-badge", "Near-duplicate"));
  const caption = node("span", "similar-caption", humanLabel(item.label) || item.public_id || "");
  button.append(media, caption);
  const distance = typeof item.distance === "number" ? item.distance.toFixed(4) : "?";
  button.title = `${item.public_id || ""} (distance ${distance})`;
  button.setAttribute(
    "aria-label",
    `${item.near_duplicate ? "Near-duplicate: " : ""}${humanLabel(item.label) || ""}: ${item.public_id || ""}`,
  );
  button.addEventListener("click", () => pick(item));
  li.append(button);
  return li;
}

export async function loadSimilar(record) {
  const mine = ++request;
  about = record;
  // only a result with an embedding can be compared (older ones get it from `backfill`)
  if (record.status !== "done" || !record.has_embedding || !ASSET_ID.test(record.asset_id || "")) {
    return;
  }
  const key = PRIVATE ? accessKey() : null;
  if (PRIVATE && !key) {
    similarMessage("Enter the access key to see more like this.");
    return;
  }
  const params = new URLSearchParams({ asset_id: record.asset_id, limit: String(SIMILAR_LIMIT) });
  let response;
  let body;
  try {
    ({ response, body } = await getJson(`${config.similarApi || "/api/similar"}?${params}`, key));
  } catch (error) {
    if (mine === request) similarMessage(`Couldn't load similar results: ${errorText(error)}`);
    return;
  }
  if (mine !== request) return;
  if (PRIVATE && response.status === 401) {
    similarMessage("Enter the access key to see more like this.");
    return;
  }
  if (response.status === 409) {
    similarMessage("Not comparable yet: this result has no embedding.");
    return;
  }
  if (!response.ok) {
    similarMessage(`Couldn't load similar results: ${(body && body.error) || `HTTP ${response.status}`}`);
    return;
  }
  const results = (body && Array.isArray(body.results) ? body.results : []).filter(
    (item) => item && typeof item === "object",
  );
  if (!results.length) {
    similarMessage("Nothing similar stored yet.");
    return;
  }
  el.message.hidden = true;
  el.list.replaceChildren(...results.map(similarCard));
  el.block.hidden = false;
}

// Reload the strip for the result it is about (after the access key changed).
export function reloadSimilar() {
  if (about) loadSimilar(about);
}

// "Recent results": every result (public, or with the access key), else this browser's own
// uploads; filterable by concept or label; a click shows a result as the current one.

import { accessKey, accessMessage, myUploads, setAccessKey } from "./access.js";
import { fetchRecord, getJson } from "./api.js";
import { GALLERY_LIMIT, PRIVATE, config } from "./config.js";
import { showRecord } from "./current.js";
import { $, node, placeholder, thumbnail } from "./dom.js";
import { filterChips, countText, emptyText, renderChips } from "./filters.js";
import { ago, errorText, humanLabel, percent } from "./format.js";
import { THUMB, isVideo, mediaUrl, videoBadge } from "./media.js";

const el = {
  filters: $("filters"),
  grid: $("gallery-grid"),
  message: $("gallery-message"),
  count: $("gallery-count"),
};

let activeFilter = null; // {kind: "tag" | "label", value, name}
let chips = { concepts: [], labels: [] };
let galleryRequest = 0;

async function readMine() {
  const found = await Promise.all(myUploads().map((id) => fetchRecord(id).catch(() => null)));
  return found
    .filter(Boolean)
    .sort((a, b) => (Date.parse(b.created_at) || 0) - (Date.parse(a.created_at) || 0));
}

async function readRecent(filter) {
  const key = PRIVATE ? accessKey() : null;
  if (PRIVATE && !key) return { results: await readMine(), everything: false };
  const params = new URLSearchParams({ limit: String(GALLERY_LIMIT) });
  if (filter) params.set(filter.kind, filter.value);
  const { response, body } = await getJson(`${config.resultsApi}?${params}`, key);
  if (PRIVATE && response.status === 401) {
    setAccessKey(null);
    accessMessage("The access key is no longer valid.");
    return { results: await readMine(), everything: false };
  }
  if (!response.ok) throw new Error((body && body.error) || `HTTP ${response.status}`);
  return { results: (body && body.results) || [], everything: true };
}

function card(record) {
  const item = node("li");
  const button = node("button", "card");
  button.type = "button";
  button.dataset.status = record.status || "";
  const media = node("div", "card-media");
  const url = mediaUrl(record, THUMB);
  if (isVideo(record)) media.append(videoBadge(record));
  if (url) {
    const alt = humanLabel(record.label) || "Uploaded image";
    media.append(thumbnail(url, alt, () => media.append(placeholder())));
  } else {
    media.append(placeholder());
  }
  const body = node("div", "card-body");
  const title = node("div", "card-title");
  const label =
    record.status === "done"
      ? humanLabel(record.label)
      : record.status === "failed"
        ? "Failed"
        : "Classifying…";
  title.append(node("span", "card-label", label));
  if (record.status === "done") title.append(node("span", "card-score", percent(record.score)));
  const sub = node("div", "card-sub");
  const id = node("span", "card-id", record.public_id || "");
  id.title = String(record.public_id || "");
  sub.append(id, node("span", "card-when", ago(record.created_at)));
  body.append(title, sub);
  button.append(media, body);
  button.setAttribute(
    "aria-label",
    `${label}${record.status === "done" ? `, ${percent(record.score)}` : ""}: ${record.public_id || ""}`,
  );
  button.addEventListener("click", () => showRecord(record));
  item.append(button);
  return item;
}

function showChips() {
  renderChips(el.filters, chips, activeFilter, loadGallery);
}

export async function loadGallery(filter) {
  const request = ++galleryRequest;
  activeFilter = filter || null;
  showChips();
  let results;
  let everything;
  try {
    ({ results, everything } = await readRecent(activeFilter));
  } catch (error) {
    if (request !== galleryRequest) return;
    el.grid.replaceChildren();
    el.message.textContent = `Couldn't load recent results: ${errorText(error)}`;
    el.message.hidden = false;
    return;
  }
  if (request !== galleryRequest) return;
  if (!everything) {
    activeFilter = null;
    chips = { concepts: [], labels: [] }; // filters list everything: they come with the key
    showChips();
  } else if (!activeFilter) {
    chips = filterChips(results);
    showChips();
  }
  el.grid.replaceChildren(...results.map(card));
  const n = results.length;
  el.count.textContent = countText(n, activeFilter, everything);
  el.message.hidden = n > 0;
  el.message.textContent = emptyText(activeFilter, everything);
}

// Reload with the filter in use (a new result may belong in it).
export function refreshGallery() {
  loadGallery(activeFilter);
}

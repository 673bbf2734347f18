// autotagger upload page: Cloudinary Upload widget -> follow the classification -> gallery.
// Plain JS, no build step. Everything rendered from data goes through textContent (never
// innerHTML), and only http(s) URLs reach an <img>.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const config = readConfig();
  const POLL_FIRST_MS = 300;
  const POLL_MAX_MS = 1500;
  const POLL_FACTOR = 1.5;
  const GALLERY_LIMIT = 24;
  const MAX_CHIPS = 12;
  const PREVIEW = "c_limit,w_1200,h_1200,q_auto,f_auto";
  const THUMB = "c_fill,g_auto,w_480,h_360,q_auto,f_auto";
  const FRAME_THUMB = "c_fill,w_160,h_120,q_auto,f_auto";
  const SIMILAR_THUMB = "c_fill,g_auto,w_200,h_150,q_auto,f_auto";
  const SIMILAR_LIMIT = 8;

  const el = {
    button: $("upload-button"),
    hint: $("upload-hint"),
    notice: $("setup-notice"),
    current: $("current"),
    image: $("current-image"),
    backdrop: $("current-backdrop"),
    placeholder: $("current-placeholder"),
    status: $("current-status"),
    title: $("current-title"),
    detail: $("current-detail"),
    predictions: $("current-predictions"),
    conceptsBlock: $("current-concepts-block"),
    concepts: $("current-concepts"),
    tagsBlock: $("current-tags-block"),
    tags: $("current-tags"),
    learnedBlock: $("current-learned-block"),
    learned: $("current-learned"),
    framesBlock: $("current-frames-block"),
    frames: $("current-frames"),
    similarBlock: $("current-similar-block"),
    similar: $("current-similar"),
    similarMessage: $("current-similar-message"),
    meta: $("current-meta"),
    actions: $("current-actions"),
    checkAgain: $("check-again"),
    filters: $("filters"),
    grid: $("gallery-grid"),
    galleryMessage: $("gallery-message"),
    galleryCount: $("gallery-count"),
    access: $("access"),
    accessHint: $("access-hint"),
    accessLocked: $("access-locked"),
    accessKey: $("access-key"),
    accessUnlock: $("access-unlock"),
    accessLock: $("access-lock"),
    accessMessage: $("access-message"),
  };

  let widget = null;
  let run = 0; // bumps on every new upload: an older follow() stops on its own
  let uploading = false;
  let activeFilter = null; // {kind: "tag" | "label", value, name}
  let knownLabels = [];
  let knownConcepts = [];
  let galleryRequest = 0;
  let similarRequest = 0; // bumps whenever the current result changes: older answers are dropped
  let similarOf = null; // the done result the strip is about (reloaded when the key changes)

  // -- small helpers ------------------------------------------------------------------------

  function readConfig() {
    try {
      const node = $("autotagger-config");
      return JSON.parse((node && node.textContent) || "{}") || {};
    } catch (_error) {
      return {};
    }
  }

  function node(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = String(text);
    return element;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function humanLabel(label) {
    return String(label || "").replace(/_/g, " ");
  }

  function percent(score) {
    const value = Math.max(0, Math.min(1, Number(score) || 0)) * 100;
    return value >= 10 || value === 0 ? `${value.toFixed(0)}%` : `${value.toFixed(1)}%`;
  }

  function safeUrl(url) {
    if (typeof url !== "string" || !url) return null;
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (_error) {
      return null;
    }
  }

  // A Cloudinary delivery URL with a transformation in front of the version (smaller images).
  function deliveryUrl(url, transformation) {
    const safe = safeUrl(url);
    if (!safe) return null;
    const marker = "/image/upload/";
    const at = safe.indexOf(marker);
    if (at < 0) return safe;
    const rest = safe.slice(at + marker.length);
    if (!/^v\d+\//.test(rest)) return safe;
    return `${safe.slice(0, at + marker.length)}${transformation}/${rest}`;
  }

  // -- videos: Cloudinary delivers any moment of a video as an image (so_<seconds> + .jpg) ------

  function isVideo(record) {
    return Boolean(record) && record.resource_type === "video" && !record.is_audio;
  }

  // `…/video/upload/v<version>/<id>.<ext>` -> `…/video/upload/so_<t>,<transformation>/v<version>/<id>.jpg`
  // (no so_ when `offset` is unknown: Cloudinary then picks the middle frame).
  function videoFrameUrl(url, offset, transformation) {
    const safe = safeUrl(url);
    if (!safe) return null;
    const marker = "/video/upload/";
    const at = safe.indexOf(marker);
    if (at < 0) return null;
    const match = /^(v\d+\/[^?#]+)\.[A-Za-z0-9]+$/.exec(safe.slice(at + marker.length));
    if (!match) return null;
    const seconds = Number(offset);
    const parts = [];
    if (offset !== null && offset !== undefined && Number.isFinite(seconds) && seconds >= 0) {
      parts.push(`so_${Number(seconds.toFixed(2))}`);
    }
    if (transformation) parts.push(transformation);
    const prefix = parts.length ? `${parts.join(",")}/` : "";
    return `${safe.slice(0, at + marker.length)}${prefix}${match[1]}.jpg`;
  }

  // The poster: the middle sampled frame (or the middle of the video).
  function videoPosterUrl(record, transformation) {
    const frames = Array.isArray(record.frames) ? record.frames : [];
    const middle = frames.length ? frames[Math.floor(frames.length / 2)].offset : null;
    const duration = Number(record.duration);
    const offset = middle !== null ? middle : Number.isFinite(duration) ? duration / 2 : null;
    return videoFrameUrl(record.secure_url, offset, transformation);
  }

  // An image's rendition, or a video's poster frame.
  function mediaUrl(record, transformation) {
    return isVideo(record)
      ? videoPosterUrl(record, transformation)
      : deliveryUrl(record.secure_url, transformation);
  }

  function clock(value) {
    const total = Math.max(0, Number(value) || 0);
    const minutes = Math.floor(total / 60);
    const rest = total - minutes * 60;
    const secondsText = rest.toFixed(rest % 1 ? 2 : 0).replace(/\.?0+$/, "") || "0";
    return `${minutes}:${rest < 10 ? "0" : ""}${secondsText}`;
  }

  function clearFrameStrip() {
    el.frames.replaceChildren();
    el.framesBlock.hidden = true;
  }

  // The sampled frames of a video, each with its time and top-1 label (or why it was skipped).
  function renderFrameStrip(record) {
    clearFrameStrip();
    const frames = Array.isArray(record.frames) ? record.frames : [];
    if (!isVideo(record) || !frames.length) return;
    for (const frame of frames) {
      const item = node("li", frame.error ? "frame frame-skipped" : "frame");
      const media = node("div", "frame-media");
      const url = videoFrameUrl(record.secure_url, frame.offset, FRAME_THUMB);
      if (url) {
        const image = node("img");
        image.loading = "lazy";
        image.decoding = "async";
        image.alt = frame.error ? "" : `Frame at ${clock(frame.offset)}`;
        image.addEventListener("error", () => {
          image.hidden = true;
        });
        image.src = url;
        media.append(image);
      }
      const caption = node("div", "frame-caption");
      caption.append(node("span", "frame-time", clock(frame.offset)));
      if (frame.error) {
        const skipped = node("span", "frame-label", "skipped");
        skipped.title = String(frame.error);
        caption.append(skipped);
      } else {
        const label = node("span", "frame-label", humanLabel(frame.label));
        label.title = String(frame.label || "");
        caption.append(label, node("span", "frame-score", percent(frame.score)));
      }
      item.append(media, caption);
      el.frames.append(item);
    }
    el.framesBlock.hidden = false;
  }

  function videoBadge(record) {
    const text = Number.isFinite(Number(record.duration)) ? `Video · ${clock(Math.round(record.duration))}` : "Video";
    return node("span", "card-badge", text);
  }

  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });

  function ago(iso) {
    const at = Date.parse(iso);
    if (!at) return "";
    const seconds = (at - Date.now()) / 1000;
    const abs = Math.abs(seconds);
    if (abs < 45) return relative.format(0, "second");
    if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
    if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
    return relative.format(Math.round(seconds / 86400), "day");
  }

  function seconds(ms) {
    const value = Number(ms);
    if (!Number.isFinite(value)) return null;
    return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(1)} s`;
  }

  function errorText(error) {
    if (!error) return "Unknown error";
    if (typeof error === "string") return error;
    if (typeof error === "object") {
      const nested = error.error && typeof error.error === "object" ? error.error.message : null;
      const text = error.statusText || error.message || nested || error.status;
      if (text) return String(text);
    }
    return "Unknown error";
  }

  function isFinal(record) {
    return Boolean(record) && (record.status === "done" || record.status === "failed");
  }

  // -- the current result -------------------------------------------------------------------

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

  function setState(state, title, detail) {
    el.current.dataset.state = state;
    el.current.setAttribute("aria-busy", String(state === "uploading" || state === "classifying"));
    el.status.textContent = STATES[state] || state;
    el.title.textContent = title;
    el.detail.textContent = detail || "";
    el.detail.hidden = !detail;
    el.predictions.replaceChildren();
    el.concepts.replaceChildren();
    el.conceptsBlock.hidden = true;
    el.tags.replaceChildren();
    el.tagsBlock.hidden = true;
    el.learned.replaceChildren();
    el.learnedBlock.hidden = true;
    clearFrameStrip();
    clearSimilar();
    el.meta.replaceChildren();
    el.meta.hidden = true;
    el.actions.hidden = true;
  }

  // WEBHOOK_MODE=queue: on_upload answered 202 "queued"; the worker stores the result later.
  function showQueued() {
    if (el.current.dataset.state !== "classifying") return;
    el.current.dataset.state = "queued";
    el.status.textContent = STATES.queued;
    el.detail.textContent = "Waiting in the queue; the result appears here once it is ready.";
    el.detail.hidden = false;
  }

  function showImage(url, alt) {
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

  function addMeta(term, value, mono) {
    if (value === undefined || value === null || value === "") return;
    el.meta.append(node("dt", null, term), node("dd", mono ? "mono" : null, value));
    el.meta.hidden = false;
  }

  function renderSkeleton() {
    for (let i = 0; i < 5; i += 1) {
      const item = node("li", "prediction skeleton");
      const bar = node("div", "bar");
      item.append(node("span", "prediction-label"), node("span", "prediction-score"), bar);
      el.predictions.append(item);
    }
  }

  function renderPredictions(predictions) {
    const fills = [];
    for (const prediction of predictions || []) {
      const item = node("li", "prediction");
      const label = node("span", "prediction-label", humanLabel(prediction.label));
      label.title = String(prediction.label || "");
      const score = node("span", "prediction-score", percent(prediction.score));
      const bar = node("div", "bar");
      bar.setAttribute("role", "presentation");
      const fill = node("div", "bar-fill");
      bar.append(fill);
      item.append(label, score, bar);
      el.predictions.append(item);
      fills.push([fill, percent(prediction.score)]);
    }
    // Set widths after layout so the bars grow (CSSOM: allowed under the page's CSP).
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        for (const [fill, width] of fills) fill.style.width = width;
      }),
    );
  }

  // Concepts (dog, vehicle, food: WordNet ancestors of the labels), each with its summed score.
  function renderConcepts(concepts) {
    const list = Array.isArray(concepts) ? concepts : [];
    for (const concept of list) {
      const item = node("li", "concept");
      item.title = String(concept.wnid || "");
      item.append(
        node("span", "concept-name", humanLabel(concept.name)),
        node("span", "concept-score", percent(concept.score)),
      );
      el.concepts.append(item);
    }
    el.conceptsBlock.hidden = list.length === 0;
  }

  // -- more like this ------------------------------------------------------------------------
  // The current result's nearest stored embeddings (GET /api/similar), as clickable thumbnails;
  // near-duplicates (the same picture resized, recompressed or cropped) are marked. A listing:
  // in private mode it needs the access key (Bearer header), like "Recent results".

  function clearSimilar() {
    similarRequest += 1;
    similarOf = null;
    el.similar.replaceChildren();
    el.similarBlock.hidden = true;
    el.similarMessage.hidden = true;
  }

  function similarMessage(text) {
    el.similar.replaceChildren();
    el.similarMessage.textContent = text;
    el.similarMessage.hidden = false;
    el.similarBlock.hidden = false;
  }

  function similarCard(item) {
    const li = node("li", item.near_duplicate ? "similar-item near-duplicate" : "similar-item");
    const button = node("button", "similar-button");
    button.type = "button";
    const media = node("div", "similar-media");
    const url = mediaUrl(item, SIMILAR_THUMB);
    if (url) {
      const image = node("img");
      image.loading = "lazy";
      image.decoding = "async";
      image.alt = humanLabel(item.label) || item.public_id || "Similar asset";
      image.addEventListener("error", () => {
        image.hidden = true;
        media.append(placeholder());
      });
      image.src = url;
      media.append(image);
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
    button.addEventListener("click", () => {
      run += 1;
      renderRecord(item);
      el.current.scrollIntoView({ behavior: "smooth", block: "start" });
    });
    li.append(button);
    return li;
  }

  async function loadSimilar(record) {
    const request = ++similarRequest;
    similarOf = record;
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
      response = await fetch(`${config.similarApi || "/api/similar"}?${params}`, {
        headers: { Accept: "application/json", ...authorization(key) },
        cache: "no-store",
      });
      body = await response.json().catch(() => null);
    } catch (error) {
      if (request === similarRequest) similarMessage(`Couldn't load similar results: ${errorText(error)}`);
      return;
    }
    if (request !== similarRequest) return;
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
    el.similarMessage.hidden = true;
    el.similar.replaceChildren(...results.map(similarCard));
    el.similarBlock.hidden = false;
  }

  // Labels and concepts apart from the tags learned from the account's own (`vocabulary`).
  function renderTags(record) {
    const learned = ((record.vocabulary && record.vocabulary.tags) || []).filter(
      (t) => t && typeof t.tag === "string",
    );
    // Learned tags are written last (with TAG_PREFIX, if any): the labels are what precedes them.
    const tags = record.tags || [];
    const tail = tags.slice(tags.length - learned.length);
    const isTail = tail.every((tag) => learned.some((t) => tag.endsWith(t.tag)));
    const written = isTail ? tags.slice(0, tags.length - learned.length) : tags;
    for (const tag of written) el.tags.append(node("li", "tag", tag));
    el.tagsBlock.hidden = !written.length;
    for (const t of learned) {
      const item = node("li", "tag learned", t.tag);
      item.title = `${percent(t.score)} (vocabulary version ${record.vocabulary.version})`;
      el.learned.append(item);
    }
    el.learnedBlock.hidden = !learned.length;
  }

  function renderRecord(record) {
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

  // -- access (RESULTS_ACCESS=private) ------------------------------------------------------
  // Listings need the access key, sent only as an Authorization header; it lives in
  // sessionStorage (this tab, until it closes) and nowhere else. Without it, "Recent results" is
  // this browser's own uploads: their asset_ids are kept in localStorage, and a lookup by
  // asset_id needs no key.

  const PRIVATE = config.access === "private";
  const SIGNED = config.uploadMode === "signed";
  const KEY_STORAGE = "autotagger.accessKey";
  const MINE_STORAGE = "autotagger.myUploads";
  const ASSET_ID = /^[A-Za-z0-9_-]{1,128}$/;

  function accessKey() {
    try {
      return window.sessionStorage.getItem(KEY_STORAGE) || null;
    } catch (_error) {
      return null;
    }
  }

  function setAccessKey(key) {
    try {
      if (key) window.sessionStorage.setItem(KEY_STORAGE, key);
      else window.sessionStorage.removeItem(KEY_STORAGE);
    } catch (_error) {
      // storage disabled: the key then lasts as long as this page
    }
    renderAccess();
  }

  function authorization(key) {
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  function myUploads() {
    try {
      const ids = JSON.parse(window.localStorage.getItem(MINE_STORAGE) || "[]");
      return Array.isArray(ids) ? ids.filter((id) => typeof id === "string" && ASSET_ID.test(id)) : [];
    } catch (_error) {
      return [];
    }
  }

  function rememberUpload(assetId) {
    if (!PRIVATE || typeof assetId !== "string" || !ASSET_ID.test(assetId)) return;
    const ids = [assetId, ...myUploads().filter((id) => id !== assetId)].slice(0, GALLERY_LIMIT);
    try {
      window.localStorage.setItem(MINE_STORAGE, JSON.stringify(ids));
    } catch (_error) {
      // storage full or disabled: the upload is still shown now
    }
  }

  function accessMessage(text) {
    el.accessMessage.textContent = text || "";
    el.accessMessage.hidden = !text;
  }

  function renderAccess() {
    if (!PRIVATE) return;
    const unlocked = Boolean(accessKey());
    el.access.hidden = false;
    el.accessLocked.hidden = unlocked;
    el.accessLock.hidden = !unlocked;
    el.accessHint.textContent = unlocked
      ? "Unlocked: showing every result. The key is kept in this tab only."
      : SIGNED
        ? "Showing your uploads from this browser. Enter the access key to upload and to see every result."
        : "Showing your uploads from this browser. Enter the access key to see every result.";
  }

  function askForKey(text) {
    accessMessage(text);
    el.accessKey.focus();
  }

  // Ask the results API whether `key` is the access key: true, false, or an error text.
  async function checkKey(key) {
    try {
      const response = await fetch(`${config.resultsApi}?limit=1`, {
        headers: { Accept: "application/json", ...authorization(key) },
        cache: "no-store",
      });
      if (response.ok) return true;
      if (response.status === 401) return false;
      const body = await response.json().catch(() => null);
      return (body && body.error) || `HTTP ${response.status}`;
    } catch (error) {
      return errorText(error);
    }
  }

  async function unlock(event) {
    event.preventDefault();
    const key = el.accessKey.value.trim();
    if (!key) return;
    el.accessUnlock.disabled = true;
    const verdict = await checkKey(key);
    el.accessUnlock.disabled = false;
    if (verdict === true) {
      el.accessKey.value = "";
      accessMessage("");
      setAccessKey(key);
      loadGallery(null);
      if (similarOf) loadSimilar(similarOf);
    } else if (verdict === false) {
      el.accessKey.select();
      accessMessage("That access key is not valid.");
    } else {
      accessMessage(`Couldn't check the key: ${verdict}`);
    }
  }

  function lock() {
    setAccessKey(null);
    accessMessage("");
    loadGallery(null);
    if (similarOf) loadSimilar(similarOf);
  }

  function setUpAccess() {
    if (!PRIVATE) return;
    el.access.addEventListener("submit", unlock);
    el.accessLock.addEventListener("click", lock);
    renderAccess();
  }

  // Signed uploads: the Upload widget calls this with the parameters it is about to send; our
  // server signs them (with the API secret it never shares) for the access key only.
  async function getUploadSignature(callback, paramsToSign) {
    const key = accessKey();
    if (!key) {
      uploadRefused("Enter the access key to upload.");
      askForKey("Enter the access key to upload.");
      return;
    }
    let response;
    let body;
    try {
      response = await fetch(config.signUploadApi, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", ...authorization(key) },
        body: JSON.stringify({ params_to_sign: paramsToSign }),
        cache: "no-store",
      });
      body = await response.json().catch(() => null);
    } catch (error) {
      uploadRefused(`Couldn't get the upload signed: ${errorText(error)}`);
      return;
    }
    if (response.status === 401) {
      setAccessKey(null);
      uploadRefused("The access key was not accepted.");
      askForKey("That access key is not valid.");
      return;
    }
    if (!response.ok || !body || typeof body.signature !== "string") {
      uploadRefused(`The upload was refused: ${(body && body.error) || `HTTP ${response.status}`}`);
      return;
    }
    callback(body.signature);
  }

  function uploadRefused(text) {
    uploading = false;
    run += 1;
    if (widget) widget.close();
    showImage(null);
    setState("error", "The upload did not go through", text);
  }

  // "Recent results": every result (public, or with the key), else this browser's own uploads.
  async function readRecent(filter) {
    const key = PRIVATE ? accessKey() : null;
    if (PRIVATE && !key) return { results: await readMine(), everything: false };
    const params = new URLSearchParams({ limit: String(GALLERY_LIMIT) });
    if (filter) params.set(filter.kind, filter.value);
    const response = await fetch(`${config.resultsApi}?${params}`, {
      headers: { Accept: "application/json", ...authorization(key) },
      cache: "no-store",
    });
    const body = await response.json().catch(() => null);
    if (PRIVATE && response.status === 401) {
      setAccessKey(null);
      accessMessage("The access key is no longer valid.");
      return { results: await readMine(), everything: false };
    }
    if (!response.ok) throw new Error((body && body.error) || `HTTP ${response.status}`);
    return { results: (body && body.results) || [], everything: true };
  }

  async function readMine() {
    const found = await Promise.all(myUploads().map((id) => fetchRecord(id).catch(() => null)));
    return found
      .filter(Boolean)
      .sort((a, b) => (Date.parse(b.created_at) || 0) - (Date.parse(a.created_at) || 0));
  }

  // -- following an upload ------------------------------------------------------------------

  async function fetchRecord(assetId) {
    const params = new URLSearchParams({ asset_id: assetId });
    const response = await fetch(`${config.resultsApi}?${params}`, {
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`results API answered HTTP ${response.status}`);
    const body = await response.json();
    return (body.results || [])[0] || null;
  }

  // Forward the signed upload result to on_upload (works without a public webhook URL).
  async function forwardUpload(info) {
    if (!config.forwardUrl) return { record: null, error: null };
    const body = {
      public_id: info.public_id,
      version: info.version,
      signature: info.signature,
      asset_id: info.asset_id,
      resource_type: info.resource_type,
      type: info.type,
    };
    try {
      const response = await fetch(config.forwardUrl, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const data = await response.json().catch(() => null);
      if (response.ok) return { record: data, error: null };
      if (response.status === 409) return { record: null, error: null }; // classifying elsewhere
      return { record: null, error: (data && data.error) || `HTTP ${response.status}` };
    } catch (_error) {
      return { record: null, error: "on_upload could not be reached" };
    }
  }

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
      if (token !== run) return { superseded: true };
      if (forward && isFinal(forward.record) && forward.record.asset_id === assetId) {
        return { record: forward.record };
      }
      if (forward && forward.record && forward.record.status === "queued") showQueued();
      try {
        const record = await fetchRecord(assetId);
        failures = 0;
        if (token !== run) return { superseded: true };
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
    if (outcome.superseded || token !== run) return;
    if (outcome.record) {
      renderRecord(outcome.record);
      loadGallery(activeFilter);
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
    el.actions.hidden = false;
    el.checkAgain.onclick = () => {
      const again = ++run;
      setState("classifying", "Classifying…", "Checking for the result again.");
      renderSkeleton();
      addMeta("Public ID", info.public_id, true);
      track(info, again, Promise.resolve({ record: null, error: null }));
    };
  }

  function onUploaded(info) {
    uploading = false;
    const token = ++run;
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

  function onUploadError(error) {
    uploading = false;
    run += 1;
    const text = errorText(error);
    showImage(null);
    if (/invalid image|not allowed|format|not an image|unsupported/i.test(text)) {
      setState("not-image", "That's not an image", text);
    } else {
      setState("error", "The upload did not go through", text);
    }
  }

  function onWidgetEvent(error, result) {
    if (error) {
      onUploadError(error);
      return;
    }
    if (!result || typeof result !== "object") return;
    switch (result.event) {
      case "upload-added":
      case "queues-start":
        if (!uploading) {
          uploading = true;
          run += 1;
          showImage(null);
          const name = result.info && result.info.file && result.info.file.name;
          setState("uploading", "Uploading…", name ? `Sending ${name} to Cloudinary.` : "Sending your photo to Cloudinary.");
        }
        break;
      case "success":
        onUploaded(result.info);
        break;
      case "abort":
      case "close":
        if (uploading && result.event === "abort") {
          uploading = false;
          setState("idle", "Upload cancelled", "Nothing was uploaded.");
        }
        break;
      default:
        break;
    }
  }

  // -- the widget ---------------------------------------------------------------------------

  function notice(text) {
    el.notice.textContent = text;
    el.notice.hidden = false;
  }

  function createWidget() {
    if (!window.cloudinary || typeof window.cloudinary.createUploadWidget !== "function") {
      notice("The Cloudinary Upload widget did not load. Check your connection and reload the page.");
      return;
    }
    const signed = SIGNED
      ? { apiKey: config.apiKey, uploadSignature: getUploadSignature, folder: config.uploadFolder }
      : {};
    widget = window.cloudinary.createUploadWidget(
      {
        ...signed,
        cloudName: config.cloudName,
        uploadPreset: config.uploadPreset,
        sources: ["local", "camera"],
        multiple: false,
        maxFiles: 1,
        resourceType: "auto",
        clientAllowedFormats: ["image", "video"],
        maxImageFileSize: config.maxImageBytes || undefined,
        showAdvancedOptions: false,
        cropping: false,
        singleUploadAutoClose: true,
        styles: {
          palette: {
            window: "#FFFFFF",
            windowBorder: "#C7CBE0",
            tabIcon: "#4F46E5",
            menuIcons: "#5D6475",
            textDark: "#14161F",
            textLight: "#FFFFFF",
            link: "#4F46E5",
            action: "#4F46E5",
            inactiveTabIcon: "#8A90A6",
            error: "#C0262D",
            inProgress: "#4F46E5",
            complete: "#0F8A5F",
            sourceBg: "#F6F7FB",
          },
        },
      },
      onWidgetEvent,
    );
    el.button.disabled = false;
  }

  function setUpUploads() {
    if (config.localUploadUrl && config.uploadPreset) {
      setUpLocalUploads();
      return;
    }
    if (!config.cloudName || !config.uploadPreset) {
      const missing = [!config.cloudName && "CLOUDINARY_URL", !config.uploadPreset && "CLOUDINARY_UPLOAD_PRESET"]
        .filter(Boolean)
        .join(" and ");
      const preset = SIGNED ? "a signed upload preset" : "an unsigned upload preset";
      notice(`Uploads are off: set ${missing} (${preset}) for the results function.`);
      el.hint.hidden = true;
      return;
    }
    el.button.addEventListener("click", () => {
      if (SIGNED && PRIVATE && !accessKey()) {
        askForKey("Enter the access key to upload.");
        return;
      }
      if (widget) widget.open();
    });
    const script = document.createElement("script");
    script.src = config.widgetScript;
    script.async = true;
    script.onload = createWidget;
    script.onerror = () =>
      notice("The Cloudinary Upload widget could not be loaded. Check your connection and reload the page.");
    document.head.append(script);
  }

  // -- local Cloudinary (`make run` without an account): file chooser and drag-and-drop -------

  function setUpLocalUploads() {
    $("local-badge").hidden = false;
    el.hint.textContent = "Choose a photo, or drop one anywhere on this page: it goes to the local Cloudinary.";
    const input = $("local-file");
    el.button.addEventListener("click", () => {
      if (!uploading) input.click();
    });
    input.addEventListener("change", () => {
      const file = input.files && input.files[0];
      input.value = "";
      if (file) uploadLocally(file);
    });
    const carriesFiles = (event) =>
      Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types || []).includes("Files");
    document.addEventListener("dragover", (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      document.body.classList.add("drop-target");
    });
    document.addEventListener("dragleave", (event) => {
      if (!event.relatedTarget) document.body.classList.remove("drop-target");
    });
    document.addEventListener("drop", (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      document.body.classList.remove("drop-target");
      const file = event.dataTransfer.files[0];
      if (file && !uploading) uploadLocally(file);
    });
    el.button.disabled = false;
  }

  // An unsigned upload to the local Upload API, then the same follow-up as the widget's success.
  async function uploadLocally(file) {
    uploading = true;
    run += 1;
    showImage(null);
    setState("uploading", "Uploading…", `Sending ${file.name} to the local Cloudinary.`);
    if (config.maxImageBytes && file.size > config.maxImageBytes) {
      onUploadError(`The file is larger than ${config.maxImageBytes} bytes.`);
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("upload_preset", config.uploadPreset);
    let body = null;
    try {
      const response = await fetch(config.localUploadUrl, { method: "POST", body: form, credentials: "omit" });
      body = await response.json().catch(() => null);
      if (!response.ok) {
        onUploadError((body && body.error) || `HTTP ${response.status}`);
        return;
      }
    } catch (_error) {
      onUploadError("The local Cloudinary could not be reached (is make run still running?).");
      return;
    }
    onUploaded(body);
  }

  function showWeightsBanner() {
    $("weights-banner").hidden = !config.randomWeights;
  }

  // -- gallery ------------------------------------------------------------------------------

  // A concept filter asks for the tag as written (TAG_PREFIX + name); a label filter for the label.
  function conceptFilter(name) {
    return { kind: "tag", value: `${config.tagPrefix || ""}${name}`, name };
  }

  function labelFilter(label) {
    return { kind: "label", value: label, name: label };
  }

  function sameFilter(a, b) {
    return Boolean(a) && Boolean(b) && a.kind === b.kind && a.value === b.value;
  }

  function chip(filter, count, className) {
    const button = node("button", className, humanLabel(filter.name));
    button.type = "button";
    button.title = filter.kind === "tag" ? `concept: ${filter.name}` : filter.name;
    button.append(node("span", "chip-count", count));
    button.setAttribute("aria-pressed", String(sameFilter(activeFilter, filter)));
    button.addEventListener("click", () => loadGallery(sameFilter(activeFilter, filter) ? null : filter));
    return button;
  }

  function renderChips() {
    const chips = [];
    const all = node("button", "chip", "All");
    all.type = "button";
    all.setAttribute("aria-pressed", String(activeFilter === null));
    all.addEventListener("click", () => loadGallery(null));
    chips.push(all);
    for (const [name, count] of knownConcepts) chips.push(chip(conceptFilter(name), count, "chip chip-concept"));
    for (const [label, count] of knownLabels) chips.push(chip(labelFilter(label), count, "chip"));
    el.filters.replaceChildren(...chips);
    el.filters.hidden = knownLabels.length === 0 && knownConcepts.length === 0;
  }

  function mostCommon(values) {
    const counts = new Map();
    for (const value of values) counts.set(value, (counts.get(value) || 0) + 1);
    return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  }

  function placeholder() {
    const copy = el.placeholder.cloneNode(true);
    copy.removeAttribute("id");
    copy.hidden = false;
    return copy;
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
      const image = node("img");
      image.loading = "lazy";
      image.decoding = "async";
      image.alt = humanLabel(record.label) || "Uploaded image";
      image.addEventListener("error", () => {
        image.hidden = true;
        media.append(placeholder());
      });
      image.src = url;
      media.append(image);
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
    button.addEventListener("click", () => {
      run += 1;
      renderRecord(record);
      el.current.scrollIntoView({ behavior: "smooth", block: "start" });
    });
    item.append(button);
    return item;
  }

  async function loadGallery(filter) {
    const request = ++galleryRequest;
    activeFilter = filter || null;
    renderChips();
    let results;
    let everything;
    try {
      ({ results, everything } = await readRecent(activeFilter));
    } catch (error) {
      if (request !== galleryRequest) return;
      el.grid.replaceChildren();
      el.galleryMessage.textContent = `Couldn't load recent results: ${errorText(error)}`;
      el.galleryMessage.hidden = false;
      return;
    }
    if (request !== galleryRequest) return;
    if (!everything) {
      activeFilter = null;
      knownLabels = []; // filters list everything: they come with the key
      knownConcepts = [];
      renderChips();
    } else if (!activeFilter) {
      const done = results.filter((record) => record.status === "done");
      knownConcepts = mostCommon(
        done.flatMap((record) =>
          (Array.isArray(record.concepts) ? record.concepts : [])
            .map((concept) => concept && concept.name)
            .filter((name) => typeof name === "string" && name),
        ),
      ).slice(0, MAX_CHIPS);
      knownLabels = mostCommon(done.map((record) => record.label).filter(Boolean)).slice(0, MAX_CHIPS);
      renderChips();
    }
    el.grid.replaceChildren(...results.map(card));
    const n = results.length;
    el.galleryCount.textContent = !everything
      ? n
        ? `${n} uploaded from this browser`
        : ""
      : activeFilter
        ? activeFilter.kind === "tag"
          ? `${n} tagged “${humanLabel(activeFilter.name)}”`
          : `${n} labelled “${humanLabel(activeFilter.name)}”`
        : n
          ? `${n} most recent`
          : "";
    el.galleryMessage.hidden = n > 0;
    el.galleryMessage.textContent = !everything
      ? "Your uploads from this browser appear here."
      : activeFilter
        ? activeFilter.kind === "tag"
          ? "Nothing with this concept yet."
          : "Nothing with this label yet."
        : "No results yet. Upload a photo to see it here.";
  }

  // -- start --------------------------------------------------------------------------------

  setState("idle", "Your result appears here", "Classification takes about a second once the upload finishes.");
  showWeightsBanner();
  setUpAccess();
  setUpUploads();
  loadGallery(null);
})();

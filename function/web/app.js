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
    tagsBlock: $("current-tags-block"),
    tags: $("current-tags"),
    meta: $("current-meta"),
    actions: $("current-actions"),
    checkAgain: $("check-again"),
    filters: $("filters"),
    grid: $("gallery-grid"),
    galleryMessage: $("gallery-message"),
    galleryCount: $("gallery-count"),
  };

  let widget = null;
  let run = 0; // bumps on every new upload: an older follow() stops on its own
  let uploading = false;
  let activeFilter = null;
  let knownLabels = [];
  let galleryRequest = 0;

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
    el.tags.replaceChildren();
    el.tagsBlock.hidden = true;
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

  function renderRecord(record) {
    showImage(deliveryUrl(record.secure_url, PREVIEW), humanLabel(record.label) || record.public_id);
    if (record.status === "done") {
      setState("done", humanLabel(record.label), `${percent(record.score)} confidence`);
      renderPredictions(record.predictions);
      for (const tag of record.tags || []) el.tags.append(node("li", "tag", tag));
      el.tagsBlock.hidden = !(record.tags || []).length;
    } else if (record.status === "failed") {
      setState("failed", "Couldn't classify this image", record.error || "No reason was recorded.");
    } else {
      setState("classifying", "Classifying…", "The model is looking at this photo.");
      renderSkeleton();
    }
    addMeta("Public ID", record.public_id, true);
    addMeta("Model", record.model);
    addMeta("Time", record.timings ? seconds(record.timings.total) : null);
    if (record.created_at) addMeta("Uploaded", new Date(record.created_at).toLocaleString());
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
    if (info.resource_type && info.resource_type !== "image") {
      showImage(null);
      setState(
        "not-image",
        "That's not an image",
        `Cloudinary stored this file as ${info.resource_type}; only images can be classified.`,
      );
      addMeta("Public ID", info.public_id, true);
      return;
    }
    showImage(deliveryUrl(info.secure_url, PREVIEW), info.original_filename || info.public_id);
    setState("classifying", "Classifying…", "Uploaded. The model is looking at your photo.");
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
    widget = window.cloudinary.createUploadWidget(
      {
        cloudName: config.cloudName,
        uploadPreset: config.uploadPreset,
        sources: ["local", "camera"],
        multiple: false,
        maxFiles: 1,
        resourceType: "image",
        clientAllowedFormats: ["image"],
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
    if (!config.cloudName || !config.uploadPreset) {
      const missing = [!config.cloudName && "CLOUDINARY_URL", !config.uploadPreset && "CLOUDINARY_UPLOAD_PRESET"]
        .filter(Boolean)
        .join(" and ");
      notice(`Uploads are off: set ${missing} (an unsigned upload preset) for the results function.`);
      el.hint.hidden = true;
      return;
    }
    el.button.addEventListener("click", () => {
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

  // -- gallery ------------------------------------------------------------------------------

  function renderChips() {
    const chips = [];
    const all = node("button", "chip", "All");
    all.type = "button";
    all.setAttribute("aria-pressed", String(activeFilter === null));
    all.addEventListener("click", () => loadGallery(null));
    chips.push(all);
    for (const [label, count] of knownLabels) {
      const chip = node("button", "chip", humanLabel(label));
      chip.type = "button";
      chip.title = label;
      chip.append(node("span", "chip-count", count));
      chip.setAttribute("aria-pressed", String(activeFilter === label));
      chip.addEventListener("click", () => loadGallery(activeFilter === label ? null : label));
      chips.push(chip);
    }
    el.filters.replaceChildren(...chips);
    el.filters.hidden = knownLabels.length === 0;
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
    const url = deliveryUrl(record.secure_url, THUMB);
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

  async function loadGallery(label) {
    const request = ++galleryRequest;
    activeFilter = label || null;
    renderChips();
    const params = new URLSearchParams({ limit: String(GALLERY_LIMIT) });
    if (activeFilter) params.set("label", activeFilter);
    let results;
    try {
      const response = await fetch(`${config.resultsApi}?${params}`, {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      const body = await response.json().catch(() => null);
      if (!response.ok) throw new Error((body && body.error) || `HTTP ${response.status}`);
      results = (body && body.results) || [];
    } catch (error) {
      if (request !== galleryRequest) return;
      el.grid.replaceChildren();
      el.galleryMessage.textContent = `Couldn't load recent results: ${errorText(error)}`;
      el.galleryMessage.hidden = false;
      return;
    }
    if (request !== galleryRequest) return;
    if (!activeFilter) {
      const counts = new Map();
      for (const record of results) {
        if (record.status === "done" && record.label) {
          counts.set(record.label, (counts.get(record.label) || 0) + 1);
        }
      }
      knownLabels = [...counts.entries()]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, MAX_CHIPS);
      renderChips();
    }
    el.grid.replaceChildren(...results.map(card));
    const n = results.length;
    el.galleryCount.textContent = activeFilter
      ? `${n} labelled “${humanLabel(activeFilter)}”`
      : n
        ? `${n} most recent`
        : "";
    el.galleryMessage.hidden = n > 0;
    el.galleryMessage.textContent = activeFilter
      ? "Nothing with this label yet."
      : "No results yet. Upload a photo to see it here.";
  }

  // -- start --------------------------------------------------------------------------------

  setState("idle", "Your result appears here", "Classification takes about a second once the upload finishes.");
  setUpUploads();
  loadGallery(null);
})();

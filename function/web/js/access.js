// The access key (RESULTS_ACCESS=private). Listings need it, sent only as an Authorization
// header; it lives in sessionStorage (this tab, until it closes) and nowhere else. Without it,
// "Recent results" is this browser's own uploads: their asset_ids are kept in localStorage, and a
// lookup by asset_id needs no key.

import { checkKey } from "./api.js";
import { GALLERY_LIMIT, PRIVATE, SIGNED } from "./config.js";
import { $ } from "./dom.js";

const KEY_STORAGE = "autotagger.accessKey";
const MINE_STORAGE = "autotagger.myUploads";
export const ASSET_ID = /^[A-Za-z0-9_-]{1,128}$/;

const el = {
  form: $("access"),
  hint: $("access-hint"),
  locked: $("access-locked"),
  key: $("access-key"),
  unlock: $("access-unlock"),
  lock: $("access-lock"),
  message: $("access-message"),
};

export function accessKey() {
  try {
    return window.sessionStorage.getItem(KEY_STORAGE) || null;
  } catch (_error) {
    return null;
  }
}

export function setAccessKey(key) {
  try {
    if (key) window.sessionStorage.setItem(KEY_STORAGE, key);
    else window.sessionStorage.removeItem(KEY_STORAGE);
  } catch (_error) {
    // storage disabled: the key then lasts as long as this page
  }
  renderAccess();
}

export function myUploads() {
  try {
    const ids = JSON.parse(window.localStorage.getItem(MINE_STORAGE) || "[]");
    return Array.isArray(ids) ? ids.filter((id) => typeof id === "string" && ASSET_ID.test(id)) : [];
  } catch (_error) {
    return [];
  }
}

export function rememberUpload(assetId) {
  if (!PRIVATE || typeof assetId !== "string" || !ASSET_ID.test(assetId)) return;
  const ids = [assetId, ...myUploads().filter((id) => id !== assetId)].slice(0, GALLERY_LIMIT);
  try {
    window.localStorage.setItem(MINE_STORAGE, JSON.stringify(ids));
  } catch (_error) {
    // storage full or disabled: the upload is still shown now
  }
}

export function accessMessage(text) {
  el.message.textContent = text || "";
  el.message.hidden = !text;
}

function renderAccess() {
  if (!PRIVATE) return;
  const unlocked = Boolean(accessKey());
  el.form.hidden = false;
  el.locked.hidden = unlocked;
  el.lock.hidden = !unlocked;
  el.hint.textContent = unlocked
    ? "Unlocked: showing every result. The key is kept in this tab only."
    : SIGNED
      ? "Showing your uploads from this browser. Enter the access key to upload and to see every result."
      : "Showing your uploads from this browser. Enter the access key to see every result.";
}

export function askForKey(text) {
  accessMessage(text);
  el.key.focus();
}

// The key form; `onChange` runs after the key was accepted or dropped (to reload the listings).
export function setUpAccess(onChange) {
  if (!PRIVATE) return;
  el.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = el.key.value.trim();
    if (!key) return;
    el.unlock.disabled = true;
    const verdict = await checkKey(key);
    el.unlock.disabled = false;
    if (verdict === true) {
      el.key.value = "";
      accessMessage("");
      setAccessKey(key);
      onChange();
    } else if (verdict === false) {
      el.key.select();
      accessMessage("That access key is not valid.");
    } else {
      accessMessage(`Couldn't check the key: ${verdict}`);
    }
  });
  el.lock.addEventListener("click", () => {
    setAccessKey(null);
    accessMessage("");
    onChange();
  });
  renderAccess();
}

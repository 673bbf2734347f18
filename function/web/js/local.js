// The local Cloudinary of `make run` (no account): the file chooser and drag-and-drop, and an
// unsigned upload to the local Upload API, then the same follow-up as the widget's success.

import { config } from "./config.js";
import { $ } from "./dom.js";
import { isUploading } from "./session.js";
import { onUploadError, onUploaded, startUpload } from "./upload.js";

async function uploadLocally(file) {
  startUpload(`Sending ${file.name} to the local Cloudinary.`);
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

const carriesFiles = (event) =>
  Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types || []).includes("Files");

export function setUpLocalUploads() {
  const button = $("upload-button");
  const input = $("local-file");
  $("local-badge").hidden = false;
  $("upload-hint").textContent = "Choose a photo, or drop one anywhere on this page: it goes to the local Cloudinary.";
  button.addEventListener("click", () => {
    if (!isUploading()) input.click();
  });
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    input.value = "";
    if (file) uploadLocally(file);
  });
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
    if (file && !isUploading()) uploadLocally(file);
  });
  button.disabled = false;
}

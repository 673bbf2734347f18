// Uploads through Cloudinary's Upload widget (files or camera), unsigned or, in signed mode,
// with each upload signed by our server for the access key.

import { accessKey, askForKey, setAccessKey } from "./access.js";
import { requestSignature } from "./api.js";
import { PRIVATE, SIGNED, config } from "./config.js";
import { setState, showImage } from "./current.js";
import { $ } from "./dom.js";
import { errorText } from "./format.js";
import { nextRun, isUploading, setUploading } from "./session.js";
import { onUploadError, onUploaded, startUpload } from "./upload.js";

const PALETTE = {
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
};

const el = { button: $("upload-button"), hint: $("upload-hint"), notice: $("setup-notice") };

let widget = null;

function notice(text) {
  el.notice.textContent = text;
  el.notice.hidden = false;
}

function uploadRefused(text) {
  setUploading(false);
  nextRun();
  if (widget) widget.close();
  showImage(null);
  setState("error", "The upload did not go through", text);
}

// The widget calls this with the parameters it is about to send; our server signs them.
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
    ({ response, body } = await requestSignature(paramsToSign, key));
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

function onWidgetEvent(error, result) {
  if (error) {
    onUploadError(error);
    return;
  }
  if (!result || typeof result !== "object") return;
  switch (result.event) {
    case "upload-added":
    case "queues-start":
      if (!isUploading()) {
        const name = result.info && result.info.file && result.info.file.name;
        startUpload(name ? `Sending ${name} to Cloudinary.` : "Sending your photo to Cloudinary.");
      }
      break;
    case "success":
      onUploaded(result.info);
      break;
    case "abort":
    case "close":
      if (isUploading() && result.event === "abort") {
        setUploading(false);
        setState("idle", "Upload cancelled", "Nothing was uploaded.");
      }
      break;
    default:
      break;
  }
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
      styles: { palette: PALETTE },
    },
    onWidgetEvent,
  );
  el.button.disabled = false;
}

// Load the widget's script and open the widget on "Upload"; say what is missing if unconfigured.
export function setUpWidget() {
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

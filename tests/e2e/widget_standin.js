// Stand-in for Cloudinary's Upload widget script
// (https://upload-widget.cloudinary.com/latest/global/all.js), served to the browser by the tests
// in place of the real one. Same global API as documented in the Upload widget reference:
// cloudinary.createUploadWidget(options, callback) returns a widget with open(), close(),
// destroy(), ...; callback(error, result) gets {event, info} for "display-changed",
// "upload-added", "queues-start", "success" (info = the Upload API response), "queues-end",
// "close". Where the real widget uploads to api.cloudinary.com, this one makes the same upload to
// the Cloudinary stand-in at window.__widgetStandin.uploadUrl: unsigned (file + upload_preset),
// or signed like the real widget's documented flow when `uploadSignature` is given: it calls
// uploadSignature(callback, params_to_sign) with the upload parameters it is about to send
// (timestamp, source "uw", upload_preset, folder, public_id), waits for callback(signature),
// then sends them with api_key and that signature. window.__widgetStandin.tamper (set by a test)
// is merged into the parameters before signing: a modified client asking to sign more.
// Which file to upload comes from the test (window.__standinNextFile, an exposed function).
(() => {
  "use strict";

  const settings = window.__widgetStandin || {};

  function decode(base64) {
    const text = atob(base64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
    return bytes;
  }

  // resourceType "auto": videos (and audio, which Cloudinary stores as video) go to the video
  // endpoint, anything else to the image endpoint. (The real widget refuses files outside
  // clientAllowedFormats before uploading; the image endpoint's "Invalid image file" stands in.)
  function endpointFor(resourceType, mime) {
    if (resourceType !== "auto") return resourceType;
    return /^(video|audio)\//.test(mime || "") ? "video" : "image";
  }

  function createUploadWidget(options, callback) {
    let showing = false;
    let destroyed = false;
    let counter = 0;
    const emit = (event, info) =>
      callback(null, info === undefined ? { event } : { event, info });

    async function uploadOne() {
      const file = await window.__standinNextFile();
      if (!file) {
        emit("close");
        return;
      }
      counter += 1;
      const id = `uw-file${counter}`;
      const blob = new File([decode(file.base64)], file.name, { type: file.type });
      emit("upload-added", { file: { name: file.name, size: blob.size, type: file.type }, publicId: id });
      emit("queues-start");
      const params = {};
      if (options.uploadPreset) params.upload_preset = options.uploadPreset;
      if (options.folder) params.folder = options.folder;
      if (file.publicId) params.public_id = file.publicId;
      if (options.uploadSignature) {
        if (!options.apiKey) {
          callback({ status: "Missing apiKey", statusText: "apiKey is required for signed uploads" });
          return;
        }
        Object.assign(params, { timestamp: Math.round(Date.now() / 1000), source: "uw" });
        Object.assign(params, settings.tamper || {});
        const signature =
          typeof options.uploadSignature === "function"
            ? await new Promise((resolve) => options.uploadSignature(resolve, { ...params }))
            : options.uploadSignature;
        if (!showing) return; // closed while waiting for the signature: nothing is uploaded
        Object.assign(params, { api_key: options.apiKey, signature });
      }
      const form = new FormData();
      form.append("file", blob, file.name);
      for (const [name, value] of Object.entries(params)) form.append(name, String(value));
      const resourceType = endpointFor(options.resourceType || "auto", file.type);
      const url = `${settings.uploadUrl}/v1_1/${options.cloudName}/${resourceType}/upload`;
      let response;
      let body;
      try {
        response = await fetch(url, { method: "POST", body: form });
        body = await response.json();
      } catch (error) {
        callback({ status: "Network error", statusText: String(error) }, undefined);
        return;
      }
      if (!response.ok) {
        const message = (body && body.error && body.error.message) || `HTTP ${response.status}`;
        callback({ status: message, statusText: message }, undefined);
        return;
      }
      if (window.__standinAfterUpload) await window.__standinAfterUpload(body);
      const path = `v${body.version}/${body.public_id}${body.format ? `.${body.format}` : ""}`;
      emit("success", { ...body, id, batchId: `uw-batch${counter}`, path, thumbnail_url: body.secure_url });
      emit("queues-end", { files: [{ id, done: true, uploadInfo: body }] });
      if (options.singleUploadAutoClose !== false) {
        showing = false;
        emit("display-changed", "hidden");
        emit("close");
      }
    }

    return {
      open() {
        if (destroyed) throw new Error("widget destroyed");
        showing = true;
        emit("display-changed", "shown");
        uploadOne();
      },
      close() {
        if (showing) {
          showing = false;
          emit("display-changed", "hidden");
          emit("close");
        }
      },
      hide() {
        showing = false;
      },
      show() {
        showing = true;
      },
      minimize() {},
      update() {},
      isShowing: () => showing,
      isMinimized: () => false,
      isDestroyed: () => destroyed,
      destroy() {
        destroyed = true;
        showing = false;
        return Promise.resolve();
      },
    };
  }

  window.cloudinary = {
    createUploadWidget,
    openUploadWidget(options, callback) {
      const widget = createUploadWidget(options, callback);
      widget.open();
      return widget;
    },
    setCloudName() {},
    setAPIKey() {},
  };
})();

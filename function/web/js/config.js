// The page's public configuration, injected by the server into a JSON data block (never code).

function readConfig() {
  try {
    const block = document.getElementById("autotagger-config");
    return JSON.parse((block && block.textContent) || "{}") || {};
  } catch (_error) {
    return {};
  }
}

export const config = readConfig();

// RESULTS_ACCESS=private: listings need the access key.
export const PRIVATE = config.access === "private";
// UPLOAD_MODE=signed: our server signs each upload for the access key.
export const SIGNED = config.uploadMode === "signed";

// "Recent results" shows this many; as many of this browser's own uploads are remembered.
export const GALLERY_LIMIT = 24;

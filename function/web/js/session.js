// What the page is doing right now, shared by the upload paths and the result views.
// Every new upload or picked result starts a new run: an older follow-up sees it and stops.

let run = 0;
let uploading = false;

// Start a new run; returns its token.
export function nextRun() {
  run += 1;
  return run;
}

export function isLatest(token) {
  return token === run;
}

export function isUploading() {
  return uploading;
}

export function setUploading(value) {
  uploading = value;
}

// autotagger upload page, the entry module: upload (Cloudinary's widget, or the local stand-in of
// `make run`) -> follow the classification -> the result, more like this, and the gallery.
// Native ES modules, no build step; index.html loads only this one.

import { setUpAccess } from "./access.js";
import { config } from "./config.js";
import { setState, showRecord } from "./current.js";
import { $ } from "./dom.js";
import { loadGallery } from "./gallery.js";
import { setUpLocalUploads } from "./local.js";
import { onPick, reloadSimilar } from "./similar.js";
import { setUpWidget } from "./widget.js";

setState("idle", "Your result appears here", "Classification takes about a second once the upload finishes.");
$("weights-banner").hidden = !config.randomWeights;
onPick(showRecord);
setUpAccess(() => {
  loadGallery(null);
  reloadSimilar();
});
if (config.localUploadUrl && config.uploadPreset) setUpLocalUploads();
else setUpWidget();
loadGallery(null);

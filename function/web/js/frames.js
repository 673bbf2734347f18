// A video's sampled frames, each with its time and top-1 label (or why it was skipped).

import { $, node, thumbnail } from "./dom.js";
import { clock, humanLabel, percent } from "./format.js";
import { FRAME_THUMB, isVideo, videoFrameUrl } from "./media.js";

const el = { block: $("current-frames-block"), list: $("current-frames") };

export function clearFrameStrip() {
  el.list.replaceChildren();
  el.block.hidden = true;
}

export function renderFrameStrip(record) {
  clearFrameStrip();
  const frames = Array.isArray(record.frames) ? record.frames : [];
  if (!isVideo(record) || !frames.length) return;
  for (const frame of frames) {
    const item = node("li", frame.error ? "frame frame-skipped" : "frame");
    const media = node("div", "frame-media");
    const url = videoFrameUrl(record.secure_url, frame.offset, FRAME_THUMB);
    if (url) media.append(thumbnail(url, frame.error ? "" : `Frame at ${clock(frame.offset)}`));
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
    el.list.append(item);
  }
  el.block.hidden = false;
}

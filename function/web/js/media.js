// Delivery URLs: only http(s) URLs reach an <img>; Cloudinary resizes on delivery, and delivers any
// moment of a video as an image (so_<seconds> + .jpg).

import { node } from "./dom.js";
import { clock } from "./format.js";

export const PREVIEW = "c_limit,w_1200,h_1200,q_auto,f_auto";
export const THUMB = "c_fill,g_auto,w_480,h_360,q_auto,f_auto";
export const FRAME_THUMB = "c_fill,w_160,h_120,q_auto,f_auto";
export const SIMILAR_THUMB = "c_fill,g_auto,w_200,h_150,q_auto,f_auto";

export function safeUrl(url) {
  if (typeof url !== "string" || !url) return null;
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch (_error) {
    return null;
  }
}

// A Cloudinary delivery URL with a transformation in front of the version (smaller images).
export function deliveryUrl(url, transformation) {
  const safe = safeUrl(url);
  if (!safe) return null;
  const marker = "/image/upload/";
  const at = safe.indexOf(marker);
  if (at < 0) return safe;
  const rest = safe.slice(at + marker.length);
  if (!/^v\d+\//.test(rest)) return safe;
  return `${safe.slice(0, at + marker.length)}${transformation}/${rest}`;
}

export function isVideo(record) {
  return Boolean(record) && record.resource_type === "video" && !record.is_audio;
}

// `…/video/upload/v<version>/<id>.<ext>` -> `…/video/upload/so_<t>,<transformation>/v<version>/<id>.jpg`
// (no so_ when `offset` is unknown: Cloudinary then picks the middle frame).
export function videoFrameUrl(url, offset, transformation) {
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
export function mediaUrl(record, transformation) {
  return isVideo(record)
    ? videoPosterUrl(record, transformation)
    : deliveryUrl(record.secure_url, transformation);
}

export function videoBadge(record) {
  const text = Number.isFinite(Number(record.duration)) ? `Video · ${clock(Math.round(record.duration))}` : "Video";
  return node("span", "card-badge", text);
}

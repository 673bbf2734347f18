// Formatting of labels, scores, times and errors for display.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function humanLabel(label) {
  return String(label || "").replace(/_/g, " ");
}

export function percent(score) {
  const value = Math.max(0, Math.min(1, Number(score) || 0)) * 100;
  return value >= 10 || value === 0 ? `${value.toFixed(0)}%` : `${value.toFixed(1)}%`;
}

// A video time as m:ss (fractions kept when there are any).
export function clock(value) {
  const total = Math.max(0, Number(value) || 0);
  const minutes = Math.floor(total / 60);
  const rest = total - minutes * 60;
  const secondsText = rest.toFixed(rest % 1 ? 2 : 0).replace(/\.?0+$/, "") || "0";
  return `${minutes}:${rest < 10 ? "0" : ""}${secondsText}`;
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });

export function ago(iso) {
  const at = Date.parse(iso);
  if (!at) return "";
  const seconds = (at - Date.now()) / 1000;
  const abs = Math.abs(seconds);
  if (abs < 45) return relative.format(0, "second");
  if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
  return relative.format(Math.round(seconds / 86400), "day");
}

export function seconds(ms) {
  const value = Number(ms);
  if (!Number.isFinite(value)) return null;
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(1)} s`;
}

export function errorText(error) {
  if (!error) return "Unknown error";
  if (typeof error === "string") return error;
  if (typeof error === "object") {
    const nested = error.error && typeof error.error === "object" ? error.error.message : null;
    const text = error.statusText || error.message || nested || error.status;
    if (text) return String(text);
  }
  return "Unknown error";
}

export function isFinal(record) {
  return Boolean(record) && (record.status === "done" || record.status === "failed");
}

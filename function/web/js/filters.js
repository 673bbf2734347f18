// Search by tag: the gallery's filter chips. A concept filter asks the results API for the tag
// as written (TAG_PREFIX + concept name, `?tag=`); a label filter for the top-1 label (`?label=`).

import { config } from "./config.js";
import { node } from "./dom.js";
import { humanLabel } from "./format.js";

const MAX_CHIPS = 12;

function conceptFilter(name) {
  return { kind: "tag", value: `${config.tagPrefix || ""}${name}`, name };
}

function labelFilter(label) {
  return { kind: "label", value: label, name: label };
}

function sameFilter(a, b) {
  return Boolean(a) && Boolean(b) && a.kind === b.kind && a.value === b.value;
}

// [value, count] pairs, the most common first (ties alphabetically).
function mostCommon(values) {
  const counts = new Map();
  for (const value of values) counts.set(value, (counts.get(value) || 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

// The concepts and labels worth a chip, from the done results of an unfiltered listing.
export function filterChips(results) {
  const done = results.filter((record) => record.status === "done");
  const concepts = mostCommon(
    done.flatMap((record) =>
      (Array.isArray(record.concepts) ? record.concepts : [])
        .map((concept) => concept && concept.name)
        .filter((name) => typeof name === "string" && name),
    ),
  ).slice(0, MAX_CHIPS);
  const labels = mostCommon(done.map((record) => record.label).filter(Boolean)).slice(0, MAX_CHIPS);
  return { concepts, labels };
}

function chip(filter, count, className, active, onSelect) {
  const button = node("button", className, humanLabel(filter.name));
  button.type = "button";
  button.title = filter.kind === "tag" ? `concept: ${filter.name}` : filter.name;
  button.append(node("span", "chip-count", count));
  button.setAttribute("aria-pressed", String(sameFilter(active, filter)));
  button.addEventListener("click", () => onSelect(sameFilter(active, filter) ? null : filter));
  return button;
}

// "All", then a chip per concept, then per label; `onSelect(filter | null)` on a click.
export function renderChips(container, chips, active, onSelect) {
  const buttons = [];
  const all = node("button", "chip", "All");
  all.type = "button";
  all.setAttribute("aria-pressed", String(active === null));
  all.addEventListener("click", () => onSelect(null));
  buttons.push(all);
  for (const [name, count] of chips.concepts) {
    buttons.push(chip(conceptFilter(name), count, "chip chip-concept", active, onSelect));
  }
  for (const [label, count] of chips.labels) buttons.push(chip(labelFilter(label), count, "chip", active, onSelect));
  container.replaceChildren(...buttons);
  container.hidden = chips.labels.length === 0 && chips.concepts.length === 0;
}

// The gallery's count line and its message when empty.
export function countText(n, active, everything) {
  if (!everything) return n ? `${n} uploaded from this browser` : "";
  if (active) {
    const name = humanLabel(active.name);
    return active.kind === "tag" ? `${n} tagged “${name}”` : `${n} labelled “${name}”`;
  }
  return n ? `${n} most recent` : "";
}

export function emptyText(active, everything) {
  if (!everything) return "Your uploads from this browser appear here.";
  if (active) return active.kind === "tag" ? "Nothing with this concept yet." : "Nothing with this label yet.";
  return "No results yet. Upload a photo to see it here.";
}

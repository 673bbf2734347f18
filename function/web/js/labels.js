// What the model said about the current result: the top labels with confidence bars, the
// concepts (WordNet ancestors of the labels), the tags written to Cloudinary and, apart from
// them, the tags learned from the account's own vocabulary.

import { $, node } from "./dom.js";
import { humanLabel, percent } from "./format.js";

const el = {
  predictions: $("current-predictions"),
  conceptsBlock: $("current-concepts-block"),
  concepts: $("current-concepts"),
  tagsBlock: $("current-tags-block"),
  tags: $("current-tags"),
  learnedBlock: $("current-learned-block"),
  learned: $("current-learned"),
};

export function clearLabels() {
  el.predictions.replaceChildren();
  el.concepts.replaceChildren();
  el.conceptsBlock.hidden = true;
  el.tags.replaceChildren();
  el.tagsBlock.hidden = true;
  el.learned.replaceChildren();
  el.learnedBlock.hidden = true;
}

export function renderSkeleton() {
  for (let i = 0; i < 5; i += 1) {
    const item = node("li", "prediction skeleton");
    const bar = node("div", "bar");
    item.append(node("span", "prediction-label"), node("span", "prediction-score"), bar);
    el.predictions.append(item);
  }
}

export function renderPredictions(predictions) {
  const fills = [];
  for (const prediction of predictions || []) {
    const item = node("li", "prediction");
    const label = node("span", "prediction-label", humanLabel(prediction.label));
    label.title = String(prediction.label || "");
    const score = node("span", "prediction-score", percent(prediction.score));
    const bar = node("div", "bar");
    bar.setAttribute("role", "presentation");
    const fill = node("div", "bar-fill");
    bar.append(fill);
    item.append(label, score, bar);
    el.predictions.append(item);
    fills.push([fill, percent(prediction.score)]);
  }
  // Set widths after layout so the bars grow (CSSOM: allowed under the page's CSP).
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      for (const [fill, width] of fills) fill.style.width = width;
    }),
  );
}

// Concepts (dog, vehicle, food), each with its summed score.
export function renderConcepts(concepts) {
  const list = Array.isArray(concepts) ? concepts : [];
  for (const concept of list) {
    const item = node("li", "concept");
    item.title = String(concept.wnid || "");
    item.append(
      node("span", "concept-name", humanLabel(concept.name)),
      node("span", "concept-score", percent(concept.score)),
    );
    el.concepts.append(item);
  }
  el.conceptsBlock.hidden = list.length === 0;
}

// Labels and concepts apart from the tags learned from the account's own (`vocabulary`).
export function renderTags(record) {
  const learned = ((record.vocabulary && record.vocabulary.tags) || []).filter(
    (t) => t && typeof t.tag === "string",
  );
  // Learned tags are written last (with TAG_PREFIX, if any): the labels are what precedes them.
  const tags = record.tags || [];
  const tail = tags.slice(tags.length - learned.length);
  const isTail = tail.every((tag) => learned.some((t) => tag.endsWith(t.tag)));
  const written = isTail ? tags.slice(0, tags.length - learned.length) : tags;
  for (const tag of written) el.tags.append(node("li", "tag", tag));
  el.tagsBlock.hidden = !written.length;
  for (const t of learned) {
    const item = node("li", "tag learned", t.tag);
    item.title = `${percent(t.score)} (vocabulary version ${record.vocabulary.version})`;
    el.learned.append(item);
  }
  el.learnedBlock.hidden = !learned.length;
}

// DOM helpers. Everything rendered from data goes through textContent (never innerHTML).

export const $ = (id) => document.getElementById(id);

export function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined && text !== null) element.textContent = String(text);
  return element;
}

// A copy of the current result's empty-picture placeholder, for cards whose image is missing.
export function placeholder() {
  const copy = $("current-placeholder").cloneNode(true);
  copy.removeAttribute("id");
  copy.hidden = false;
  return copy;
}

// A lazily loaded thumbnail; `onError` runs if it cannot be shown.
export function thumbnail(url, alt, onError) {
  const image = node("img");
  image.loading = "lazy";
  image.decoding = "async";
  image.alt = alt;
  image.addEventListener("error", () => {
    image.hidden = true;
    if (onError) onError();
  });
  image.src = url;
  return image;
}

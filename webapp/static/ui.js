// Small shared UI helpers: the error banner, element creation, confirmation and rename dialogs.

export function $(id) {
  return document.getElementById(id);
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

let bannerTimer = 0;

/** Show a message (an API error's sentence, usually) at the top of the page. */
export function showError(err) {
  const message = err && err.message ? err.message : String(err);
  $("banner-text").textContent = message;
  $("banner").hidden = false;
  $("banner").classList.remove("info");
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => ($("banner").hidden = true), 12000);
}

export function showInfo(message) {
  showError({ message });
  $("banner").classList.add("info");
}

export function initBanner() {
  $("banner-close").addEventListener("click", () => ($("banner").hidden = true));
}

function ask(dialog) {
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

export function confirmDelete(name) {
  $("confirm-text").textContent = `Delete “${name}”? It is removed from the display and the device.`;
  return ask($("confirm-dialog"));
}

/** The play settings dialog of an item: resolves with the changes ({fit, seconds, loops}) or null. */
export async function askPlaySettings(item) {
  const dialog = $("item-dialog");
  const form = $("item-form");
  $("item-dialog-title").textContent = `Play settings: ${item.name}`;
  form.elements.fit.value = item.fit || "";
  form.elements.seconds.value = item.seconds ?? "";
  form.elements.loops.value = item.loops ?? 1;
  const still = item.frames <= 1;
  $("item-loops-field").hidden = still;
  form.elements.seconds.placeholder = still ? "as in Display settings" : "one play";
  $("item-dialog-note").textContent = item.rerender === "needs_upload"
    ? "This item was added before originals were kept: a new fit applies once you upload it again."
    : "";
  if (!(await ask(dialog))) return null;
  const seconds = form.elements.seconds.value.trim();
  const changes = { fit: form.elements.fit.value || null, seconds: seconds === "" ? null : Number(seconds) };
  if (!still) changes.loops = Number(form.elements.loops.value) || 1;
  return changes;
}

export async function askName(current) {
  const input = $("rename-input");
  input.value = current;
  setTimeout(() => input.select(), 0);
  const ok = await ask($("rename-dialog"));
  return ok ? input.value.trim() : null;
}

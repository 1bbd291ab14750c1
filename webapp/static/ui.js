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

export async function askName(current) {
  const input = $("rename-input");
  input.value = current;
  setTimeout(() => input.select(), 0);
  const ok = await ask($("rename-dialog"));
  return ok ? input.value.trim() : null;
}

// The library grid: cards in play order, edits, deletes and drag-to-reorder (pointer events).
// Nothing changes on screen until the server has confirmed it: every change re-renders from
// the server's answer, and an error restores the last confirmed state with a message.

import { api } from "./api.js";
import { $, el, showError, confirmDelete, askName, askPlaySettings } from "./ui.js";

let items = [];           // the last state the server confirmed, in play order
let busy = new Set();     // ids with a request in flight (shown dimmed, not hidden)
let dragging = null;      // {card, pointerId} while a card is being dragged
let orderSaving = false;
let onChange = () => {};

export function isInteracting() {
  return dragging !== null || orderSaving;
}

export function setOnChange(callback) {
  onChange = callback;
}

export function currentItems() {
  return items;
}

/** Replace the confirmed state with the server's list and redraw. */
export function render(newItems) {
  items = newItems;
  const grid = $("grid");
  const existing = new Map([...grid.children].map((card) => [card.dataset.id, card]));
  const wanted = [];
  for (const item of items) {
    const card = existing.get(item.id) || makeCard(item);
    existing.delete(item.id);
    updateCard(card, item);
    wanted.push(card);
  }
  for (const stale of existing.values()) stale.remove();
  wanted.forEach((card, index) => {
    if (grid.children[index] !== card) grid.insertBefore(card, grid.children[index] || null);
  });
  $("empty").hidden = items.length > 0;
  document.querySelector(".hint").hidden = items.length < 2;
  $("count").textContent = items.length ? `(${items.length})` : "";
  onChange(items);
}

function fmtDuration(ms) {
  if (!ms) return "still";
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(s < 10 ? 1 : 0)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function fmtSize(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`;
}

function makeCard(item) {
  const card = el("li", { class: "card", dataset: { id: item.id } });
  const img = el("img", { class: "preview", alt: "", loading: "lazy", width: "120", height: "160" });
  const handle = el("button", { type: "button", class: "handle", title: "Drag to reorder", "aria-label": "Drag to reorder" }, "⠿");
  const name = el("button", { type: "button", class: "name", title: "Rename" });
  const meta = el("span", { class: "meta muted" });
  const toggle = el("label", { class: "toggle", title: "Play this item" }, el("input", { type: "checkbox" }), el("span", {}, "On"));
  const show = el("button", { type: "button", class: "show", title: "Show on the display now" }, "▶ Show");
  const more = el("button", { type: "button", class: "more", title: "Play settings", "aria-label": "Play settings" }, "⋯");
  const del = el("button", { type: "button", class: "delete danger", title: "Delete" }, "Delete");
  card.append(
    el("div", { class: "thumb" }, img, handle),
    el("div", { class: "info" }, name, meta, el("span", { class: "badge", hidden: true })),
    el("div", { class: "actions" }, toggle, show, more, del),
  );
  more.addEventListener("click", () => editPlay(card.dataset.id));
  name.addEventListener("click", () => rename(card.dataset.id));
  toggle.querySelector("input").addEventListener("change", (event) => setEnabled(card.dataset.id, event.target));
  show.addEventListener("click", () => showNow(card.dataset.id));
  del.addEventListener("click", () => remove(card.dataset.id));
  handle.addEventListener("pointerdown", (event) => startDrag(event, card));
  return card;
}

function updateCard(card, item) {
  const img = card.querySelector(".preview");
  const src = item.preview_url || `/api/media/${encodeURIComponent(item.id)}/preview.gif`;
  if (img.getAttribute("src") !== src) img.src = src;
  img.alt = item.name;
  card.querySelector(".name").textContent = item.name;
  const kind = { gif: "animation", image: "picture", video: "video" }[item.kind] || item.kind;
  // A still stays on as long as the settings say, whatever its file holds.
  const time = item.seconds ? `${item.seconds} s` : item.frames <= 1 ? "still" : fmtDuration(item.duration_ms);
  card.querySelector(".meta").textContent =
    `${kind} · ${item.frames} frame${item.frames === 1 ? "" : "s"} · ${time}` +
    (item.disk_bytes ? ` · ${fmtSize(item.disk_bytes)}` : "");
  const badge = card.querySelector(".badge");
  const words = { pending: "re-rendering…", needs_upload: "re-upload to re-render", failed: "re-render failed" };
  badge.textContent = words[item.rerender] || "";
  badge.hidden = !words[item.rerender];
  badge.className = `badge ${item.rerender || ""}`;
  card.querySelector(".toggle input").checked = item.enabled;
  card.querySelector(".toggle span").textContent = item.enabled ? "On" : "Off";
  card.classList.toggle("disabled", !item.enabled);
  card.classList.toggle("busy", busy.has(item.id));
}

export function markPlaying(currentId) {
  for (const card of $("grid").children) card.classList.toggle("playing", card.dataset.id === currentId);
}

async function withBusy(id, work) {
  busy.add(id);
  render(items);
  try {
    await work();
  } catch (err) {
    showError(err);
  } finally {
    busy.delete(id);
    render(items);
  }
}

async function rename(id) {
  const item = items.find((i) => i.id === id);
  if (!item) return;
  const name = await askName(item.name);
  if (!name || name === item.name) return;
  await withBusy(id, async () => {
    const updated = await api("PATCH", `/api/media/${encodeURIComponent(id)}`, { name });
    items = items.map((i) => (i.id === id ? updated : i));
  });
}

async function editPlay(id) {
  const item = items.find((i) => i.id === id);
  if (!item) return;
  const wanted = await askPlaySettings(item);
  if (!wanted) return;
  await withBusy(id, async () => {
    const updated = await api("PATCH", `/api/media/${encodeURIComponent(id)}`, wanted);
    items = items.map((i) => (i.id === id ? updated : i));
  });
}

async function setEnabled(id, checkbox) {
  const wanted = checkbox.checked;
  checkbox.checked = !wanted; // the server decides; show the confirmed value only
  await withBusy(id, async () => {
    const updated = await api("PATCH", `/api/media/${encodeURIComponent(id)}`, { enabled: wanted });
    items = items.map((i) => (i.id === id ? updated : i));
  });
}

async function showNow(id) {
  try {
    const status = await api("POST", "/api/player", { action: "show", id });
    document.dispatchEvent(new CustomEvent("loop:player", { detail: status }));
  } catch (err) {
    showError(err);
  }
}

async function remove(id) {
  const item = items.find((i) => i.id === id);
  if (!item || !(await confirmDelete(item.name))) return;
  await withBusy(id, async () => {
    const answer = await api("DELETE", `/api/media/${encodeURIComponent(id)}`);
    items = answer.items;
    // The panel has already moved off the item: show what the player says it plays now.
    const status = await api("GET", "/api/player");
    document.dispatchEvent(new CustomEvent("loop:player", { detail: status }));
  });
}

// --- drag to reorder (mouse, touch and pen through pointer events) ----------------------

function startDrag(event, card) {
  if (dragging || orderSaving || event.button > 0) return;
  event.preventDefault();
  // Listen on the window: moving the card in the DOM drops any pointer capture.
  dragging = { card, pointerId: event.pointerId, moved: false };
  card.classList.add("dragging");
  window.addEventListener("pointermove", onDragMove);
  window.addEventListener("pointerup", onDragEnd);
  window.addEventListener("pointercancel", onDragCancel);
}

function onDragMove(event) {
  if (!dragging || event.pointerId !== dragging.pointerId) return;
  const grid = $("grid");
  const target = document.elementFromPoint(event.clientX, event.clientY);
  const over = target && target.closest ? target.closest(".card") : null;
  if (!over || over === dragging.card || over.parentNode !== grid) return;
  const rect = over.getBoundingClientRect();
  const after = event.clientY > rect.bottom - rect.height / 2 ||
    (event.clientY >= rect.top && event.clientX > rect.left + rect.width / 2);
  grid.insertBefore(dragging.card, after ? over.nextSibling : over);
  dragging.moved = true;
}

function finishDrag() {
  const { card } = dragging;
  window.removeEventListener("pointermove", onDragMove);
  window.removeEventListener("pointerup", onDragEnd);
  window.removeEventListener("pointercancel", onDragCancel);
  card.classList.remove("dragging");
  dragging = null;
}

function onDragCancel(event) {
  if (!dragging || event.pointerId !== dragging.pointerId) return;
  finishDrag();
  render(items);
}

async function onDragEnd(event) {
  if (!dragging || event.pointerId !== dragging.pointerId) return;
  const moved = dragging.moved;
  finishDrag();
  const ids = [...$("grid").children].map((card) => card.dataset.id);
  render(items); // back to the confirmed order until the server answers
  if (!moved || ids.join() === items.map((i) => i.id).join()) return;
  orderSaving = true;
  $("grid").classList.add("saving");
  try {
    const answer = await api("PUT", "/api/playlist", { ids });
    items = answer.items;
  } catch (err) {
    showError(err);
  } finally {
    orderSaving = false;
    $("grid").classList.remove("saving");
    render(items);
  }
}

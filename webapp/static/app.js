// LOOP dashboard: wires the panels together and keeps them in step with the device by polling.

import { api } from "./api.js";
import { $, initBanner, showError, showInfo } from "./ui.js";
import { currentItems, isInteracting, markPlaying, render, setOnChange } from "./library.js";
import { initPlayer, refreshHealth, refreshPlayer } from "./player.js";
import { initSettings, refreshSettings, rerendering } from "./settings.js";
import { initTokens, refreshTokens } from "./tokens.js";
import { initUploads, setUploadLimit } from "./uploads.js";

let lastLibrary = "";

async function refreshLibrary() {
  if (isInteracting()) return;
  try {
    const answer = await api("GET", "/api/media");
    setUploadLimit(answer.max_upload_bytes);
    showStorage(answer.storage);
    const text = JSON.stringify(answer.items);
    if (text !== lastLibrary || !$("grid").children.length) {
      lastLibrary = text;
      render(answer.items);
    }
  } catch (err) {
    if (err.status !== 401) showError(err);
  }
}

function fmtBytes(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(n / 1e3))} kB`;
}

function showStorage(storage) {
  if (!storage) return;
  let text = `${fmtBytes(storage.total_bytes)} on the card`;
  if (storage.originals_bytes) {
    text += ` (frames ${fmtBytes(storage.frames_bytes)}, originals ${fmtBytes(storage.originals_bytes)})`;
  }
  if (storage.free_bytes != null) text += ` · ${fmtBytes(storage.free_bytes)} free`;
  $("storage").textContent = text;
}

function every(ms, work) {
  const tick = async () => {
    if (!document.hidden) await work();
    setTimeout(tick, ms);
  };
  setTimeout(tick, ms);
}

async function refreshSession() {
  const state = await api("GET", "/api/session");
  $("password-state").textContent = state.password_set
    ? "A password protects this dashboard."
    : "No password: anyone on this network can use this dashboard.";
  $("clear-password").hidden = !state.password_set;
  $("logout").hidden = !(state.password_set && state.logged_in);
  return state;
}

function initLogin() {
  const dialog = $("login-dialog");
  document.addEventListener("loop:login-required", () => {
    if (!dialog.open) dialog.showModal();
  });
  dialog.addEventListener("cancel", (event) => event.preventDefault());
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/api/login", { password: $("login-password").value });
      $("login-password").value = "";
      $("login-error").hidden = true;
      dialog.close();
      await refreshAll();
    } catch (err) {
      $("login-error").textContent = err.message;
      $("login-error").hidden = false;
    }
  });
}

function initPasswordForm() {
  const change = async (password) => {
    try {
      await api("POST", "/api/settings/password", { password });
      $("new-password").value = "";
      await refreshSession();
      showInfo(password ? "The password is set." : "The password is removed.");
    } catch (err) {
      showError(err);
    }
  };
  $("password-form").addEventListener("submit", (event) => {
    event.preventDefault();
    change($("new-password").value);
  });
  $("clear-password").addEventListener("click", () => change(null));
  $("logout").addEventListener("click", async () => {
    try {
      await api("POST", "/api/logout"); // the device forgets this login, not only the browser
      await refreshSession();
      document.dispatchEvent(new CustomEvent("loop:login-required"));
    } catch (err) {
      showError(err);
    }
  });
}

async function refreshAll() {
  lastLibrary = "";
  await Promise.all([
    refreshLibrary(),
    refreshPlayer(),
    refreshHealth(),
    refreshSession().catch(() => {}),
    refreshTokens(),
    refreshSettings(),
  ]);
}

// The settings every 10 s, every 2 s while the library is re-rendered (its progress shows).
function pollSettings() {
  const tick = async () => {
    if (!document.hidden) await refreshSettings();
    setTimeout(tick, rerendering() ? 2000 : 10000);
  };
  setTimeout(tick, 2000);
}

async function main() {
  initBanner();
  initLogin();
  initPasswordForm();
  initTokens();
  let wasRendering = false;
  initSettings(() => {
    // A change of settings shows on the panel and, once re-rendered, in the library's previews.
    const now = rerendering();
    if (now !== wasRendering || now) refreshLibrary();
    wasRendering = now;
  });
  initPlayer((id) => currentItems().find((item) => item.id === id)?.name);
  // After an import, the library and what the player shows have both changed.
  initUploads(() => Promise.all([refreshLibrary(), refreshPlayer()]));
  let current = null;
  document.addEventListener("loop:current", (event) => markPlaying((current = event.detail)));
  setOnChange(() => markPlaying(current));
  every(3000, refreshLibrary);
  every(1500, refreshPlayer);
  every(10000, refreshHealth);
  pollSettings();
  try {
    const session = await refreshSession();
    if (session.password_set && !session.logged_in) {
      document.dispatchEvent(new CustomEvent("loop:login-required"));
      return;
    }
  } catch (err) {
    showError(err);
  }
  await refreshAll();
}

main();

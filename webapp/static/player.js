// The player panel: live view of the display, controls, brightness, health and Wi-Fi.

import { api } from "./api.js";
import { $, el, showError } from "./ui.js";

let status = null;
let nameOf = () => null;
let brightnessTouched = 0;

export function initPlayer(lookupName) {
  nameOf = lookupName;
  for (const button of document.querySelectorAll(".controls button")) {
    button.addEventListener("click", () => act({ action: button.dataset.action }));
  }
  const slider = $("brightness");
  slider.addEventListener("input", () => {
    brightnessTouched = Date.now();
    $("brightness-value").textContent = slider.value;
  });
  slider.addEventListener("change", () => act({ action: "brightness", value: Number(slider.value) }));
  document.addEventListener("loop:player", (event) => renderStatus(event.detail));
  startLiveView();
}

async function act(body) {
  try {
    renderStatus(await api("POST", "/api/player", body));
  } catch (err) {
    showError(err);
  }
}

export function renderStatus(next) {
  status = next;
  const paused = status.state === "paused";
  const sleeping = status.state === "sleeping";
  const pause = $("pause-btn");
  pause.dataset.action = paused ? "resume" : "pause";
  pause.firstChild.textContent = paused ? "▶" : "⏸";
  pause.querySelector(".label").textContent = paused ? "Resume" : "Pause";
  pause.title = paused ? "Resume" : "Pause";
  const sleep = $("sleep-btn");
  sleep.dataset.action = sleeping ? "wake" : "sleep";
  sleep.firstChild.textContent = sleeping ? "☀" : "☾";
  sleep.querySelector(".label").textContent = sleeping ? "Wake" : "Sleep";
  const name = status.current ? nameOf(status.current) || status.current : null;
  const words = { playing: "Playing", paused: "Paused", sleeping: "Display asleep", empty: "Nothing to play" };
  $("now-playing").textContent = name && status.state !== "empty" ? `${words[status.state] || status.state}: ${name}` : words[status.state] || status.state;
  const brightness = status.brightness;
  if (typeof brightness === "number" && Date.now() - brightnessTouched > 3000) {
    $("brightness").value = brightness;
    $("brightness-value").textContent = brightness;
  }
  document.dispatchEvent(new CustomEvent("loop:current", { detail: status.current }));
}

export async function refreshPlayer() {
  try {
    renderStatus(await api("GET", "/api/player"));
  } catch (err) {
    if (err.status !== 401) showError(err);
  }
}

// Reload the panel image about once a second, only after the previous one has arrived.
function startLiveView() {
  const img = $("live");
  let timer = 0;
  const next = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (document.hidden) return next();
      img.src = `/api/display.png?t=${Date.now()}`;
    }, 1000);
  };
  img.addEventListener("load", next);
  img.addEventListener("error", next);
  img.src = `/api/display.png?t=${Date.now()}`;
}

function fmtBytes(n) {
  if (typeof n !== "number") return "?";
  return n > 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${Math.round(n / 1e6)} MB`;
}

export async function refreshHealth() {
  let health;
  try {
    health = await api("GET", "/api/health");
  } catch (err) {
    $("health-pill").textContent = "unreachable";
    $("health-pill").className = "pill bad";
    return;
  }
  const ok = health.ok !== false && health.status !== "failed" && health.status !== "degraded";
  $("health-pill").textContent = ok ? "healthy" : health.status || "problem";
  $("health-pill").className = `pill ${ok ? "good" : "bad"}`;
  const wifi = health.wifi || {};
  const wifiText = wifi.connected === false ? "Wi-Fi off" : wifi.ssid ? `Wi-Fi: ${wifi.ssid}` : wifi.connected ? "Wi-Fi on" : "Wi-Fi ?";
  const signal = typeof wifi.signal_percent === "number" ? ` ${wifi.signal_percent}%` : "";
  $("wifi-pill").textContent = wifiText + signal;
  $("wifi-pill").className = `pill ${wifi.connected === false ? "bad" : "good"}`;
  const detail = $("health-detail");
  detail.replaceChildren();
  const components = health.components || {};
  const list = el("ul", { class: "components" });
  for (const [name, comp] of Object.entries(components)) {
    const state = typeof comp === "object" && comp ? comp.state || comp.status || (comp.alive ? "alive" : "not alive") : String(comp);
    list.append(el("li", {}, el("strong", {}, name), " ", state));
  }
  if (list.children.length) detail.append(list);
  const res = health.resources || {};
  const parts = [];
  if (res.disk_free_bytes !== undefined) parts.push(`Free space: ${fmtBytes(res.disk_free_bytes)}`);
  if (res.memory_rss_bytes !== undefined) parts.push(`Memory: ${fmtBytes(res.memory_rss_bytes)}`);
  if (res.cpu_temp_c !== undefined && res.cpu_temp_c !== null) parts.push(`CPU ${Math.round(res.cpu_temp_c)} °C`);
  if (parts.length) detail.append(el("p", {}, parts.join(" · ")));
  const faults = health.faults || health.recent_faults || [];
  if (faults.length) {
    const fl = el("ul", { class: "faults" });
    for (const fault of faults.slice(-5)) fl.append(el("li", {}, fault.message || JSON.stringify(fault)));
    detail.append(el("p", {}, "Recent problems:"), fl);
  }
  if (!detail.children.length) detail.append(el("p", { class: "muted" }, "No details reported."));
}

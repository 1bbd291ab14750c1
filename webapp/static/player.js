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
  pause.querySelector(".i-pause").toggleAttribute("hidden", paused);
  pause.querySelector(".i-play").toggleAttribute("hidden", !paused);
  pause.querySelector(".label").textContent = paused ? "Resume" : "Pause";
  pause.title = paused ? "Resume" : "Pause";
  const sleep = $("sleep-btn");
  sleep.dataset.action = sleeping ? "wake" : "sleep";
  sleep.querySelector(".i-moon").toggleAttribute("hidden", sleeping);
  sleep.querySelector(".i-sun").toggleAttribute("hidden", !sleeping);
  sleep.title = sleeping ? "Wake" : "Sleep";
  sleep.querySelector(".label").textContent = sleeping ? "Wake" : "Sleep";
  const name = status.current ? nameOf(status.current) || status.current_name || status.current : null;
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

// The live view: the panel pushed as MJPEG at its own frame rate. If the stream cannot be had
// (too many viewers, a proxy that buffers it), the still image about once a second instead,
// trying the stream again now and then. A hidden tab watches nothing.
function startLiveView() {
  const img = $("live");
  let timer = 0;
  let streaming = false;
  let retryAt = 0;
  const still = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (document.hidden) return still();
      if (Date.now() >= retryAt) return stream();
      img.src = `/api/display.png?t=${Date.now()}`;
    }, 1000);
  };
  const stream = () => {
    clearTimeout(timer);
    streaming = true;
    img.src = `/api/display.mjpeg?t=${Date.now()}`;
  };
  img.addEventListener("load", () => {
    if (!streaming) still();
  });
  img.addEventListener("error", () => {
    if (streaming) {
      streaming = false;
      retryAt = Date.now() + 30000;
    }
    still();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden && streaming) {
      streaming = false;
      img.src = `/api/display.png?t=${Date.now()}`; // ends the stream
    } else if (!document.hidden && !streaming) {
      stream();
    }
  });
  stream();
}

function componentsOf(health) {
  const comps = health.components || [];
  return Array.isArray(comps) ? comps : Object.entries(comps).map(([name, c]) => ({ name, ...c }));
}

export async function refreshHealth() {
  let health;
  try {
    health = await api("GET", "/api/health");
  } catch (err) {
    $("health-pill").textContent = err.status === 401 ? "locked" : "unreachable";
    $("health-pill").className = "pill bad";
    return;
  }
  const state = health.state || "ok";
  const words = { ok: "healthy", starting: "starting", degraded: "degraded", emergency: "problem", exiting: "restarting" };
  const res = health.resources || {};
  const ok = (state === "ok" || state === "starting") && res.level !== "critical";
  $("health-pill").textContent = res.level === "critical" && state === "ok" ? "attention" : words[state] || state;
  $("health-pill").className = `pill ${ok ? "good" : "bad"}`;
  const wifi = health.wifi || {};
  let wifiText = "Wi-Fi ?";
  if (wifi.connected === false) wifiText = "Wi-Fi off";
  else if (wifi.connected) wifiText = wifi.ssid ? `Wi-Fi: ${wifi.ssid}` : "Wi-Fi on";
  if (wifi.connected && typeof wifi.signal_percent === "number") wifiText += ` ${wifi.signal_percent}%`;
  $("wifi-pill").textContent = wifiText;
  $("wifi-pill").title = wifi.detail || (wifi.ip ? `Address ${wifi.ip}` : "Wi-Fi");
  $("wifi-pill").className = `pill ${wifi.connected === false ? "bad" : "good"}`;

  const detail = $("health-detail");
  detail.replaceChildren();
  const list = el("ul", { class: "components" });
  for (const comp of componentsOf(health)) {
    const text = comp.alive === false ? `${comp.state || "not alive"}${comp.detail ? ": " + comp.detail : ""}` : comp.state || "alive";
    list.append(el("li", {}, el("strong", {}, comp.name || "?"), " ", text));
  }
  if (list.children.length) detail.append(list);
  const parts = [];
  if (typeof res.disk_free_mb === "number") parts.push(`Free space: ${res.disk_free_mb} MB`);
  if (typeof res.process_rss_mb === "number") parts.push(`Memory: ${res.process_rss_mb} MB`);
  if (typeof res.temperature_c === "number") parts.push(`CPU ${Math.round(res.temperature_c)} °C`);
  if (parts.length) detail.append(el("p", {}, parts.join(" · ")));
  const problems = [...(res.problems || [])];
  for (const fault of (health.faults || []).slice(-5)) problems.push(fault.message || JSON.stringify(fault));
  if (problems.length) {
    const fl = el("ul", { class: "faults" });
    for (const text of problems) fl.append(el("li", {}, text));
    detail.append(el("p", {}, "Recent problems:"), fl);
  }
  if (!detail.children.length) detail.append(el("p", { class: "muted" }, "No details reported."));
}

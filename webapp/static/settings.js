// Display settings: orientation, fit, still time, shuffle, colours, night schedule, the
// background re-render's progress, and the first-run question about the orientation.
// Every control sends only its own change; the form then shows what the device answered.

import { api } from "./api.js";
import { $, showError } from "./ui.js";

let current = null;      // the settings as the device last answered
let asking = false;      // the first-run dialog is open
let onChange = () => {};

function form() {
  return $("settings-form");
}

function field(name) {
  return form().elements.namedItem(name);
}

/** Draw the form from the device's answer (never from what was typed). */
function render(settings) {
  current = settings;
  const f = form();
  for (const input of f.querySelectorAll('input[name="rotation"]')) {
    input.checked = Number(input.value) === settings.rotation;
  }
  field("fit").value = settings.fit;
  if (document.activeElement !== field("still_seconds")) field("still_seconds").value = settings.still_seconds;
  field("shuffle").checked = settings.shuffle;
  field("dither").checked = settings.dither;
  field("background").value = settings.background;
  const night = settings.night;
  field("night_on").checked = night !== null;
  $("night-fields").hidden = night === null;
  const shown = night || { start: "22:00", end: "07:00", days: [], brightness: 0 };
  field("night_start").value = shown.start;
  field("night_end").value = shown.end;
  for (const box of f.querySelectorAll('input[name="night_day"]')) box.checked = shown.days.includes(box.value);
  field("night_brightness").value = shown.brightness;
  showNightLevel(shown.brightness);
  renderProgress(settings.rerender || {});
  document.body.classList.toggle("landscape", settings.rotation % 180 === 90);
  onChange(settings);
}

function showNightLevel(level) {
  $("night-brightness-value").textContent = Number(level) === 0 ? "off" : `${level}%`;
}

function renderProgress(rerender) {
  const box = $("rerender");
  box.hidden = !rerender.running;
  if (rerender.running) {
    const total = Math.max(rerender.total || 0, 1);
    $("rerender-bar").style.width = `${Math.round((100 * (rerender.done || 0)) / total)}%`;
    $("rerender-text").textContent =
      `Re-rendering the library for the new settings: ${rerender.done} of ${rerender.total} done. It keeps playing meanwhile.`;
  }
  const missing = rerender.needs_upload || [];
  const failed = rerender.failed || [];
  const note = $("rerender-note");
  const parts = [];
  if (missing.length) {
    const names = missing.slice(0, 3).map((item) => `“${item.name}”`).join(", ");
    const more = missing.length > 3 ? ` and ${missing.length - 3} more` : "";
    parts.push(`${names}${more} ${missing.length === 1 ? "was" : "were"} added before originals were kept: shown fitted; re-upload to re-render.`);
  }
  for (const item of failed.slice(0, 3)) parts.push(item.message);
  note.textContent = parts.join(" ");
  note.hidden = parts.length === 0;
}

let inFlight = 0;         // changes sent and not answered yet

/**
 * Send one change; the answer is what the form shows afterwards. While several quick changes
 * are on their way (days ticked one after another) the form waits for the last answer, so an
 * early answer never undoes a later tick on the screen.
 */
let queue = Promise.resolve(); // changes go one after another, in the order they were made

function change(body) {
  inFlight += 1;
  queue = queue.then(async () => {
    let answer = null;
    try {
      answer = await api("PATCH", "/api/settings", body);
    } catch (err) {
      showError(err);
    } finally {
      inFlight -= 1;
    }
    if (answer) current = answer;
    if (inFlight === 0 && current) render(current);
  });
  return queue;
}

function nightBody() {
  const days = [...form().querySelectorAll('input[name="night_day"]:checked')].map((box) => box.value);
  return {
    start: field("night_start").value,
    end: field("night_end").value,
    days,
    brightness: Number(field("night_brightness").value),
  };
}

function wire() {
  const f = form();
  f.addEventListener("submit", (event) => event.preventDefault());
  for (const input of f.querySelectorAll('input[name="rotation"]')) {
    input.addEventListener("change", () => change({ rotation: Number(input.value) }));
  }
  field("fit").addEventListener("change", () => change({ fit: field("fit").value }));
  field("still_seconds").addEventListener("change", () => {
    const value = Number(field("still_seconds").value);
    change({ still_seconds: Number.isFinite(value) ? value : field("still_seconds").value });
  });
  field("shuffle").addEventListener("change", () => change({ shuffle: field("shuffle").checked }));
  field("dither").addEventListener("change", () => change({ dither: field("dither").checked }));
  field("background").addEventListener("change", () => change({ background: field("background").value }));
  field("night_on").addEventListener("change", () => {
    if (!field("night_on").checked) return change({ night: null });
    const night = nightBody();
    if (!night.days.length) night.days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    return change({ night });
  });
  for (const name of ["night_start", "night_end"]) {
    field(name).addEventListener("change", () => field(name).value && change({ night: { [name.slice(6)]: field(name).value } }));
  }
  for (const box of f.querySelectorAll('input[name="night_day"]')) {
    box.addEventListener("change", () => change({ night: { days: nightBody().days } }));
  }
  const level = field("night_brightness");
  level.addEventListener("input", () => showNightLevel(level.value));
  level.addEventListener("change", () => change({ night: { brightness: Number(level.value) } }));
}

async function askOrientation() {
  const dialog = $("orientation-dialog");
  if (asking || dialog.open) return;
  asking = true;
  dialog.returnValue = "";
  dialog.showModal();
  dialog.addEventListener(
    "close",
    async () => {
      asking = false;
      const answer = dialog.returnValue;
      // Choosing either picture sets it; "Decide later" (or Escape) keeps the default, once.
      const body = answer === "0" || answer === "90" ? { rotation: Number(answer) } : {};
      await change({ ...body, orientation_asked: true });
    },
    { once: true },
  );
}

/** Fetch the settings; ask for the orientation on the device's first visit. */
export async function refreshSettings() {
  try {
    const settings = await api("GET", "/api/settings");
    if (inFlight > 0) return settings; // a change is on its way: its answer is drawn instead
    render(settings);
    if (!settings.orientation_asked) askOrientation();
    return settings;
  } catch (err) {
    if (err.status !== 401) showError(err);
    return null;
  }
}

/** Whether a background re-render is going on (poll faster then). */
export function rerendering() {
  return Boolean(current && current.rerender && current.rerender.running);
}

export function initSettings(changed) {
  onChange = changed || onChange;
  wire();
}

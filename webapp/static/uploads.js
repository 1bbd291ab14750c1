// Uploads: the file picker or drag and drop, several files at once. Each file has its own row:
// its upload progress, then its import's progress, then what happened to it (added, already in
// the library, or why it failed), with "Show now" once it is in the library.

import { api, upload } from "./api.js";
import { $, el, showError, showInfo } from "./ui.js";

let refreshLibrary = async () => {};
let maxUploadBytes = null; // the device says (GET /api/media); null until known
let queue = Promise.resolve(); // files upload one after another: each gets the whole link

export function initUploads(onImported) {
  refreshLibrary = onImported;
  const input = $("file-input");
  input.addEventListener("change", () => {
    if (input.files.length) sendAll([...input.files]);
    input.value = "";
  });
  const zone = $("dropzone");
  const stop = (event) => {
    event.preventDefault();
    event.stopPropagation();
  };
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (event) => {
      if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
      stop(event);
      zone.classList.add("over");
    });
  }
  document.addEventListener("dragleave", (event) => {
    if (event.relatedTarget === null) zone.classList.remove("over");
  });
  document.addEventListener("drop", (event) => {
    if (!event.dataTransfer?.files?.length) return;
    stop(event);
    zone.classList.remove("over");
    sendAll([...event.dataTransfer.files]);
  });
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
}

/** Tell the uploader the largest body the device accepts (from GET /api/media). */
export function setUploadLimit(bytes) {
  if (Number.isFinite(bytes) && bytes > 0) maxUploadBytes = bytes;
}

function megabytes(bytes) {
  if (bytes < 1e6) return `${Math.max(1, Math.round(bytes / 1e3))} KB`;
  const mb = bytes / 1e6;
  return mb >= 10 ? `${Math.round(mb)} MB` : `${Math.round(mb * 10) / 10} MB`;
}

function sendAll(files) {
  const showWhenAdded = $("show-on-add")?.checked ?? false;
  const rows = files.map((file) => newRow(file));
  const outcomes = files.map((file, i) => {
    const done = queue.then(() => sendOne(file, rows[i], showWhenAdded));
    queue = done.catch(() => {});
    return done;
  });
  Promise.all(outcomes).then((results) => summarise(files, results));
}

function summarise(files, results) {
  if (files.length < 2) return;
  // The device's sentences usually name the file already; name it where one does not.
  const failed = results
    .map((r, i) => (r.ok ? null : r.message.includes(files[i].name) ? r.message : `${files[i].name}: ${r.message}`))
    .filter(Boolean);
  const added = results.filter((r) => r.ok).length;
  if (!failed.length) {
    showInfo(`All ${files.length} files are in the library.`);
    return;
  }
  const addedText = added === 0 ? "None of the files were added" : `${added} of ${files.length} files were added`;
  showError({ message: `${addedText}. ${failed.join(" ")}` });
}

function newRow(file) {
  const row = el("li", { class: "job" },
    el("span", { class: "job-name" }, file.name),
    el("span", { class: "job-size muted" }, megabytes(file.size)),
    el("div", { class: "progress", role: "progressbar", "aria-label": `Progress of ${file.name}` }, el("div", { class: "bar" })),
    el("span", { class: "job-state muted" }, "Waiting to upload…"),
    el("span", { class: "job-actions" }));
  $("jobs").append(row);
  return row;
}

function setRow(row, { fraction, text, failed = false }) {
  if (fraction !== undefined) {
    const percent = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
    row.querySelector(".bar").style.width = `${percent}%`;
    row.querySelector(".progress").setAttribute("aria-valuenow", String(percent));
  }
  if (text !== undefined) row.querySelector(".job-state").textContent = text;
  row.classList.toggle("failed", failed);
}

function addButton(row, label, onclick, cls = "") {
  row.querySelector(".job-actions").append(el("button", { type: "button", class: cls, onclick }, label));
}

function dismissable(row) {
  addButton(row, "✕", () => row.remove(), "icon");
  row.querySelector(".job-actions button:last-child").setAttribute("aria-label", "Dismiss");
}

async function sendOne(file, row, showWhenAdded) {
  if (maxUploadBytes !== null && file.size > maxUploadBytes) {
    const message = `${file.name} is ${megabytes(file.size)}; the largest file this LOOP accepts is ${megabytes(maxUploadBytes)}.`;
    setRow(row, { fraction: 1, text: message, failed: true });
    dismissable(row);
    return { ok: false, message };
  }
  row.classList.add("uploading");
  setRow(row, { fraction: 0, text: "Uploading…" });
  let answer;
  try {
    answer = await upload([file], (fraction) => {
      // The upload is the first half of the bar, the import the second.
      setRow(row, { fraction: fraction / 2, text: `Uploading: ${megabytes(fraction * file.size)} of ${megabytes(file.size)}` });
    }, showWhenAdded ? "?show=true" : "");
  } catch (err) {
    row.classList.remove("uploading");
    setRow(row, { fraction: 1, text: err.message, failed: true });
    dismissable(row);
    return { ok: false, message: err.message };
  }
  row.classList.remove("uploading");
  const job = answer.jobs[0];
  row.dataset.id = job.id;
  return track(job, row);
}

async function track(job, row) {
  const words = { queued: "Waiting to convert…", running: "Converting…" };
  while (job.status === "queued" || job.status === "running") {
    setRow(row, { fraction: 0.5 + (job.progress || 0) / 2, text: words[job.status] });
    await new Promise((resolve) => setTimeout(resolve, 400));
    try {
      job = await api("GET", `/api/jobs/${encodeURIComponent(job.id)}`);
    } catch (err) {
      if (err.status === 404) {
        setRow(row, { text: "The device no longer knows this upload; check the library." });
        dismissable(row);
        return { ok: false, message: err.message };
      }
    }
  }
  if (job.status === "failed") {
    const message = (job.error && job.error.message) || "The import failed.";
    setRow(row, { fraction: 1, text: message, failed: true });
    dismissable(row);
    return { ok: false, message };
  }
  let text = "Added";
  if (job.duplicate) text = `Already in the library as “${job.item.name}”; nothing was added.`;
  else if (job.warning) text = `Added. ${job.warning}`;
  setRow(row, { fraction: 1, text });
  row.classList.add("done");
  await refreshLibrary();
  if (job.item && job.item.enabled !== false) {
    addButton(row, "▶ Show now", () => showNow(job.item.id));
  }
  dismissable(row);
  if (!job.duplicate && !job.warning) setTimeout(() => row.remove(), 20000);
  return { ok: true };
}

async function showNow(id) {
  try {
    await api("POST", "/api/player", { action: "show", id });
    await refreshLibrary();
  } catch (err) {
    showError(err);
  }
}

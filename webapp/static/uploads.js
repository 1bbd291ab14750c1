// Uploads: drag-and-drop or the file picker, an upload progress bar, then each import's progress.

import { api, upload } from "./api.js";
import { $, el, showError } from "./ui.js";

let refreshLibrary = async () => {};

export function initUploads(onImported) {
  refreshLibrary = onImported;
  const input = $("file-input");
  input.addEventListener("change", () => {
    if (input.files.length) send([...input.files]);
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
    send([...event.dataTransfer.files]);
  });
  zone.addEventListener("click", () => input.click());
}

async function send(files) {
  const bar = $("upload-bar");
  const text = $("upload-text");
  const total = files.reduce((sum, f) => sum + f.size, 0);
  const label = files.length === 1 ? files[0].name : `${files.length} files`;
  $("upload").hidden = false;
  bar.style.width = "0%";
  text.textContent = `Uploading ${label}…`;
  try {
    const answer = await upload(files, (fraction) => {
      bar.style.width = `${Math.round(fraction * 100)}%`;
      text.textContent = `Uploading ${label}: ${Math.round((fraction * total) / 1e6 * 10) / 10} of ${Math.round(total / 1e5) / 10} MB`;
    });
    for (const job of answer.jobs) track(job);
  } catch (err) {
    showError(err);
  } finally {
    $("upload").hidden = true;
  }
}

function jobRow(job) {
  let row = document.querySelector(`#jobs li[data-id="${CSS.escape(job.id)}"]`);
  if (!row) {
    row = el("li", { class: "job", dataset: { id: job.id } },
      el("span", { class: "job-name" }),
      el("div", { class: "progress" }, el("div", { class: "bar" })),
      el("span", { class: "job-state muted" }));
    $("jobs").append(row);
  }
  row.querySelector(".job-name").textContent = job.filename;
  row.querySelector(".bar").style.width = `${Math.round((job.progress || 0) * 100)}%`;
  const words = { queued: "Waiting…", running: "Converting…", done: "Added", failed: "Failed" };
  let state = words[job.status] || job.status;
  if (job.status === "failed" && job.error) state = job.error.message;
  else if (job.status === "done" && job.warning) state = `Added. ${job.warning}`;
  row.querySelector(".job-state").textContent = state;
  row.classList.toggle("failed", job.status === "failed");
  return row;
}

async function track(job) {
  let row = jobRow(job);
  while (job.status === "queued" || job.status === "running") {
    await new Promise((resolve) => setTimeout(resolve, 400));
    try {
      job = await api("GET", `/api/jobs/${encodeURIComponent(job.id)}`);
    } catch (err) {
      showError(err);
      if (err.status === 404) break;
      continue;
    }
    row = jobRow(job);
  }
  if (job.status === "done" && !job.warning) {
    await refreshLibrary();
    setTimeout(() => row.remove(), 2500);
  } else if (job.status === "done" || job.status === "failed") {
    if (job.status === "done") await refreshLibrary();
    row.append(el("button", { type: "button", class: "icon", "aria-label": "Dismiss", onclick: () => row.remove() }, "✕"));
  }
}

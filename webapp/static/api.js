// Talking to the LOOP API: JSON in and out, errors as sentences a person can read.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const OFFLINE = "The device did not answer; check that it is switched on and on the same network.";

function errorFrom(status, body) {
  if (body && body.error && typeof body.error.message === "string") {
    return new ApiError(status, body.error.code || "error", body.error.message);
  }
  return new ApiError(status, "http_" + status, `The device answered with an unexpected error (HTTP ${status}).`);
}

function notifyLogin(err) {
  if (err.status === 401 && err.code === "login_required") {
    document.dispatchEvent(new CustomEvent("loop:login-required"));
  }
  return err;
}

/** Call the API; resolves with the JSON body, rejects with an ApiError. */
export async function api(method, path, body) {
  // No custom header: the device tells cross-site requests apart by what the browser sends.
  const init = { method, headers: {}, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "offline", OFFLINE);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw notifyLogin(errorFrom(response.status, data));
  return data;
}

/**
 * Upload files as multipart (field "file"); onProgress(fraction) follows the bytes sent;
 * query is added to the address (e.g. "?show=true").
 * Resolves with the server's JSON ({jobs: [...]}), rejects with an ApiError.
 */
export function upload(files, onProgress, query = "") {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/media${query}`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else if (xhr.status === 413 && !xhr.response) {
        reject(new ApiError(413, "too_large", "The upload is larger than this device accepts; send a smaller file."));
      } else reject(notifyLogin(errorFrom(xhr.status, xhr.response)));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "offline", OFFLINE)));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "The upload was cancelled.")));
    xhr.send(form);
  });
}

// The API tokens panel: list (name, created, last used), create (the secret is shown once), revoke.

import { api } from "./api.js";
import { $, el, showError, showInfo } from "./ui.js";

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "never";
}

function render(tokens) {
  const list = $("token-list");
  list.replaceChildren(
    ...tokens.map((token) =>
      el(
        "li",
        { class: "token", dataset: { name: token.name } },
        el("span", { class: "token-name" }, token.name),
        el("span", { class: "meta muted" }, `created ${when(token.created)} · last used ${when(token.last_used)}`),
        el("button", { type: "button", class: "danger", onclick: () => revoke(token.name) }, "Revoke"),
      ),
    ),
  );
  $("tokens-empty").hidden = tokens.length > 0;
}

/** Show the tokens as the device lists them. */
export async function refreshTokens() {
  try {
    render((await api("GET", "/api/tokens")).tokens);
  } catch (err) {
    if (err.status !== 401) showError(err);
  }
}

async function revoke(name) {
  try {
    render((await api("DELETE", `/api/tokens/${encodeURIComponent(name)}`)).tokens);
    if ($("token-secret-name").textContent === name) $("token-secret").hidden = true;
    showInfo(`The token “${name}” is revoked.`);
  } catch (err) {
    showError(err);
  }
}

export function initTokens() {
  $("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("token-name").value.trim();
    try {
      const made = await api("POST", "/api/tokens", { name });
      $("token-name").value = "";
      $("token-secret-name").textContent = made.name;
      $("token-secret-value").textContent = made.token;
      $("token-secret").hidden = false;
      await refreshTokens();
    } catch (err) {
      showError(err);
    }
  });
  $("tokens-panel").addEventListener("toggle", () => {
    if ($("tokens-panel").open) refreshTokens();
  });
}

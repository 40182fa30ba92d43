// The API client: same origin, JSON, bearer token from sessionStorage, errors as ApiError.
import { h } from "./dom.js";

const TOKEN_KEY = "otel-ai.token";

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
}

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

function setToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives for this page only */
  }
}

let pendingToken = null;

/** Ask once for the token (a dialog in the page); every waiting request shares the answer. */
function askToken(wrong) {
  if (pendingToken) return pendingToken;
  pendingToken = new Promise((resolve) => {
    const input = h("input", { type: "password", id: "token-input", autocomplete: "off", "aria-label": "API token", required: true });
    const form = h(
      "form",
      { class: "dialog-body", method: "dialog" },
      h("h2", {}, "API token"),
      h("p", {}, "This daemon requires a bearer token (", h("code", {}, "api.token"), "). It is kept in this browser tab only."),
      wrong ? h("p", { class: "bad-text" }, "That token was refused.") : null,
      input,
      h("div", { class: "row end" }, h("button", { type: "submit", class: "btn primary" }, "Continue")),
    );
    const dlg = h("dialog", { id: "token-dialog", "aria-labelledby": "token-title" }, form);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      setToken(input.value.trim());
      dlg.close();
      dlg.remove();
      pendingToken = null;
      resolve();
    });
    dlg.addEventListener("cancel", (ev) => ev.preventDefault());
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
  return pendingToken;
}

async function request(method, path, body, opts = {}, attempt = 0) {
  const headers = { Accept: opts.accept || "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: opts.signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `the daemon did not answer (${err.message})`, path);
  }
  if (resp.status === 401 && attempt < 3) {
    await askToken(Boolean(t));
    return request(method, path, body, opts, attempt + 1);
  }
  const text = await resp.text();
  if (!resp.ok) {
    let msg = text;
    try {
      const j = JSON.parse(text);
      msg = j.error || j.detail || text;
    } catch {
      /* not JSON */
    }
    throw new ApiError(resp.status, typeof msg === "string" ? msg : JSON.stringify(msg), path);
  }
  if (opts.raw) return text;
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(resp.status, `not JSON: ${text.slice(0, 120)}`, path);
  }
}

/** GET path with query params (undefined / empty values left out). */
export function get(path, params, opts) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const qs = q.toString();
  return request("GET", qs ? `${path}?${qs}` : path, undefined, opts);
}

export function post(path, body, opts) {
  return request("POST", path, body, opts);
}

/** GET that answers null on 404 (a component not running, or not built yet). */
export async function getOptional(path, params, opts) {
  try {
    return await get(path, params, opts);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

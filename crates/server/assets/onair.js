// The live page's "On air" panel (admins): the overlay queue's controls
// (pause, resume, skip, clear, replay) and the overlay tokens (create, with
// the URL for OBS shown once; revoke). Everything goes through the JSON API.

import { startBuilder, stopBuilder } from "./builder.js";
import { startSounds, stopSounds } from "./sounds.js";

const $ = (id) => document.getElementById(id);

let call = null; // the page's API function, bound to the signed-in token

function entryLine(entry) {
  const item = document.createElement("li");
  item.dataset.entry = String(entry.id);
  const what = entry.style === "friend" && entry.friend_name
    ? `${entry.friend_name} (${entry.description})`
    : entry.description;
  const label = document.createElement("span");
  label.textContent = `#${entry.id} ${what} — ${entry.viewer_name}`
    + (entry.outcome ? ` · ${entry.outcome}` : "")
    + (entry.replay_of ? " · replay" : "");
  item.append(label);
  return item;
}

function renderQueue(queue) {
  $("onair-status").textContent = queue.paused ? "paused" : queue.on_air ? "playing" : "idle";
  $("onair-status").dataset.state = queue.paused ? "paused" : "playing";
  $("onair-pause").hidden = queue.paused;
  $("onair-resume").hidden = !queue.paused;
  $("onair-skip").disabled = !queue.on_air;
  $("onair-clear").disabled = queue.waiting.length === 0;
  $("onair-now").replaceChildren(...(queue.on_air ? [entryLine(queue.on_air)] : []));
  $("onair-now-empty").hidden = Boolean(queue.on_air);
  $("onair-waiting").replaceChildren(...queue.waiting.map(entryLine));
  $("onair-waiting-count").textContent = String(queue.waiting.length);
  $("onair-recent").replaceChildren(...queue.recent.map((entry) => {
    const item = entryLine(entry);
    const replay = document.createElement("button");
    replay.type = "button";
    replay.className = "quiet replay";
    replay.textContent = "Replay";
    replay.setAttribute("aria-label", `Replay #${entry.id}`);
    replay.addEventListener("click", () => act(`/overlay/alerts/${entry.id}/replay`));
    item.append(" ", replay);
    return item;
  }));
}

function renderTokens(tokens) {
  $("onair-tokens").replaceChildren(...tokens.filter((t) => !t.revoked_at).map((token) => {
    const item = document.createElement("li");
    item.dataset.token = token.id;
    item.append(`${token.label} · created ${new Date(token.created_at).toLocaleString()} `);
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.className = "quiet revoke";
    revoke.textContent = "Revoke";
    revoke.setAttribute("aria-label", `Revoke ${token.label}`);
    revoke.addEventListener("click", async () => {
      await guarded(() => call(`/overlay/tokens/${token.id}`, { method: "DELETE" }));
      refreshTokens();
    });
    item.append(revoke);
    return item;
  }));
}

async function guarded(action) {
  $("onair-error").textContent = "";
  try {
    return await action();
  } catch (error) {
    $("onair-error").textContent = error.message;
    return null;
  }
}

async function act(path) {
  await guarded(() => call(path, { method: "POST", body: {} }));
  refreshQueue();
}

export async function refreshQueue() {
  if (!call) return;
  const queue = await guarded(() => call("/overlay/queue"));
  if (queue) renderQueue(queue);
}

async function refreshTokens() {
  const tokens = await guarded(() => call("/overlay/tokens"));
  if (tokens) renderTokens(tokens);
}

async function createToken(event) {
  event.preventDefault();
  const label = $("onair-token-label").value.trim();
  const created = await guarded(() => call("/overlay/tokens", { method: "POST", body: { label } }));
  if (!created) return;
  $("onair-token-url").value = `${location.origin}${created.overlay_path}`;
  $("onair-token-created").hidden = false;
  $("onair-token-label").value = "";
  refreshTokens();
}

let wired = false;

/** Shows the panel to an admin signed in with `api`. */
export function startOnAir(api) {
  call = api;
  $("onair").hidden = false;
  if (!wired) {
    wired = true;
    $("onair-pause").addEventListener("click", () => act("/overlay/queue/pause"));
    $("onair-resume").addEventListener("click", () => act("/overlay/queue/resume"));
    $("onair-skip").addEventListener("click", () => act("/overlay/queue/skip"));
    $("onair-clear").addEventListener("click", () => act("/overlay/queue/clear"));
    $("onair-refresh").addEventListener("click", () => refreshQueue());
    $("onair-token-form").addEventListener("submit", createToken);
  }
  refreshQueue();
  refreshTokens();
  const report = (message) => { $("onair-error").textContent = message; };
  startSounds(api, report);
  startBuilder(api, report);
}

export function stopOnAir() {
  call = null;
  stopSounds();
  stopBuilder();
  $("onair").hidden = true;
  $("onair-token-created").hidden = true;
  $("onair-token-url").value = "";
}

// dynamo's live page. Plain JavaScript with no build step: the server embeds
// this file as it is. It talks only to dynamo-server's JSON API (the same one
// documented at /openapi.json) with the token the user pasted, which stays in
// this tab's session storage.

import { refreshQueue, startOnAir, stopOnAir } from "./onair.js";
import { startRules, stopRules } from "./rules.js";
import { known as knownStyles, startStyles, stopStyles } from "./styles.js";

const TOKEN_KEY = "dynamo.token";
const PAGE_SIZE = 24;
const FINAL = new Set(["succeeded", "rejected", "failed"]);
const COLORS = [
  "red", "red-orange", "orange", "yellow-orange", "yellow", "chartreuse", "green",
  "cyan", "sky-blue", "blue", "indigo", "purple", "magenta",
];
const FILTERS = ["state", "style", "twitch_user_id"];

const $ = (id) => document.getElementById(id);

const page = {
  token: null,
  me: null,
  cards: new Map(), // request id -> { element, view }
  cursor: null,
  stream: null, // AbortController of the event stream
  lastEventId: null,
  listGeneration: 0, // discards answers to lists that were replaced meanwhile
  detailId: null,
  steps: null, // GET /steps, once loaded
};

class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail ?? `the server answered HTTP ${status}`);
    this.status = status;
    this.field = body?.field ?? null;
  }
}

async function api(path, { method = "GET", body, token = page.token } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  // A file (an alert sound) goes as it is; anything else as JSON.
  const file = body instanceof Blob;
  if (body !== undefined && !file) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined || file ? body : JSON.stringify(body),
  });
  const json = (response.headers.get("content-type") ?? "").includes("json")
    ? await response.json()
    : null;
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

// ---- signing in -------------------------------------------------------------

async function signIn(token, { remembered = false } = {}) {
  let me;
  try {
    me = await api("/me", { token });
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (error.status !== 401) showSignIn(`Could not sign in: ${error.message}`);
    else if (remembered) showSignIn("Your session ended; paste a token again.");
    else showSignIn(`That token was not accepted: ${error.message}`);
    return;
  }
  page.token = token;
  page.me = me;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("sign-in").hidden = true;
  $("who").hidden = false;
  $("who-name").textContent = me.service
    ? `service ${me.service}`
    : `${me.role} ${me.twitch_user_id}`;
  $("admin").hidden = !me.admin;
  if (me.admin) startOnAir(api);
  if (me.admin) startRules(api);
  if (me.admin) startStyles(api);
  // A viewer sees only their own requests: a viewer filter would be noise.
  $("viewer-filter").hidden = !me.admin;
  $("requests").hidden = false;
  if (me.admin) watchFleet();
  followEvents();
  loadApprovals();
  await loadList();
  const wanted = new URLSearchParams(location.search).get("request");
  if (wanted) openDetail(wanted);
}

// Spend and holds from /stats, for admins, in one line above the list.
async function watchFleet() {
  clearTimeout(page.fleetTimer);
  try {
    const { spend, held, queue } = await api("/stats");
    const parts = [`Images today: $${spend.today_usd.toFixed(2)}`];
    if (queue === "no_consumer_yet") {
      parts.push("No consumer has started yet: requests cannot be queued until one runs");
    }
    if (spend.broadcast_id !== null) {
      parts.push(`broadcast ${spend.broadcast_id}: $${spend.broadcast_usd.toFixed(2)}`);
    }
    for (const hold of held) parts.push(`On hold (${hold.service}): ${hold.reason}`);
    $("fleet").textContent = parts.join(" · ");
    $("fleet").hidden = false;
  } catch {
    // The list reports a server that is away; this line just keeps its last reading.
  }
  if (page.token) page.fleetTimer = setTimeout(watchFleet, 30_000);
}

// A visitor with no token yet: the server says whether it runs with the
// local stack's well-known development token, so the page can name it.
async function signInHint() {
  try {
    const response = await fetch("/sign-in");
    const { development_token: token } = response.ok ? await response.json() : {};
    if (token) $("development-token").textContent = token;
    $("sign-in-hint").hidden = !token;
    $("sign-in-hint").dataset.answer = token ? "development-token" : "none";
  } catch (error) {
    console.info("no sign-in hint:", error.message);
    $("sign-in-hint").dataset.answer = "unavailable";
  }
}

function showSignIn(message = "") {
  $("sign-in").hidden = false;
  $("who").hidden = true;
  $("admin").hidden = true;
  stopOnAir();
  stopRules();
  stopStyles();
  $("requests").hidden = true;
  $("sign-in-error").textContent = message;
  $("token").value = "";
  $("token").focus();
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  page.token = null;
  page.me = null;
  page.stream?.abort();
  page.stream = null;
  page.lastEventId = null;
  page.cards.clear();
  $("gallery").replaceChildren();
  clearApprovals();
  setLive("signed-out");
  showSignIn(message);
}

// ---- the list ---------------------------------------------------------------

function filters() {
  const form = $("filters");
  const chosen = {};
  for (const name of FILTERS) {
    const value = form.elements[name].value.trim();
    if (value) chosen[name] = value;
  }
  return chosen;
}

function filtersFromUrl() {
  const params = new URLSearchParams(location.search);
  for (const name of FILTERS) $("filters").elements[name].value = params.get(name) ?? "";
}

function filtersToUrl() {
  const params = new URLSearchParams(filters());
  if (page.detailId) params.set("request", page.detailId);
  const query = params.toString();
  const url = query ? `?${query}` : location.pathname;
  if (url !== location.search && !(url === location.pathname && !location.search)) {
    history.pushState(null, "", url);
  }
}

function matches(view) {
  const chosen = filters();
  return (
    (!chosen.state || view.state === chosen.state) &&
    (!chosen.style || view.style === chosen.style) &&
    (!chosen.twitch_user_id || view.viewer.twitch_user_id === chosen.twitch_user_id)
  );
}

async function loadList({ more = false } = {}) {
  const generation = more ? page.listGeneration : ++page.listGeneration;
  const params = new URLSearchParams({ ...filters(), limit: String(PAGE_SIZE) });
  if (more && page.cursor) params.set("cursor", page.cursor);
  $("gallery").setAttribute("aria-busy", "true");
  let result;
  try {
    result = await api(`/requests?${params}`);
  } catch (error) {
    if (error.status === 401) return signOut("Your token was refused; sign in again.");
    $("list-error").textContent = error.field
      ? `Filter ${error.field}: ${error.message}`
      : `Could not load requests: ${error.message}`;
    return;
  } finally {
    $("gallery").setAttribute("aria-busy", "false");
  }
  if (generation !== page.listGeneration) return;
  $("list-error").textContent = "";
  if (!more) {
    page.cards.clear();
    $("gallery").replaceChildren();
  }
  for (const view of result.requests) upsertCard(view, { append: true });
  page.cursor = result.next_cursor;
  $("more").hidden = !page.cursor;
  updateEmpty();
}

// An empty gallery says why: filters that match nothing, or no request yet
// (with how to make the first one).
function updateEmpty() {
  const empty = page.cards.size === 0;
  $("empty").hidden = !empty;
  if (!empty) return;
  const filtered = Object.keys(filters()).length > 0;
  $("empty-filtered").hidden = !filtered;
  $("empty-first-admin").hidden = filtered || !page.me?.admin;
  $("empty-first-viewer").hidden = filtered || Boolean(page.me?.admin);
}

function upsertCard(view, { append = false } = {}) {
  const known = page.cards.get(view.id);
  if (!matches(view)) {
    if (known) {
      known.element.remove();
      page.cards.delete(view.id);
      updateEmpty();
    }
    return;
  }
  const element = known?.element ?? $("card-template").content.firstElementChild.cloneNode(true);
  page.cards.set(view.id, { element, view });
  fillCard(element, view);
  if (!known) {
    if (append) $("gallery").append(element);
    else placeByAge(element, view);
  }
  updateEmpty();
}

// Newest first, as the API lists them; a card older than everything shown
// belongs to a page not loaded yet, so it is left to "Show older requests".
function placeByAge(element, view) {
  const created = Date.parse(view.steps.created_at);
  const older = [...$("gallery").children].find(
    (child) => Date.parse(page.cards.get(child.dataset.id)?.view.steps.created_at) <= created,
  );
  if (older) $("gallery").insertBefore(element, older);
  else if (!page.cursor) $("gallery").append(element);
  else page.cards.delete(view.id);
}

function fillCard(element, view) {
  element.dataset.id = view.id;
  element.dataset.style = view.style;
  element.dataset.state = view.state;
  element.toggleAttribute("data-final", FINAL.has(view.state));
  const subject = view.inputs?.subject ?? "";
  const image = view.images[0];
  const picture = element.querySelector(".picture");
  let img = picture.querySelector("img");
  if (image && (!img || img.getAttribute("src") !== image.url)) {
    img = img ?? document.createElement("img");
    img.src = image.url;
    img.alt = view.style === "friend" && view.name ? `${view.name}, ${subject}` : subject;
    img.loading = "lazy";
    img.decoding = "async";
    picture.replaceChildren(img);
  }
  const badge = element.querySelector(".badge");
  badge.textContent = view.state;
  badge.dataset.state = view.state;
  element.querySelector(".took").textContent = took(view);
  element.querySelector(".subject").textContent = subject;
  element.querySelector(".name").textContent = view.name ?? "";
  element.querySelector(".viewer").textContent = view.viewer.twitch_display_name;
  element.querySelector(".style").textContent = view.inputs?.color
    ? `${view.style}, ${view.inputs.color}`
    : view.style;
  element.querySelector(".reason").textContent =
    view.state === "failed" || view.state === "rejected" ? view.reason ?? "" : "";
}

function took(view) {
  const start = Date.parse(view.steps.created_at);
  const end = view.steps.finished_at ? Date.parse(view.steps.finished_at) : Date.now();
  return duration(end - start);
}

function duration(ms) {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  // Whole seconds first, so 599.6 s reads "10 min 0 s", never "9 min 60 s".
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

// Requests still running show a growing time.
setInterval(() => {
  for (const { element, view } of page.cards.values()) {
    if (!FINAL.has(view.state)) element.querySelector(".took").textContent = took(view);
  }
}, 1000);

// ---- live updates -----------------------------------------------------------

function setLive(state) {
  const label = { live: "live", reconnecting: "reconnecting…", "signed-out": "signed out" }[state];
  $("live").dataset.state = state;
  $("live").textContent = label;
}

// EventSource cannot send an Authorization header, so the stream is read
// with fetch. After a drop it reconnects with Last-Event-ID and the server
// replays what was missed.
async function followEvents() {
  page.stream?.abort();
  const controller = new AbortController();
  page.stream = controller;
  let delay = 1000;
  let reconnecting = false;
  while (!controller.signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${page.token}`, Accept: "text/event-stream" };
      if (page.lastEventId) headers["Last-Event-ID"] = page.lastEventId;
      const response = await fetch("/events", { headers, signal: controller.signal });
      if (response.status === 401) return signOut("Your token expired; sign in again.");
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      setLive("live");
      delay = 1000;
      // Without an event id (none arrived before the drop) the server cannot
      // replay what was missed, so the list is read again instead.
      if (reconnecting && !page.lastEventId) {
        loadList();
        loadApprovals();
      }
      reconnecting = true;
      await readEvents(response.body, controller.signal);
    } catch (error) {
      if (controller.signal.aborted) return;
      console.info("event stream lost, reconnecting:", error.message);
    }
    if (controller.signal.aborted) return;
    setLive("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15_000);
  }
}

async function readEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener("abort", () => reader.cancel().catch(() => {}));
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      dispatch(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

function dispatch(block) {
  let type = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // heartbeat
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") type = value;
    else if (field === "data") data += (data ? "\n" : "") + value;
    else if (field === "id") page.lastEventId = value;
  }
  if (type === "state" && data) onStateChange(JSON.parse(data));
}

async function onStateChange(event) {
  approvalsOnStateChange(event);
  // An alert confirmed joins the overlay queue.
  if (event.state === "alerted" && page.me?.admin) refreshQueue();
  const chosen = filters();
  const known = page.cards.has(event.id);
  const mayMatch =
    (!chosen.style || event.style === chosen.style) &&
    (!chosen.twitch_user_id || event.twitch_user_id === chosen.twitch_user_id);
  if (!known && !mayMatch && page.detailId !== event.id) return;
  let view;
  try {
    view = await api(`/requests/${event.id}`);
  } catch (error) {
    console.info(`request ${event.id} changed but could not be read:`, error.message);
    return;
  }
  upsertCard(view);
  if (page.detailId === event.id) renderDetail(view);
}

// ---- detail -----------------------------------------------------------------

// The stages of a request in order, with their timeline labels: from the
// API (GET /steps), the list the pipeline names its stages from. Loaded once.
async function loadSteps() {
  page.steps ??= await api("/steps");
  return page.steps;
}

const LEDGER = {
  free: "free of charge",
  not_debited: "no points taken",
  pending: "points held (pending)",
  accepted: "points taken",
  refunded: "points refunded",
};

async function openDetail(id) {
  page.detailId = id;
  filtersToUrl();
  $("detail-title").textContent = "Request";
  $("detail-body").replaceChildren(text("p", "Loading…"));
  if (!$("detail").open) $("detail").showModal();
  try {
    const [view] = await Promise.all([api(`/requests/${encodeURIComponent(id)}`), loadSteps()]);
    renderDetail(view);
  } catch (error) {
    $("detail-body").replaceChildren(text("p", `Could not load request ${id}: ${error.message}`, "error"));
  }
}

function closeDetail() {
  page.detailId = null;
  if ($("detail").open) $("detail").close();
  filtersToUrl();
}

// How the content rules judged a request (GET /requests/{id}).
const RULES = {
  passed: "passed",
  bypassed: "bypassed by an admin",
  blocklist: "refused: blocklist",
  cooldown: "refused: cooldown",
  cap: "refused: per-broadcast cap",
};

function renderDetail(view) {
  const subject = view.inputs?.subject ?? "";
  $("detail-title").textContent = view.name ? `${view.name} (${subject})` : subject;
  const parts = [];
  const image = view.images[0];
  if (image) {
    const picture = document.createElement("div");
    picture.className = image.content_type === "image/webp" ? "checker" : ""; // a cutout: transparent
    const img = document.createElement("img");
    img.className = "detail-image";
    img.src = image.url;
    img.alt = subject;
    picture.append(img);
    parts.push(picture);
  }
  const facts = document.createElement("dl");
  facts.className = "facts";
  const fact = (term, value) => {
    if (value === null || value === undefined || value === "") return;
    facts.append(text("dt", term));
    const dd = document.createElement("dd");
    if (value instanceof Node) dd.append(value);
    else dd.textContent = String(value);
    facts.append(dd);
  };
  const badge = text("span", view.state, "badge");
  badge.dataset.state = view.state;
  fact("State", badge);
  fact("Reason", view.reason);
  fact("Content rules", RULES[view.content_rules] ?? view.content_rules);
  fact("Viewer", `${view.viewer.twitch_display_name} (${view.viewer.twitch_user_id})`);
  fact("Style", view.inputs?.color ? `${view.style}, ${view.inputs.color}` : view.style);
  fact("Took", took(view));
  fact("Attempts", view.attempts);
  fact("Points", LEDGER[view.ledger_status] ?? view.ledger_status);
  if (view.ledger_flow_id) fact("Ledger flow", view.ledger_flow_id);
  if (view.retry_of) fact("Retry of", link(`?request=${view.retry_of}`, view.retry_of, view.retry_of));
  fact("Broadcast", view.broadcast_id);
  fact("Tape", view.tape_id);
  fact("Request id", view.id);
  for (const stored of view.images) {
    fact(`Image ${stored.index + 1}`, link(stored.url, `${stored.content_type}, ${Math.round(stored.byte_size / 1024)} KiB`));
  }
  if (image?.color) fact("Background", image.color);
  const spoken = view.spoken_caption;
  if (spoken?.url) fact("Spoken caption", link(spoken.url, `“${spoken.caption}” (${spoken.model ?? "speech"})`));
  else if (spoken) fact("Spoken caption", `aired without its spoken caption: ${spoken.failure}`);
  parts.push(facts);

  parts.push(text("h3", "Prompt"));
  parts.push(text("pre", view.prompt, "prompt"));

  parts.push(text("h3", "Timeline"));
  const start = Date.parse(view.steps.created_at);
  const entries = [{ at: start, label: "received" }];
  for (const { at, label } of page.steps ?? []) {
    if (!at || !view.steps[at]) continue;
    entries.push({
      at: Date.parse(view.steps[at]),
      label: view.free_of_charge ? label.replace("points held", "no points to hold (free)").replace("points settled", "settled") : label,
    });
  }
  for (const failure of view.failures ?? []) {
    entries.push({
      at: Date.parse(failure.failed_at),
      label: `${failure.step} attempt ${failure.attempt} failed: ${failure.reason}`,
      failure: true,
    });
  }
  entries.push(...approvalTimeline(view));
  if (view.steps.finished_at) entries.push({ at: Date.parse(view.steps.finished_at), label: `finished: ${view.state}` });
  entries.sort((a, b) => a.at - b.at);
  const timeline = document.createElement("ol");
  timeline.className = "timeline";
  let previous = start;
  for (const entry of entries) {
    const item = document.createElement("li");
    if (entry.failure) item.className = "failure";
    item.append(text("span", `+${duration(entry.at - start)} `, "when"), entry.label);
    if (entry.at > previous) item.append(text("span", ` (${duration(entry.at - previous)})`, "when"));
    previous = Math.max(previous, entry.at);
    timeline.append(item);
  }
  parts.push(timeline);

  if (page.me?.admin && view.state === "awaiting_approval") parts.push(approvalControls(view));
  if (page.me?.admin && (view.state === "failed" || view.state === "rejected")) {
    const row = document.createElement("div");
    row.className = "row";
    const button = text("button", "Retry this request");
    button.type = "button";
    const status = text("p", "", "status");
    status.setAttribute("role", "status");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const queued = await api(`/requests/${view.id}/retry`, { method: "POST" });
        status.replaceChildren("Queued again as ", link(`?request=${queued.id}`, queued.id, queued.id));
      } catch (error) {
        status.className = "error";
        status.textContent = `Not retried: ${error.message}`;
        button.disabled = false;
      }
    });
    row.append(button, status);
    parts.push(row);
  }
  $("detail-body").replaceChildren(...parts);
}

function text(tag, content, className) {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}

function link(href, label, requestId) {
  const anchor = text("a", label);
  anchor.href = href;
  if (requestId) {
    anchor.addEventListener("click", (event) => {
      event.preventDefault();
      openDetail(requestId);
    });
  } else {
    anchor.target = "_blank";
    anchor.rel = "noopener";
  }
  return anchor;
}

// ---- enqueue ----------------------------------------------------------------

/** Whether requests of `style` give a colour: its definition's rule once
 * the Styles panel has read them (admins), friend's until then. */
function takesColor(style) {
  const definition = knownStyles.get(style);
  return definition ? definition.color !== "none" : style === "friend";
}

async function enqueue(event) {
  event.preventDefault();
  const form = $("enqueue");
  for (const output of form.querySelectorAll(".error")) output.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  $("enqueue-status").textContent = "";
  const style = form.elements.style.value;
  const inputs = { subject: form.elements.subject.value };
  if (takesColor(style)) inputs.color = form.elements.color.value;
  const body = {
    viewer: {
      twitch_user_id: form.elements.twitch_user_id.value.trim(),
      twitch_display_name: form.elements.twitch_display_name.value.trim(),
    },
    style,
    inputs,
    free_of_charge: form.elements.free_of_charge.checked,
    bypass_rules: form.elements.bypass_rules.checked,
  };
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const queued = await api("/requests", { method: "POST", body });
    $("enqueue-status").textContent = `Queued (${queued.id}).`;
    form.elements.subject.value = "";
  } catch (error) {
    // The API names the field it refused; its message is shown next to it.
    const output = form.querySelector(`.error[data-field="${CSS.escape(error.field ?? "")}"]`) ?? $("enqueue-error");
    output.textContent = error.message;
    const input = output.closest(".field")?.querySelector("input, select");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  } finally {
    submit.disabled = false;
  }
}

// ---- approval before air ----------------------------------------------------
// With APPROVAL=manual on the consumers, a stored image waits in
// awaiting_approval until an admin approves (it airs) or declines it (refund,
// the viewer is told). Admins see the waiting images first on the page, with
// big buttons that work on a phone, and may turn on a chime (made with
// WebAudio, no sound files) for each new one.

const SOUND_KEY = "dynamo.approvalSound";
const approvals = {
  waiting: new Map(), // request id -> { element, view }
  audio: null, // AudioContext, made on the click that turns the sound on
};

async function loadApprovals() {
  if (!page.me?.admin) return;
  let result;
  try {
    result = await api("/requests?state=awaiting_approval&limit=100");
  } catch (error) {
    $("approvals-error").textContent = `Could not load the images waiting for approval: ${error.message}`;
    return;
  }
  $("approvals-error").textContent = "";
  // Read again after a lost connection: what was decided meanwhile goes.
  const still = new Set(result.requests.map((view) => view.id));
  for (const id of [...approvals.waiting.keys()]) if (!still.has(id)) removeApproval(id);
  // Oldest first: the one closest to its timeout leads.
  for (const view of result.requests.reverse()) showApproval(view, { quietly: true });
  updateApprovals();
}

function clearApprovals() {
  approvals.waiting.clear();
  $("approvals-list").replaceChildren();
  updateApprovals();
}

async function approvalsOnStateChange(event) {
  if (!page.me?.admin) return;
  if (event.state !== "awaiting_approval") {
    removeApproval(event.id);
    return;
  }
  if (approvals.waiting.has(event.id)) return;
  try {
    showApproval(await api(`/requests/${event.id}`));
  } catch (error) {
    console.info(`request ${event.id} awaits approval but could not be read:`, error.message);
  }
}

function showApproval(view, { quietly = false } = {}) {
  if (view.state !== "awaiting_approval" || approvals.waiting.has(view.id)) return;
  const element = $("approval-template").content.firstElementChild.cloneNode(true);
  element.dataset.id = view.id;
  element.dataset.style = view.style;
  const subject = view.inputs?.subject ?? "";
  const image = view.images[0];
  if (image) {
    const img = document.createElement("img");
    img.src = image.url;
    img.alt = view.style === "friend" && view.name ? `${view.name}, ${subject}` : subject;
    element.querySelector(".picture").append(img);
  }
  element.querySelector(".subject").textContent = subject;
  element.querySelector(".name").textContent = view.name ?? "";
  element.querySelector(".viewer").textContent = view.viewer.twitch_display_name;
  element.querySelector(".style").textContent = view.inputs?.color ? `${view.style}, ${view.inputs.color}` : view.style;
  element.querySelector(".approval-meta").append(
    approvalControls(view, (action) => {
      element.dataset.decided = action;
      element.querySelector(".deadline").textContent = "";
    }),
  );
  approvals.waiting.set(view.id, { element, view });
  $("approvals-list").append(element);
  updateDeadline(element, view);
  updateApprovals();
  if (!quietly) chime();
}

function removeApproval(id) {
  const known = approvals.waiting.get(id);
  if (!known) return;
  known.element.remove();
  approvals.waiting.delete(id);
  updateApprovals();
}

function updateApprovals() {
  const count = approvals.waiting.size;
  $("approvals").hidden = !page.me?.admin || count === 0;
  $("approvals-count").textContent = count ? `(${count})` : "";
}

function updateDeadline(element, view) {
  const deadline = view.approval?.deadline;
  const output = element.querySelector(".deadline");
  if (!deadline || element.dataset.decided) return;
  const left = Date.parse(deadline) - Date.now();
  output.textContent = left > 0 ? `decided automatically in ${countdown(left)}` : "decided automatically any moment";
}

// 9:05, or 1:02:03 past an hour.
function countdown(ms) {
  const total = Math.ceil(ms / 1000);
  const [h, m, sec] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60];
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

setInterval(() => {
  for (const { element, view } of approvals.waiting.values()) updateDeadline(element, view);
}, 1000);

// Approve and Decline (with an optional reason for the viewer) for one
// waiting request: the same controls on its card in the queue and in its
// detail. The server records the decision; a consumer carries it out within
// a second, and the state change then takes the image off the queue.
function approvalControls(view, onDecided = () => {}) {
  const controls = $("approval-controls-template").content.firstElementChild.cloneNode(true);
  const subject = view.inputs?.subject ?? "";
  const label = `${view.name ? `${view.name} (${subject})` : subject} by ${view.viewer.twitch_display_name}`;
  const reason = controls.querySelector(".decline-reason input");
  const status = controls.querySelector(".approval-status");
  const buttons = controls.querySelectorAll("button");
  controls.querySelector(".approve").setAttribute("aria-label", `Approve ${label}`);
  controls.querySelector(".decline").setAttribute("aria-label", `Decline ${label}`);
  reason.setAttribute("aria-label", `Reason if you decline ${label} (optional, told to the viewer)`);
  const decide = async (action) => {
    for (const control of [...buttons, reason]) control.disabled = true;
    status.className = "approval-status status";
    const why = reason.value.trim();
    const body = action === "decline" && why ? { reason: why } : undefined;
    try {
      await api(`/requests/${view.id}/${action}`, { method: "POST", body });
      status.textContent = action === "approve" ? "Approved: going on air…" : "Declined: refunding the points…";
      onDecided(action);
    } catch (error) {
      status.className = "approval-status error";
      status.textContent = `Not ${action}d: ${error.message}`;
      // Decided elsewhere (another admin, the timeout): its state change removes it.
      if (error.status !== 409) for (const control of [...buttons, reason]) control.disabled = false;
    }
  };
  controls.querySelector(".approve").addEventListener("click", () => decide("approve"));
  controls.querySelector(".decline").addEventListener("click", () => decide("decline"));
  return controls;
}

function approvalTimeline(view) {
  const approval = view.approval;
  if (!approval) return [];
  const entries = [{ at: Date.parse(approval.requested_at), label: "waiting for approval" }];
  if (approval.decided_at) {
    const by = approval.decided_by === "timeout" ? "by the timeout" : `by ${approval.decided_by}`;
    const note = approval.note ? `: ${approval.note}` : "";
    entries.push({ at: Date.parse(approval.decided_at), label: `${approval.decision} ${by}${note}` });
  }
  return entries;
}

// Two soft rising notes, made on the spot.
function chime() {
  if (!$("approvals-sound").checked || !approvals.audio) return;
  const audio = approvals.audio;
  const now = audio.currentTime;
  for (const [offset, frequency] of [[0, 660], [0.16, 880]]) {
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.type = "sine";
    tone.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, now + offset);
    gain.gain.exponentialRampToValueAtTime(0.25, now + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.35);
    tone.connect(gain).connect(audio.destination);
    tone.start(now + offset);
    tone.stop(now + offset + 0.4);
  }
}

function wireApprovals() {
  const sound = $("approvals-sound");
  sound.checked = localStorage.getItem(SOUND_KEY) === "on";
  // Browsers let a page make sound only after a click on it.
  const wake = () => {
    if (!sound.checked) return;
    approvals.audio ??= new AudioContext();
    approvals.audio.resume().catch(() => {});
  };
  sound.addEventListener("change", () => {
    localStorage.setItem(SOUND_KEY, sound.checked ? "on" : "off");
    wake();
    chime();
  });
  document.addEventListener("pointerdown", wake, { once: true });
}

// ---- wiring -----------------------------------------------------------------

function start() {
  for (const color of COLORS) $("enqueue-color").append(new Option(color, color));
  const showColor = () => {
    $("enqueue-color-field").hidden = !takesColor($("enqueue-style").value);
  };
  $("enqueue-style").addEventListener("change", showColor);
  document.addEventListener("dynamo:styles", showColor);
  $("enqueue").addEventListener("submit", enqueue);
  wireApprovals();
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) {
      $("sign-in-error").textContent = "Paste a token first.";
      return;
    }
    signIn(token);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("more").addEventListener("click", () => loadList({ more: true }));
  // Text waits for a pause in typing; selects apply at once. Both events are
  // heard because not every way of changing a select fires both.
  let typing;
  const refilter = (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      filtersToUrl();
      loadList();
    }, event.target.tagName === "INPUT" ? 300 : 0);
  };
  $("filters").addEventListener("input", refilter);
  $("filters").addEventListener("change", refilter);
  $("filters").addEventListener("reset", () => setTimeout(() => {
    filtersToUrl();
    loadList();
  }));
  $("gallery").addEventListener("click", (event) => {
    const card = event.target.closest(".card");
    if (card) openDetail(card.dataset.id);
  });
  $("detail-close").addEventListener("click", closeDetail);
  $("detail").addEventListener("close", () => {
    if (page.detailId) closeDetail();
  });
  window.addEventListener("popstate", () => {
    filtersFromUrl();
    if (page.token) loadList();
    const wanted = new URLSearchParams(location.search).get("request");
    if (wanted && page.token) openDetail(wanted);
    else if (!wanted && $("detail").open) {
      page.detailId = null;
      $("detail").close();
    }
  });

  filtersFromUrl();
  signInHint();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token, { remembered: true });
  else showSignIn();
}

start();

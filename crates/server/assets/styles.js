// The live page's "Styles" panel (admins): the styles viewers may ask for,
// created and edited through the JSON API (GET/POST /styles, PUT
// /styles/{style}, POST /styles/{style}/enable|disable), with the prompt a
// sample makes rendered by the server as the template is typed (POST
// /style-preview: the consumer's own renderer), "Try it" (POST
// /styles/{style}/try: one free image that never airs) and "Publish reward"
// (POST /styles/{style}/reward).

const $ = (id) => document.getElementById(id);
const COLORS = [
  "red", "red-orange", "orange", "yellow-orange", "yellow", "chartreuse", "green",
  "cyan", "sky-blue", "blue", "indigo", "purple", "magenta",
];
const FINAL = new Set(["succeeded", "rejected", "failed"]);
const PREVIEW_FIELDS = ["prompt_template", "color", "sample.subject", "sample.color"];

let call = null; // the page's API function, bound to the signed-in token
let editing = null; // the id of the style the form edits; null: a new one
let previewTimer = null;
let previewGeneration = 0; // answers to older previews are dropped
let trying = null; // the try-out followed now: { id, timer }

// ---- the list ---------------------------------------------------------------

function text(tag, content, className) {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}

function button(label, accessibleName, onClick, className = "quiet") {
  const element = text("button", label, className);
  element.type = "button";
  element.setAttribute("aria-label", accessibleName);
  element.addEventListener("click", onClick);
  return element;
}

/** What the style's reward is: the state stylestwitch reports, else its id. */
function rewardState(view) {
  const status = view.reward_status ?? (view.reward_id ? "published" : "none");
  const error = view.reward_error ? `: ${view.reward_error}` : "";
  return `reward ${status}${error}`;
}

function row(view) {
  const style = view.definition;
  const item = document.createElement("li");
  item.className = "style-row";
  item.dataset.id = style.id;
  const name = text("p", "", "style-name");
  name.append(text("strong", style.display_name), " ", text("code", style.id));
  const facts = text(
    "p",
    `${style.output} · ${style.points_cost ? `${style.points_cost} points` : "free"} · ${rewardState(view)}`,
    "style-facts",
  );
  facts.dataset.reward = view.reward_status ?? (view.reward_id ? "published" : "none");

  const switchId = `style-enabled-${style.id}`;
  const toggle = document.createElement("div");
  toggle.className = "field check";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.id = switchId;
  box.setAttribute("role", "switch");
  box.checked = style.enabled;
  const label = document.createElement("label");
  label.htmlFor = switchId;
  label.append(text("span", `${style.display_name} `, "visually-hidden"), "Enabled");
  box.addEventListener("change", () => act(item, async () => {
    const action = box.checked ? "enable" : "disable";
    return call(`/styles/${encodeURIComponent(style.id)}/${action}`, { method: "POST" });
  }, box.checked ? "Enabled." : "Disabled: new requests of it are refused.", "Not switched"));
  toggle.append(box, label);

  const actions = document.createElement("div");
  actions.className = "row";
  actions.append(
    button("Edit", `Edit ${style.display_name}`, () => edit(view)),
    button("Try it", `Try it: ${style.display_name}, with the sample`, () => tryStyle(style), "try"),
    button("Publish reward", `Publish reward: ${style.display_name}'s on Twitch`, () => act(
      item,
      () => call(`/styles/${encodeURIComponent(style.id)}/reward`, { method: "POST" }),
      "Reward requested.",
      "Reward not published",
    )),
  );
  const status = text("p", "", "status style-status");
  status.setAttribute("role", "status");
  item.append(name, facts, toggle, actions, status);
  return item;
}

/** Runs an action of one row; shows the style it answers, or its error in the row. */
async function act(item, action, done, failed) {
  const status = item.querySelector(".style-status");
  status.className = "status style-status";
  status.textContent = "";
  try {
    const view = await action();
    const fresh = row(view);
    item.replaceWith(fresh);
    fresh.querySelector(".style-status").textContent = done;
  } catch (error) {
    status.className = "error style-status";
    status.textContent = `${failed}: ${error.message}`;
    // A refused switch goes back to what the server has.
    refresh({ keepErrors: true });
  }
}

/** Every style's definition by id, as this panel last read them (admins). */
export const known = new Map();

/** The page's other style pickers (enqueue, sounds, the listing's filter)
 * offer every style the panel knows, not only Golden VCR's two. */
function offer(styles) {
  known.clear();
  for (const view of styles) known.set(view.definition.id, view.definition);
  const ids = [...known.keys()];
  const pickers = [$("enqueue-style"), $("onair-sound-style"), document.querySelector("#filters select[name=style]")];
  for (const select of pickers) {
    if (!select) continue;
    const chosen = select.value;
    const any = [...select.options].filter((option) => option.value === "");
    select.replaceChildren(...any, ...ids.map((id) => new Option(id, id)));
    if (chosen === "" || ids.includes(chosen)) select.value = chosen;
  }
  document.dispatchEvent(new CustomEvent("dynamo:styles"));
}

export async function refresh({ keepErrors = false } = {}) {
  if (!call) return;
  if (!keepErrors) $("styles-error").textContent = "";
  let styles;
  try {
    styles = await call("/styles");
  } catch (error) {
    $("styles-error").textContent = `Could not load the styles: ${error.message}`;
    return;
  }
  offer(styles);
  const list = $("styles-list");
  const statuses = new Map([...list.children].map((item) => [item.dataset.id, item.querySelector(".style-status")]));
  list.replaceChildren(...styles.map((view) => {
    const item = row(view);
    const kept = statuses.get(view.definition.id);
    if (kept && keepErrors) item.querySelector(".style-status").replaceWith(kept);
    return item;
  }));
}

// ---- the form ---------------------------------------------------------------

const F = {
  id: "style-id",
  display_name: "style-display-name",
  color: "style-color",
  output: "style-output",
  prompt_template: "style-template",
  image_quality: "style-quality",
  image_size: "style-size",
  points_cost: "style-points",
  duration_ms: "style-duration",
  sound: "style-sound",
  generate_name: "style-generate-name",
  enabled: "style-enabled",
  reward_title: "style-reward-title",
  reward_prompt: "style-reward-prompt",
  reward_cost: "style-reward-cost",
  reward_cooldown: "style-reward-cooldown",
  reward_max_stream: "style-reward-max-stream",
  reward_max_user: "style-reward-max-user",
};

const value = (key) => $(F[key]).value;

/** A number field as the API takes it: the number, or the text as typed
 * (so the API names what is wrong with it); `optional` and empty: left out. */
function number(key, optional = false) {
  const raw = value(key).trim();
  if (optional && raw === "") return undefined;
  const parsed = Number(raw);
  return raw !== "" && Number.isFinite(parsed) ? parsed : raw;
}

function definition() {
  const body = {
    id: value("id").trim(),
    display_name: value("display_name"),
    color: value("color"),
    prompt_template: value("prompt_template"),
    output: value("output"),
    generate_name: $(F.generate_name).checked,
    points_cost: number("points_cost"),
    reward: {
      title: value("reward_title"),
      prompt: value("reward_prompt"),
      cost: number("reward_cost"),
      cooldown_seconds: number("reward_cooldown", true),
      max_per_stream: number("reward_max_stream", true),
      max_per_user_per_stream: number("reward_max_user", true),
    },
    on_air: { duration_ms: number("duration_ms") },
    enabled: $(F.enabled).checked,
  };
  if (value("image_quality")) body.image_quality = value("image_quality");
  if (value("image_size")) body.image_size = value("image_size");
  if (value("sound").trim()) body.on_air.sound = value("sound");
  for (const key of Object.keys(body.reward)) if (body.reward[key] === undefined) delete body.reward[key];
  return body;
}

function clearErrors(fields = null) {
  for (const output of document.querySelectorAll("#style-form .error[data-field]")) {
    if (fields && !fields.includes(output.dataset.field)) continue;
    output.textContent = "";
    output.closest(".field")?.querySelector("input, select, textarea")?.removeAttribute("aria-invalid");
  }
}

/** The API's message next to the field it names (or under the form). */
function showError(error, fallback = $("style-form-error")) {
  const output = document.querySelector(`#style-form .error[data-field="${CSS.escape(error.field ?? "")}"]`) ?? fallback;
  output.textContent = error.message;
  const input = output.closest(".field")?.querySelector("input, select, textarea");
  input?.setAttribute("aria-invalid", "true");
  return input;
}

async function save(event) {
  event.preventDefault();
  clearErrors();
  $("style-form-error").textContent = "";
  $("style-status").textContent = "";
  const body = definition();
  const submit = $("style-save");
  submit.disabled = true;
  try {
    const view = editing
      ? await call(`/styles/${encodeURIComponent(editing)}`, { method: "PUT", body })
      : await call("/styles", { method: "POST", body });
    $("style-status").textContent = editing ? "Saved." : "Created.";
    startEditing(view.definition.id);
    await refresh();
  } catch (error) {
    showError(error)?.focus();
  } finally {
    submit.disabled = false;
  }
}

function startEditing(id) {
  editing = id;
  $("style-form-title").textContent = id ? `Edit ${id}` : "New style";
  $("style-save").textContent = id ? "Save the style" : "Create the style";
  $(F.id).readOnly = Boolean(id);
}

function edit(view) {
  const style = view.definition;
  clearErrors();
  $("style-status").textContent = "";
  $("style-form-error").textContent = "";
  $(F.id).value = style.id;
  $(F.display_name).value = style.display_name;
  $(F.color).value = style.color ?? "none";
  $(F.output).value = style.output;
  $(F.prompt_template).value = style.prompt_template;
  $(F.image_quality).value = style.image_quality ?? "";
  $(F.image_size).value = style.image_size ?? "";
  $(F.points_cost).value = String(style.points_cost);
  $(F.duration_ms).value = String(style.on_air?.duration_ms ?? 8000);
  $(F.sound).value = style.on_air?.sound ?? "";
  $(F.generate_name).checked = style.generate_name;
  $(F.enabled).checked = style.enabled;
  $(F.reward_title).value = style.reward.title;
  $(F.reward_prompt).value = style.reward.prompt;
  $(F.reward_cost).value = String(style.reward.cost);
  $(F.reward_cooldown).value = style.reward.cooldown_seconds ?? "";
  $(F.reward_max_stream).value = style.reward.max_per_stream ?? "";
  $(F.reward_max_user).value = style.reward.max_per_user_per_stream ?? "";
  startEditing(style.id);
  schedulePreview(0);
  $(F.display_name).focus();
}

function newStyle() {
  $("style-form").reset();
  clearErrors();
  $("style-status").textContent = "";
  $("style-form-error").textContent = "";
  startEditing(null);
  schedulePreview(0);
}

// ---- the preview ------------------------------------------------------------

function sampleColor() {
  return value("color") === "none" ? null : $("style-sample-color").value || null;
}

function schedulePreview(delay = 250) {
  $("style-sample-color-field").hidden = value("color") === "none";
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, delay);
}

async function preview() {
  if (!call) return;
  const generation = ++previewGeneration;
  if (!value("prompt_template").trim()) {
    clearErrors(PREVIEW_FIELDS);
    $("style-preview").textContent = "(type a template to see the prompt it makes)";
    $("style-preview").dataset.state = "empty";
    return;
  }
  const sample = { subject: $("style-sample-subject").value };
  const color = sampleColor();
  if (color) sample.color = color;
  const body = { prompt_template: value("prompt_template"), color: value("color"), sample };
  let answer = null;
  let failure = null;
  try {
    answer = await call("/style-preview", { method: "POST", body });
  } catch (error) {
    failure = error;
  }
  if (generation !== previewGeneration) return;
  clearErrors(PREVIEW_FIELDS);
  const output = $("style-preview");
  if (answer) {
    output.textContent = answer.prompt;
    output.dataset.state = "ok";
  } else {
    output.textContent = "(no prompt: see the error above)";
    output.dataset.state = "error";
    showError(failure, $("style-template-error"));
  }
}

// ---- try it -----------------------------------------------------------------

function tryStatus(message, isError = false) {
  const status = $("styles-try-status");
  status.className = isError ? "error" : "status";
  status.textContent = message;
}

async function tryStyle(style) {
  $("styles-tried-box").hidden = false;
  $("styles-tried").hidden = true;
  const body = { subject: $("style-sample-subject").value };
  const color = style.color === "none" ? null : $("style-sample-color").value || null;
  if (color) body.color = color;
  tryStatus(`Trying ${style.display_name} with “${body.subject}”…`);
  let queued;
  try {
    queued = await call(`/styles/${encodeURIComponent(style.id)}/try`, { method: "POST", body });
  } catch (error) {
    tryStatus(`Not tried: ${error.message}`, true);
    return;
  }
  if (trying) clearTimeout(trying.timer);
  trying = { id: queued.request_id, style, subject: body.subject, timer: null };
  follow(trying);
}

// The try-out's request, read every second until it ends (it is one
// request: its state changes also arrive on the page's event stream, but a
// poll needs nothing more than this).
async function follow(current) {
  if (trying !== current || !call) return;
  let view = null;
  try {
    view = await call(`/requests/${current.id}`);
  } catch (error) {
    if (error.status !== 404) tryStatus(`Could not read the try-out: ${error.message}`, true);
  }
  if (trying !== current) return;
  if (view && FINAL.has(view.state)) return showTried(current, view);
  if (view) tryStatus(`Trying ${current.style.display_name}: ${view.state}…`);
  current.timer = setTimeout(() => follow(current), 1000);
}

function showTried(current, view) {
  trying = null;
  const image = view.images[0];
  if (view.state !== "succeeded" || !image) {
    tryStatus(`The try-out ${view.state}: ${view.reason ?? "no image"}`, true);
    return;
  }
  const img = $("styles-tried-image");
  img.src = image.url;
  img.alt = view.name ? `${view.name}, ${current.subject}` : current.subject;
  $("styles-tried").dataset.request = view.id;
  $("styles-tried").dataset.output = image.content_type;
  $("styles-tried-caption").textContent = `${current.style.display_name}: ${view.prompt}`;
  $("styles-tried").hidden = false;
  tryStatus(`Tried ${current.style.display_name}: not shown on stream, no points taken.`);
}

// ---- wiring -----------------------------------------------------------------

let wired = false;

/** Shows the panel to an admin signed in with `api`. */
export function startStyles(api) {
  call = api;
  $("styles").hidden = false;
  if (!wired) {
    wired = true;
    $("style-sample-color").replaceChildren(...COLORS.map((color) => new Option(color, color)));
    $("style-sample-color").value = "orange";
    $("style-form").addEventListener("submit", save);
    $("style-new").addEventListener("click", newStyle);
    for (const id of [F.prompt_template, F.color, "style-sample-subject", "style-sample-color"]) {
      $(id).addEventListener("input", () => schedulePreview());
      $(id).addEventListener("change", () => schedulePreview());
    }
  }
  refresh();
  schedulePreview(0);
}

export function stopStyles() {
  call = null;
  if (trying) clearTimeout(trying.timer);
  trying = null;
  $("styles").hidden = true;
  $("styles-list").replaceChildren();
}

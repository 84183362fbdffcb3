// The live page's "Content rules" panel (admins): the cooldown, the cap per
// broadcast and the blocklist, read and changed through the JSON API
// (GET/PUT /rules, POST/DELETE /rules/blocklist).

const $ = (id) => document.getElementById(id);

let call = null; // the page's API function, bound to the signed-in token

const NUMBERS = [
  ["rules-cooldown", "cooldown_seconds"],
  ["rules-cap", "max_per_broadcast"],
  ["rules-window", "broadcast_window_minutes"],
];

function render(rules) {
  for (const [id, field] of NUMBERS) $(id).value = String(rules[field]);
  $("blocklist-empty").hidden = rules.blocklist.length > 0;
  $("blocklist").replaceChildren(...rules.blocklist.map((phrase) => {
    const item = document.createElement("li");
    item.append(text(phrase), " ");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "quiet unblock";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${phrase} from the blocklist`);
    remove.addEventListener("click", () => change(() =>
      call(`/rules/blocklist/${encodeURIComponent(phrase)}`, { method: "DELETE" })));
    item.append(remove);
    return item;
  }));
}

function text(content) {
  const span = document.createElement("span");
  span.textContent = content;
  return span;
}

function clearErrors() {
  $("rules-error").textContent = "";
  $("rules-status").textContent = "";
  for (const output of document.querySelectorAll("#rules-form .error")) output.textContent = "";
  for (const input of document.querySelectorAll("#rules-form input")) input.removeAttribute("aria-invalid");
}

/** Runs a change; shows the rules it answers, or its error by its field. */
async function change(action, status = "") {
  clearErrors();
  try {
    render(await action());
    $("rules-status").textContent = status;
    return true;
  } catch (error) {
    const output = document.querySelector(`#rules-form .error[data-field="${CSS.escape(error.field ?? "")}"]`) ?? $("rules-error");
    output.textContent = error.message;
    output.closest(".field")?.querySelector("input")?.setAttribute("aria-invalid", "true");
    return false;
  }
}

async function save(event) {
  event.preventDefault();
  const body = {};
  for (const [id, field] of NUMBERS) body[field] = Number.parseInt($(id).value, 10);
  await change(() => call("/rules", { method: "PUT", body }), "Saved.");
}

async function block(event) {
  event.preventDefault();
  const phrase = $("blocklist-phrase").value;
  if (await change(() => call("/rules/blocklist", { method: "POST", body: { phrase } }))) {
    $("blocklist-phrase").value = "";
  }
}

let wired = false;

/** Shows the panel to an admin signed in with `api`. */
export function startRules(api) {
  call = api;
  $("rules").hidden = false;
  if (!wired) {
    wired = true;
    $("rules-form").addEventListener("submit", save);
    $("blocklist-form").addEventListener("submit", block);
  }
  change(() => call("/rules"));
}

export function stopRules() {
  call = null;
  $("rules").hidden = true;
  $("blocklist").replaceChildren();
}

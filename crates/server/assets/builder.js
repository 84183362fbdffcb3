// The overlay URL builder (admins, "On air" panel): the chosen position,
// layout, theme, sizes, duration and volume become the overlay's URL
// parameters; the preview is the overlay itself with the same parameters
// (plus preview=1: a sample alert in a loop), so what it shows is what OBS
// will. "Copy the URL" adds a token: the one pasted, or a fresh one.

const $ = (id) => document.getElementById(id);
const FIELDS = ["position", "layout", "theme", "size", "caption", "duration", "volume"];

let call = null;
let report = () => {};

/** The overlay's parameters as chosen, in a fixed order. */
export function chosen() {
  const params = new URLSearchParams();
  for (const field of FIELDS) params.set(field, $(`builder-${field}`).value);
  return params;
}

function preview() {
  const params = chosen();
  params.set("preview", "1");
  const src = `/overlay?${params}`;
  if ($("builder-preview").getAttribute("src") !== src) $("builder-preview").src = src;
}

async function copy(event) {
  event.preventDefault();
  report("");
  let token = $("builder-token").value.trim();
  if ($("builder-fresh").checked) {
    try {
      token = (await call("/overlay/tokens", { method: "POST", body: { label: "URL builder" } })).token;
    } catch (error) {
      report(error.message);
      return;
    }
    $("builder-token").value = token;
    $("builder-fresh").checked = false;
  }
  if (!token) {
    report("paste an overlay token, or tick “Create a fresh token”");
    return;
  }
  const params = new URLSearchParams({ token });
  for (const [name, value] of chosen()) params.set(name, value);
  const url = `${location.origin}/overlay?${params}`;
  $("builder-url").value = url;
  $("builder-url").select();
  // The clipboard may be refused (no focus, no permission): the URL stays selected.
  await navigator.clipboard?.writeText(url).catch(() => {});
}

let wired = false;

/** Shows the builder to an admin signed in with `api`; errors go to `onError`. */
export function startBuilder(api, onError) {
  call = api;
  report = onError;
  if (!wired) {
    wired = true;
    $("builder").addEventListener("change", preview);
    $("builder").addEventListener("submit", copy);
  }
  preview();
}

export function stopBuilder() {
  call = null;
  $("builder-url").value = "";
  $("builder-token").value = "";
  $("builder-preview").removeAttribute("src");
}

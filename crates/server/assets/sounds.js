// The "On air" panel's alert sounds (admins): each style's sound, uploaded
// as the file itself (PUT /styles/{style}/sound), its volume changed (PATCH),
// removed (DELETE). The server tells the format from the content.

import { known as knownStyles } from "./styles.js";

const $ = (id) => document.getElementById(id);
/** Golden VCR's, until the Styles panel has read every style. */
const GOLDEN_VCR = ["ghost", "friend"];

let call = null;
let report = () => {};

function soundLine(style, sound) {
  const item = document.createElement("li");
  item.dataset.style = style;
  if (!sound) {
    item.append(`${style}: no sound`);
    return item;
  }
  const kb = Math.max(1, Math.round(sound.bytes / 1024));
  item.append(`${style}: ${sound.content_type.replace("audio/", "")}, ${kb} kB `);
  const preview = document.createElement("audio");
  preview.controls = true;
  preview.preload = "none";
  preview.src = sound.url;
  preview.setAttribute("aria-label", `Listen to ${style}'s sound`);
  const volumeLabel = document.createElement("label");
  volumeLabel.textContent = "Volume";
  const volume = document.createElement("input");
  volume.type = "range";
  volume.min = "0";
  volume.max = "100";
  volume.value = String(sound.volume_percent);
  volume.id = `onair-sound-volume-${style}`;
  volumeLabel.htmlFor = volume.id;
  volume.addEventListener("change", () => guarded(() => call(`/styles/${style}/sound`, {
    method: "PATCH", body: { volume_percent: Number(volume.value) },
  })));
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "quiet";
  remove.textContent = "Remove";
  remove.setAttribute("aria-label", `Remove ${style}'s sound`);
  remove.addEventListener("click", async () => {
    await guarded(() => call(`/styles/${style}/sound`, { method: "DELETE" }));
    refreshSounds();
  });
  item.append(preview, volumeLabel, volume, remove);
  return item;
}

async function guarded(action) {
  report("");
  try {
    return await action();
  } catch (error) {
    report(error.message);
    return null;
  }
}

export async function refreshSounds() {
  if (!call) return;
  // Not `guarded`: a refresh after a refused upload keeps its message.
  let sounds;
  try {
    sounds = await call("/overlay/sounds");
  } catch (error) {
    report(error.message);
    return;
  }
  const byStyle = new Map(sounds.map((sound) => [sound.style_id, sound]));
  const styles = knownStyles.size ? [...knownStyles.keys()] : GOLDEN_VCR;
  $("onair-sounds").replaceChildren(...styles.map((style) => soundLine(style, byStyle.get(style))));
}

async function upload(event) {
  event.preventDefault();
  const file = $("onair-sound-file").files[0];
  if (!file) return;
  const style = $("onair-sound-style").value;
  const volume = $("onair-sound-volume").value;
  const stored = await guarded(() => call(
    `/styles/${encodeURIComponent(style)}/sound?volume=${volume}`,
    { method: "PUT", body: file },
  ));
  if (stored) $("onair-sound-form").reset();
  refreshSounds();
}

let wired = false;

/** Shows the sounds to an admin signed in with `api`; errors go to `onError`. */
export function startSounds(api, onError) {
  call = api;
  report = onError;
  if (!wired) {
    wired = true;
    $("onair-sound-form").addEventListener("submit", upload);
  }
  refreshSounds();
}

export function stopSounds() {
  call = null;
  $("onair-sounds").replaceChildren();
}

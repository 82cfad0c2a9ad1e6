// The page's ES module, served as /web/app.js. Plain browser JavaScript kept as a
// string so the server needs no build step or asset copying; it must not contain a
// backtick or a dollar-brace. Every job field reaches the DOM through textContent or
// a property (never innerHTML), and every request carries the saved API key, if any:
// progress streams are read with fetch (EventSource cannot send headers), and with a
// key, media is fetched into blob: URLs for the same reason.

export const CLIENT_JS = String.raw`
const KEY_STORAGE = "tessera.apiKey";
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const $ = (id) => document.getElementById(id);
const cards = new Map(); // id -> { el, job, stream: AbortController | null, media: string | null, blobUrls: [] }

function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

function headers(extra) {
  const h = new Headers(extra || {});
  const k = apiKey();
  if (k) h.set("authorization", "Bearer " + k);
  return h;
}

async function api(path, init) {
  const o = init || {};
  const res = await fetch(path, { ...o, headers: headers(o.headers), cache: "no-store" });
  let body = null;
  const type = res.headers.get("content-type") || "";
  if (type.includes("json")) body = await res.json().catch(() => null);
  if (!res.ok) {
    const e = body && body.error;
    let msg = e && e.message ? e.message : "HTTP " + res.status;
    if (e && e.param) msg += " (" + e.param + ")";
    if (res.status === 401) msg += " — set the API key (top right)";
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return body;
}

// ---- API key box ----
function initKeyBox() {
  const input = $("api-key");
  input.value = apiKey();
  if (input.value) $("key-box").open = false;
  $("save-key").addEventListener("click", () => {
    try {
      localStorage.setItem(KEY_STORAGE, input.value.trim());
    } catch {}
    reloadAll();
  });
  $("clear-key").addEventListener("click", () => {
    input.value = "";
    try {
      localStorage.removeItem(KEY_STORAGE);
    } catch {}
    reloadAll();
  });
}

// ---- the form ----
function numberField(id) {
  const v = $(id).value.trim();
  return v === "" ? undefined : Number(v);
}

function readForm() {
  const body = { prompt: $("prompt").value };
  const neg = $("negative_prompt").value;
  if (neg.trim() !== "") body.negative_prompt = neg;
  const size = $("size").value.trim();
  if (size !== "") body.size = size;
  const len = numberField("length");
  if (len !== undefined) body[$("length-unit").value === "seconds" ? "seconds" : "frames"] = len;
  for (const f of ["steps", "guidance", "seed"]) {
    const v = numberField(f);
    if (v !== undefined) body[f] = v;
  }
  // On is the server's default; only "off" is sent.
  if (!$("rewrite").checked) body.rewrite = false;
  return body;
}

async function submit(ev) {
  ev.preventDefault();
  const errOut = $("form-error");
  errOut.textContent = "";
  const button = $("submit");
  button.disabled = true;
  try {
    const body = readForm();
    const file = $("image").files[0];
    const endFile = $("end_image").files[0];
    let init;
    if (file || endFile) {
      const fd = new FormData();
      for (const [k, v] of Object.entries(body)) fd.append(k, String(v));
      if (file) fd.append("image", file, file.name);
      if (endFile) fd.append("end_image", endFile, endFile.name);
      init = { method: "POST", body: fd };
    } else {
      init = { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } };
    }
    const job = await api("/v1/videos", init);
    upsert(job, true);
  } catch (e) {
    errOut.textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

// ---- the job list ----
function describe(job) {
  const parts = [job.mode, job.size, job.frames + " frames @ " + job.fps + " fps (" + job.seconds + " s)"];
  parts.push(job.steps + " steps", "guidance " + job.guidance, "seed " + job.seed);
  return parts.join(" · ");
}

function statusText(job) {
  switch (job.status) {
    case "queued":
      return job.queue_position != null ? "queued (position " + job.queue_position + ")" : "queued";
    case "in_progress": {
      let s = "running: step " + (job.step || 0) + " of " + (job.total_steps || job.steps);
      if (job.eta_ms != null) s += ", about " + Math.ceil(job.eta_ms / 1000) + " s left";
      return s;
    }
    case "completed": {
      const t = job.timings && job.timings.run_ms;
      return "completed" + (t ? " in " + (t / 1000).toFixed(1) + " s" : "");
    }
    default:
      return job.status;
  }
}

function makeCard(job) {
  const el = $("job-template").content.firstElementChild.cloneNode(true);
  el.dataset.id = job.id;
  el.querySelector(".cancel").addEventListener("click", () => cancelJob(job.id));
  el.querySelector(".delete").addEventListener("click", () => deleteJob(job.id));
  return { el, job, stream: null, media: null, blobUrls: [] };
}

function render(card) {
  const job = card.job;
  const el = card.el;
  el.dataset.status = job.status;
  el.querySelector(".prompt").textContent = job.prompt;
  el.querySelector(".prompt").title = job.negative_prompt ? "negative: " + job.negative_prompt : "";
  // What the model was given, when the rewriter ran (prompt_used is null until the server knows).
  const rw = job.rewrite;
  const used = el.querySelector(".prompt-used");
  used.hidden = !(rw && job.prompt_used != null);
  el.querySelector(".used-text").textContent = used.hidden ? "" : job.prompt_used;
  const filled = rw && rw.filled_defaults ? rw.filled_defaults : [];
  el.querySelector(".filled").textContent = filled.length && !used.hidden ? " (filled in: " + filled.join(", ") + ")" : "";
  const unknown = el.querySelector(".unknown");
  const words = rw && rw.unknown_words ? rw.unknown_words : [];
  unknown.hidden = words.length === 0;
  el.querySelector(".unknown-words").textContent = words.join(", ");
  el.querySelector(".meta").textContent = describe(job);
  const pct = Math.max(0, Math.min(100, Math.round(Number(job.progress) || 0)));
  const bar = el.querySelector(".bar");
  bar.value = pct;
  bar.setAttribute("aria-valuenow", String(pct));
  el.querySelector(".pct").textContent = pct + "%";
  el.querySelector(".status").textContent = statusText(job);
  const err = job.error ? (job.error.message || job.error.code || JSON.stringify(job.error)) : "";
  el.querySelector(".job-error").textContent = err;
  if (job.status === "completed" && job.content && card.media !== job.id) {
    card.media = job.id;
    showMedia(card).catch((e) => {
      card.media = null;
      el.querySelector(".job-error").textContent = "could not load the video: " + e.message;
    });
  }
}

// With no key, plain same-origin URLs (so the player can use Range requests); with a
// key, the bytes are fetched with the header and shown from a blob: URL.
async function mediaUrl(card, path) {
  if (!apiKey()) return path;
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) throw new Error("HTTP " + res.status);
  const url = URL.createObjectURL(await res.blob());
  card.blobUrls.push(url);
  return url;
}

async function showMedia(card) {
  const c = card.job.content;
  const box = card.el.querySelector(".media");
  const src = await mediaUrl(card, c.url);
  let node;
  if (c.content_type.startsWith("video/")) {
    node = document.createElement("video");
    node.controls = true;
    node.loop = true;
    node.muted = true;
    node.playsInline = true;
    node.preload = "metadata";
    if (c.thumbnail_url) node.poster = await mediaUrl(card, c.thumbnail_url);
    node.src = src;
  } else {
    node = document.createElement("img");
    node.alt = card.job.prompt;
    node.src = src;
  }
  node.className = "output";
  box.replaceChildren(node);
  const a = card.el.querySelector(".download");
  a.href = src;
  a.download = card.job.id + (c.content_type === "video/mp4" ? ".mp4" : c.content_type === "image/gif" ? ".gif" : "");
  a.hidden = false;
}

// The running job's current estimate: a strip of its frames as a PNG data: URL, shown in
// place of the video until the video is there (only a data:image/png URL is taken).
function showPreview(card, p) {
  if (card.media || typeof p.image !== "string" || !p.image.startsWith("data:image/png;base64,")) return;
  const box = card.el.querySelector(".media");
  let img = box.querySelector("img.preview");
  if (!img) {
    img = document.createElement("img");
    img.className = "preview";
    img.alt = "preview of the video being made";
    box.replaceChildren(img);
  }
  img.src = p.image;
  img.title = "step " + p.step + ": " + p.frames + " frames of the current estimate";
}

function upsert(job, prepend) {
  let card = cards.get(job.id);
  if (!card) {
    card = makeCard(job);
    cards.set(job.id, card);
    const list = $("jobs");
    if (prepend) list.prepend(card.el);
    else list.append(card.el);
  } else {
    card.job = { ...card.job, ...job };
  }
  render(card);
  if (!TERMINAL.has(card.job.status) && !card.stream) follow(card);
  return card;
}

function removeCard(id) {
  const card = cards.get(id);
  if (!card) return;
  if (card.stream) card.stream.abort();
  for (const u of card.blobUrls) URL.revokeObjectURL(u);
  card.el.remove();
  cards.delete(id);
}

// ---- Server-Sent Events over fetch ----
function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? "" : line.slice(i + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { event, data: data.join("\n") } : null;
}

function onEvent(card, ev) {
  let payload;
  try {
    payload = JSON.parse(ev.data);
  } catch {
    return;
  }
  if (ev.event === "preview") {
    showPreview(card, payload);
    return;
  }
  if (ev.event === "progress") {
    card.job = { ...card.job, status: "in_progress", progress: payload.progress, step: payload.step, total_steps: payload.total_steps, eta_ms: payload.eta_ms };
  } else {
    card.job = { ...card.job, ...payload };
  }
  render(card);
}

async function follow(card) {
  const ctl = new AbortController();
  card.stream = ctl;
  let delay = 1000;
  while (!ctl.signal.aborted && !TERMINAL.has(card.job.status)) {
    try {
      const res = await fetch("/v1/videos/" + encodeURIComponent(card.job.id) + "/events", {
        headers: headers({ accept: "text/event-stream" }),
        signal: ctl.signal,
        cache: "no-store",
      });
      if (res.status === 404) {
        removeCard(card.job.id);
        return;
      }
      if (!res.ok || !res.body) throw new Error("HTTP " + res.status);
      delay = 1000;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, "\n");
        let cut = buf.indexOf("\n\n");
        while (cut >= 0) {
          const ev = parseEvent(buf.slice(0, cut));
          buf = buf.slice(cut + 2);
          if (ev) onEvent(card, ev);
          cut = buf.indexOf("\n\n");
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) break;
    }
    if (TERMINAL.has(card.job.status) || ctl.signal.aborted) break;
    // The stream ended early (server restart, proxy timeout): wait, then pick the job up again.
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15000);
    try {
      card.job = await api("/v1/videos/" + encodeURIComponent(card.job.id));
      render(card);
    } catch (e) {
      if (e.status === 404) {
        removeCard(card.job.id);
        return;
      }
    }
  }
  if (card.stream === ctl) card.stream = null;
}

// ---- cancel / delete ----
async function cancelJob(id) {
  const card = cards.get(id);
  try {
    const job = await api("/v1/videos/" + encodeURIComponent(id), { method: "DELETE" });
    if (card && job && job.status) {
      card.job = { ...card.job, ...job };
      render(card);
    }
  } catch (e) {
    if (card) card.el.querySelector(".job-error").textContent = e.message;
  }
}

async function deleteJob(id) {
  const card = cards.get(id);
  try {
    await api("/v1/videos/" + encodeURIComponent(id), { method: "DELETE" });
    removeCard(id);
  } catch (e) {
    if (e.status === 404) removeCard(id);
    else if (card) card.el.querySelector(".job-error").textContent = e.message;
  }
}

// ---- loading ----
async function loadList() {
  const errOut = $("list-error");
  errOut.textContent = "";
  try {
    const page = await api("/v1/videos?limit=50");
    const seen = new Set();
    for (const job of page.data) {
      seen.add(job.id);
      upsert(job, false);
    }
    for (const id of [...cards.keys()]) if (!seen.has(id)) removeCard(id);
    // Keep the server's order (newest first).
    const list = $("jobs");
    for (const job of page.data) list.append(cards.get(job.id).el);
  } catch (e) {
    errOut.textContent = "could not list videos: " + e.message;
  }
}

function reloadAll() {
  for (const id of [...cards.keys()]) removeCard(id);
  loadList();
}

async function loadInfo() {
  try {
    const res = await fetch("/healthz", { cache: "no-store" });
    const h = await res.json();
    $("server-info").textContent = "model " + h.model + " on " + h.device + " · " + h.status;
    $("rewrite-hint").textContent = h.caption_style
      ? "the model knows only " + h.caption_style + " captions: prompts are rewritten onto them; untick to send yours as typed"
      : h.model + " takes free text: nothing is rewritten";
  } catch {
    $("server-info").textContent = "server unreachable";
  }
}

initKeyBox();
$("create").addEventListener("submit", submit);
$("refresh").addEventListener("click", loadList);
loadInfo();
loadList();
document.documentElement.dataset.ready = "true";
`;

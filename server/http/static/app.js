// The playground: plain ES module, no build step. Talks to the server's HTTP/JSON API (the proto's google.api.http
// rules, and StylizeStream's WebSocket for the live camera) on the same origin; the bearer token lives in
// sessionStorage for this tab only.

const TOKEN_KEY = "styletransfer.token";
const $ = (id) => document.getElementById(id);

// ---- API ----------------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(httpStatus, body) {
    super(body.message || `HTTP ${httpStatus}`);
    this.httpStatus = httpStatus;
    this.status = body.status || "";
    this.requestId = body.requestId || "";
  }
}

function headers(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function api(method, path, body) {
  const init = { method, headers: headers({ Accept: "application/json" }) };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Server-sent events over fetch (EventSource cannot send the Authorization header).
async function watch(path, onMessage, signal) {
  const response = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = Object.fromEntries(block.split("\n").map((line) => {
        const at = line.indexOf(": ");
        return [line.slice(0, at), line.slice(at + 2)];
      }));
      const event = fields.event || "message";
      if (event === "end") return;
      if (event === "error") throw new ApiError(0, JSON.parse(fields.data));
      onMessage(JSON.parse(fields.data));
    }
  }
}

// ---- messages -----------------------------------------------------------------------------------------------------

function showError(error) {
  const alert = $("alert");
  if (error instanceof ApiError && error.httpStatus === 401) {
    alert.textContent = "The server refused the access token: it is missing, expired or unknown. " +
      "Enter a valid token at the top of the page.";
    $("token").focus();
  } else if (error instanceof ApiError) {
    const id = error.requestId ? ` (request id ${error.requestId})` : "";
    alert.textContent = `${error.status || "Error"}: ${error.message}${id}`;
  } else {
    alert.textContent = `Error: ${error.message}`;
  }
  alert.hidden = false;
}

function clearError() {
  $("alert").hidden = true;
  $("alert").textContent = "";
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

async function guarded(action) {
  clearError();
  try {
    return await action();
  } catch (error) {
    if (error.name !== "AbortError") showError(error);
    return undefined;
  }
}

// ---- images -------------------------------------------------------------------------------------------------------

function readBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

function canvasBase64(canvas) {
  return new Promise((resolve) => canvas.toBlob((blob) => resolve(readBase64(blob)), "image/png"));
}

function dataUrl(mime, base64) {
  return `data:${mime};base64,${base64}`;
}

// ---- content photo and mask ---------------------------------------------------------------------------------------

const content = { file: null, width: 0, height: 0 };
const MAX_CANVAS = 1024; // the painted mask is resized to the content by the server anyway

async function loadContent(file) {
  if (!file) return;
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const scale = Math.min(1, MAX_CANVAS / Math.max(bitmap.width, bitmap.height));
  const width = Math.round(bitmap.width * scale);
  const height = Math.round(bitmap.height * scale);
  for (const canvas of [$("content-canvas"), $("mask-canvas")]) {
    canvas.width = width;
    canvas.height = height;
  }
  $("content-canvas").getContext("2d").drawImage(bitmap, 0, 0, width, height);
  Object.assign(content, { file, width: bitmap.width, height: bitmap.height });
  $("stack").hidden = false;
  $("drop-hint").hidden = true;
  $("input-image").src = URL.createObjectURL(file);
  $("input-image").hidden = false;
  notice(`Photo: ${bitmap.width}×${bitmap.height}`);
}

function setUpMask() {
  const canvas = $("mask-canvas");
  const ctx = canvas.getContext("2d");
  let drawing = false;
  let last = null;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  };
  const stroke = (from, to) => {
    const radius = Number($("brush-size").value) * canvas.width / canvas.getBoundingClientRect().width / 2;
    ctx.globalCompositeOperation = $("erase").checked ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = "rgba(255, 40, 90, 1)";
    ctx.lineWidth = radius * 2;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(...from);
    ctx.lineTo(...to);
    ctx.stroke();
    canvas.dataset.painted = "true";
  };
  canvas.addEventListener("pointerdown", (event) => {
    if (!$("paint").checked) return;
    drawing = true;
    last = point(event);
    canvas.setPointerCapture(event.pointerId);
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const next = point(event);
    stroke(last, next);
    last = next;
  });
  const stop = () => { drawing = false; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  $("paint").addEventListener("change", () => canvas.classList.toggle("painting", $("paint").checked));
  $("brush-size").addEventListener("input", () => { $("brush-size-out").value = $("brush-size").value; });
  $("mask-clear").addEventListener("click", () => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    delete canvas.dataset.painted;
  });
}

// The painted strokes as a grayscale mask: white where the style applies ("inside" the strokes or "outside").
function maskBase64(region) {
  const source = $("mask-canvas");
  const out = document.createElement("canvas");
  out.width = source.width;
  out.height = source.height;
  const ctx = out.getContext("2d");
  const fill = (operation, colour) => {
    ctx.globalCompositeOperation = operation;
    ctx.fillStyle = colour;
    ctx.fillRect(0, 0, out.width, out.height);
  };
  ctx.drawImage(source, 0, 0);
  fill("source-in", "#fff"); // the strokes, white
  fill("destination-over", "#000"); // on black
  if (region === "outside") fill("difference", "#fff");
  return canvasBase64(out);
}

// ---- styles -------------------------------------------------------------------------------------------------------

const selected = []; // {key, name, thumb, styleId?, model?, image?}

function renderSelected() {
  const list = $("selected");
  list.replaceChildren();
  selected.forEach((style, index) => {
    const item = document.createElement("li");
    const img = document.createElement("img");
    img.src = style.thumb;
    img.alt = "";
    const name = document.createElement("span");
    name.textContent = style.name;
    const weightId = `weight-${index}`;
    const weightLabel = document.createElement("label");
    weightLabel.htmlFor = weightId;
    weightLabel.textContent = `Weight of ${style.name}`;
    const weight = document.createElement("input");
    Object.assign(weight, { id: weightId, type: "range", min: "0", max: "1", step: "0.05", value: String(style.weight) });
    weight.addEventListener("input", () => { style.weight = Number(weight.value); });
    weight.addEventListener("change", liveChanged);
    const regionId = `region-${index}`;
    const regionLabel = document.createElement("label");
    regionLabel.htmlFor = regionId;
    regionLabel.textContent = `Where ${style.name} applies`;
    const region = document.createElement("select");
    region.id = regionId;
    for (const [value, text] of [["all", "Everywhere"], ["inside", "Painted area"], ["outside", "Outside the painted area"]]) {
      region.add(new Option(text, value, false, style.region === value));
    }
    region.addEventListener("change", () => { style.region = region.value; });
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${style.name}`);
    remove.addEventListener("click", () => {
      selected.splice(selected.indexOf(style), 1);
      renderSelected();
      syncGallery();
      liveChanged();
    });
    item.append(img, name, weightLabel, weight, regionLabel, region, remove);
    list.append(item);
  });
}

function toggleStyle(style) {
  const at = selected.findIndex((s) => s.key === style.key);
  if (at >= 0) selected.splice(at, 1);
  else selected.push({ ...style, weight: 1, region: "all" });
  if (at < 0 && style.model && $("model").value !== style.model) {
    $("model").value = style.model; // a preset is rendered by its own model only
    notice(`${style.name} is a preset of the ${style.model} model: the model is now ${style.model}.`);
  } else if (at < 0 && !style.model && presetsOnly.has($("model").value)) {
    const previous = $("model").value; // it renders only its presets: no style image
    $("model").value = defaultModel;
    notice(`${previous} renders only its presets: the model is now ${defaultModel}.`);
  }
  renderSelected();
  syncGallery();
  liveChanged();
}

function syncGallery() {
  for (const button of $("gallery").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(selected.some((s) => s.key === button.dataset.key)));
  }
}

function addToGallery(style) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.key = style.key;
  button.setAttribute("aria-pressed", "false");
  const img = document.createElement("img");
  img.src = style.thumb;
  img.alt = "";
  const caption = document.createElement("span");
  caption.textContent = style.name;
  button.append(img, caption);
  if (style.model) {
    const badge = document.createElement("small");
    badge.className = "badge";
    badge.textContent = `preset · ${style.model}`;
    button.title = `Built-in preset of the ${style.model} model (read-only)`;
    button.append(badge);
  }
  button.addEventListener("click", () => toggleStyle(style));
  item.append(button);
  $("gallery").append(item);
}

async function loadGallery() {
  $("gallery").replaceChildren();
  let token = "";
  do {
    const page = await api("GET", `/v1/styles?pageSize=100${token ? `&pageToken=${encodeURIComponent(token)}` : ""}`);
    for (const style of page.styles) {
      addToGallery({
        key: style.styleId, styleId: style.styleId, name: style.displayName || style.styleId.slice(0, 8),
        thumb: style.thumbnail ? dataUrl("image/jpeg", style.thumbnail) : "", model: style.builtin ? style.model : "",
      });
    }
    token = page.nextPageToken;
  } while (token);
  syncGallery();
}

async function uploadStyle(file) {
  if (!file) return;
  const name = $("style-name").value.trim() || file.name.replace(/\.[^.]+$/, "");
  const image = await readBase64(file);
  if ($("style-register").checked) {
    const style = await api("POST", "/v1/styles", { image, displayName: name });
    await loadGallery();
    if (!selected.some((s) => s.key === style.styleId)) {
      toggleStyle({ key: style.styleId, styleId: style.styleId, name, thumb: dataUrl(file.type, image) });
    }
    notice(`Registered ${name}.`);
  } else {
    const style = { key: `upload-${Date.now()}`, name, thumb: dataUrl(file.type, image), image };
    addToGallery(style);
    toggleStyle(style);
  }
  $("style-file").value = "";
  $("style-name").value = "";
}

async function styleInputs({ masks }) {
  const inputs = [];
  for (const style of selected) {
    const input = style.styleId ? { styleId: style.styleId } : { image: style.image };
    input.weight = style.weight;
    if (masks && style.region !== "all" && $("mask-canvas").dataset.painted) {
      input.mask = await maskBase64(style.region);
    }
    inputs.push(input);
  }
  return inputs;
}

// ---- stylize ------------------------------------------------------------------------------------------------------

async function requireInputs() {
  if (!content.file) throw new Error("choose a content photo first");
  if (!selected.length) throw new Error("pick at least one style");
  return readBase64(content.file);
}

async function stylize() {
  const button = $("stylize");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = "Stylizing…";
  try {
    const request = {
      content: await requireInputs(),
      styles: await styleInputs({ masks: true }),
      alpha: Number($("alpha").value),
      outputFormat: $("format").value,
      model: $("model").value,
    };
    if ($("color").value) request.colorPreservation = $("color").value;
    // A size is a ceiling: a photo already smaller keeps its own size rather than being upscaled.
    const size = Number($("content-size").value);
    if (size && size < Math.min(content.width, content.height)) request.contentSize = size;
    const started = performance.now();
    const out = await api("POST", "/v1/stylize", request);
    showResult(out, performance.now() - started);
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = "Stylize";
  }
}

function showResult(out, ms) {
  const image = $("result-image");
  image.src = dataUrl(out.mimeType, out.image);
  image.hidden = false;
  image.dataset.width = out.width;
  image.dataset.height = out.height;
  const untrained = out.untrained ? " — untrained (random) weights: not a real stylization" : "";
  $("result-caption").textContent = `${out.width}×${out.height}, ${out.model}, ${Math.round(ms)} ms${untrained}`;
  offerDownload($("download"), out, "stylized");
}

function base64Blob(base64, mime) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: mime });
}

// ---- live camera --------------------------------------------------------------------------------------------------

// StylizeStream as a WebSocket (docs/http.md): JSON settings, then JPEG frames; each result is one binary message
// (a 4-byte big-endian header length, the JSON header, the image). Frames are sent while fewer than MAX_IN_FLIGHT
// are unanswered; the server's LIVE pacing drops a waiting frame for a newer one, so the picture stays current.
const STREAM_PATH = "/v1/stylize:stream";
const STREAM_PROTOCOL = "styletransfer.stream.v1";
const MAX_IN_FLIGHT = 2;
const SEND_INTERVAL_MS = 1000 / 30;
const JPEG_QUALITY = 0.85;
const FPS_WINDOW_MS = 2000;
const live = { ws: null, camera: null, canvas: null, timer: 0, sent: new Map(), next: 0, latest: -1, shown: [],
               error: null, opened: false, encoding: false };

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// A WebSocket cannot carry an Authorization header: the token goes as a subprotocol the server reads and never echoes.
function streamProtocols() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? [STREAM_PROTOCOL, `bearer.${base64url(token)}`] : [STREAM_PROTOCOL];
}

async function liveSettings() {
  if (!selected.length) throw new Error("pick at least one style");
  const settings = {
    styles: await styleInputs({ masks: false }),
    alpha: Number($("alpha").value),
    model: $("model").value,
    pacing: "STREAM_PACING_LIVE",
    outputFormat: "IMAGE_FORMAT_JPEG",
    contentSize: 0, // frames are scaled here before they are sent
  };
  if ($("color").value) settings.colorPreservation = $("color").value;
  return settings;
}

async function startLive() {
  const settings = await liveSettings();
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error("this page cannot use a camera here: open it over https://, or as localhost on this machine");
  }
  const camera = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  const video = $("live-video");
  video.srcObject = camera;
  await video.play();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}${STREAM_PATH}`, streamProtocols());
  ws.binaryType = "arraybuffer";
  Object.assign(live, { ws, camera, sent: new Map(), next: 0, latest: -1, shown: [], error: null, opened: false });
  resetLiveStats();
  $("live-start").disabled = true;
  $("live-stop").disabled = false;
  $("live-caption").textContent = "Connecting…";
  ws.addEventListener("open", () => {
    live.opened = true;
    ws.send(JSON.stringify(settings));
    live.timer = setInterval(sendFrame, SEND_INTERVAL_MS);
    $("live-caption").textContent = "Waiting for the first frame…";
  });
  ws.addEventListener("message", (event) => receiveResult(ws, event.data).catch(showError));
  ws.addEventListener("close", (event) => liveClosed(ws, event));
}

function stopLive() {
  clearInterval(live.timer);
  live.timer = 0;
  if (live.ws && live.ws.readyState <= WebSocket.OPEN) live.ws.close(1000);
  live.ws = null;
  if (live.camera) live.camera.getTracks().forEach((track) => track.stop());
  live.camera = null;
  $("live-video").srcObject = null;
  $("live-start").disabled = false;
  $("live-stop").disabled = true;
}

function sendFrame() {
  const { ws } = live;
  const video = $("live-video");
  if (!ws || ws.readyState !== WebSocket.OPEN || live.encoding || live.sent.size >= MAX_IN_FLIGHT ||
      video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || !video.videoWidth) return;
  const scale = Math.min(1, Number($("live-size").value) / Math.min(video.videoWidth, video.videoHeight));
  live.canvas = live.canvas || document.createElement("canvas");
  const { canvas } = live;
  canvas.width = Math.max(1, Math.round(video.videoWidth * scale));
  canvas.height = Math.max(1, Math.round(video.videoHeight * scale));
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  live.encoding = true;
  canvas.toBlob((jpeg) => {
    live.encoding = false;
    if (!jpeg || ws !== live.ws || ws.readyState !== WebSocket.OPEN) return;
    live.sent.set(live.next++, performance.now());
    ws.send(jpeg);
  }, "image/jpeg", JPEG_QUALITY);
}

// Results of a stream that was stopped or replaced are dropped, also those whose image is still being decoded when
// it stops: a late one would paint over "Stopped." and the new stream's counters.
async function receiveResult(ws, data) {
  if (ws !== live.ws) return;
  if (typeof data === "string") { // the error that ends the stream; the close follows
    live.error = JSON.parse(data).error;
    return;
  }
  const length = new DataView(data).getUint32(0);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 4, length)));
  const sequence = Number(header.sequence);
  const sentAt = live.sent.get(sequence);
  live.sent.delete(sequence);
  const counters = header.counters || {};
  $("live-dropped").value = Number(counters.framesDropped || 0);
  $("live-failed").value = Number(counters.framesFailed || 0);
  if (header.error) {
    $("live-caption").textContent = `Frame ${sequence}: ${header.error.status}: ${header.error.message}`;
    return;
  }
  if (header.dropped) return;
  const bitmap = await createImageBitmap(new Blob([data.slice(4 + length)], { type: header.mimeType }));
  if (ws !== live.ws || sequence < live.latest) { // stopped meanwhile, or a newer frame is already shown
    bitmap.close();
    return;
  }
  live.latest = sequence;
  showLiveFrame(bitmap, header, sentAt);
}

function showLiveFrame(bitmap, header, sentAt) {
  const canvas = $("live-result");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  canvas.hidden = false;
  const now = performance.now();
  live.shown.push(now);
  while (live.shown.length && live.shown[0] < now - FPS_WINDOW_MS) live.shown.shift();
  const seconds = Math.min(FPS_WINDOW_MS, now - live.shown[0]) / 1000;
  $("live-fps").value = (live.shown.length > 1 && seconds > 0 ? (live.shown.length - 1) / seconds : 0).toFixed(1);
  if (sentAt !== undefined) $("live-latency").value = Math.round(now - sentAt);
  $("live-stylized").value = Number(header.counters.framesStylized);
  const untrained = header.untrained ? " — untrained (random) weights: not a real stylization" : "";
  $("live-caption").textContent = `${header.width}×${header.height}, ${header.model}${untrained}`;
}

function resetLiveStats() {
  for (const [id, value] of [["live-fps", "0.0"], ["live-latency", "–"], ["live-stylized", "0"],
                             ["live-dropped", "0"], ["live-failed", "0"]]) {
    $(id).value = value;
  }
}

async function liveClosed(ws, event) {
  if (ws !== live.ws && live.ws !== null) return; // an earlier stream, replaced
  const { error, opened } = live;
  stopLive();
  if (event.code === 1000) {
    $("live-caption").textContent = "Stopped.";
  } else if (error) {
    showError(new ApiError(0, error));
  } else if (!opened) { // the handshake was refused; a browser does not say why, the same request over fetch does
    const reply = await fetch(STREAM_PATH, { headers: headers() }).catch(() => null);
    const body = reply ? await reply.json().catch(() => ({})) : {};
    if (reply && reply.status !== 426) showError(new ApiError(reply.status, body));
    else showError(new Error("could not connect to the live stream"));
  } else {
    showError(new Error(`the live stream closed (${event.code}${event.reason ? `: ${event.reason}` : ""})`));
  }
}

// New settings apply from the next frame: the server encodes the styles again, and the stream goes on.
function liveChanged() {
  const { ws } = live;
  if (!ws || ws.readyState !== WebSocket.OPEN || !selected.length) return;
  guarded(async () => {
    const settings = await liveSettings();
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(settings));
  });
}

// ---- jobs ---------------------------------------------------------------------------------------------------------

const STATE = (job) => job.state.replace("JOB_STATE_", "").toLowerCase();
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

function drawCurve(canvas, losses) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (losses.length < 2) return;
  const values = losses.map(([, loss]) => Math.log10(Math.max(loss, 1e-12)));
  const steps = losses.map(([step]) => step);
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const [first, last] = [steps[0], steps[steps.length - 1]];
  ctx.strokeStyle = "#1f5fbf";
  ctx.lineWidth = 2;
  ctx.beginPath();
  values.forEach((value, i) => {
    const x = 4 + (canvas.width - 8) * (steps[i] - first) / Math.max(1, last - first);
    const y = 4 + (canvas.height - 8) * (hi === lo ? 0.5 : (hi - value) / (hi - lo));
    if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
  });
  ctx.stroke();
}

function describe(job) {
  const p = job.progress || {};
  const step = Number(p.step || 0);
  const total = Number(p.totalSteps || 0);
  const parts = [`${STATE(job)}`, total ? `step ${step} of ${total}` : ""];
  if (p.loss) parts.push(`loss ${Number(p.loss).toPrecision(4)}`);
  if (Number(p.etaSeconds)) parts.push(`about ${Math.ceil(Number(p.etaSeconds))} s left`);
  if (job.error) parts.push(job.error);
  return parts.filter(Boolean).join(", ");
}

async function showJobResult(job, img) {
  if (STATE(job) !== "succeeded") return undefined;
  const result = await api("GET", `/v1/jobs/${encodeURIComponent(job.id)}/result`);
  img.src = dataUrl(result.mimeType, result.image);
  img.hidden = false;
  return result;
}

function offerDownload(link, result, name) {
  if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(base64Blob(result.image, result.mimeType));
  link.download = `${name}.${result.mimeType.split("/")[1] || "png"}`;
  link.hidden = false;
}

// The image so far of a running job (Gatys: at each checkpoint; Train: the training preview), at most once a second.
function previewer(job, img) {
  let last = 0;
  let busy = false;
  return async (update) => {
    const now = performance.now();
    if (busy || now - last < 1000 || STATE(update) !== "running") return;
    busy = true;
    last = now;
    try {
      const preview = await api("GET", `/v1/jobs/${encodeURIComponent(job.id)}/result?preview=true`);
      if (preview.image) {
        img.src = dataUrl(preview.mimeType, preview.image);
        img.hidden = false;
      }
    } finally {
      busy = false;
    }
  };
}

// Follows one job: progress bar/text, loss curve, previews, the result when it succeeds. Returns when it ends.
async function follow(job, { text, progress, curve, result, signal }) {
  const losses = [];
  const preview = previewer(job, result);
  await watch(`/v1/jobs/${encodeURIComponent(job.id)}:watch`, (update) => {
    const p = update.progress || {};
    if (progress) {
      progress.max = Number(p.totalSteps) || 1;
      progress.value = Number(p.step) || 0;
    }
    text.textContent = describe(update);
    if (Number(p.step) && p.loss) losses.push([Number(p.step), Number(p.loss)]);
    drawCurve(curve, losses);
    preview(update).catch(showError);
    job = update;
  }, signal);
  return { job, image: await showJobResult(job, result) };
}

let gatysJob = null;
let gatysWatch = null;

async function submitGatys() {
  const request = {
    content: await requireInputs(),
    styles: await styleInputs({ masks: false }),
    iterations: Number($("gatys-iterations").value),
    size: Number($("gatys-size").value),
    outputFormat: $("format").value,
  };
  if ($("color").value) request.preserveColor = true;
  gatysJob = await api("POST", "/v1/jobs:gatys", request);
  $("gatys-cancel").disabled = false;
  $("gatys-result").hidden = true;
  $("gatys-result").removeAttribute("src");
  $("gatys-download").hidden = true;
  $("gatys-text").textContent = describe(gatysJob);
  gatysWatch = new AbortController();
  try {
    const { job, image } = await follow(gatysJob, {
      text: $("gatys-text"), progress: $("gatys-progress"), curve: $("gatys-curve"), result: $("gatys-result"),
      signal: gatysWatch.signal,
    });
    gatysJob = job;
    if (image) offerDownload($("gatys-download"), image, "gatys");
  } finally {
    $("gatys-cancel").disabled = true;
    refreshJobs();
  }
}

async function cancelGatys() {
  if (!gatysJob) return;
  await api("POST", `/v1/jobs/${encodeURIComponent(gatysJob.id)}:cancel`, {});
}

let detailWatch = null;

async function refreshJobs() {
  const page = await api("GET", "/v1/jobs?pageSize=20");
  const list = $("jobs");
  list.replaceChildren();
  for (const job of page.jobs) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    const kind = job.kind.replace("JOB_KIND_", "").toLowerCase();
    const name = job.modelName ? ` ${job.modelName}` : "";
    button.textContent = `${kind}${name}: ${describe(job)}`;
    button.addEventListener("click", () => guarded(() => openJob(job)));
    item.append(button);
    list.append(item);
  }
  if (!page.jobs.length) list.textContent = "No jobs yet.";
}

async function openJob(job) {
  if (detailWatch) detailWatch.abort();
  detailWatch = new AbortController();
  $("job-detail").hidden = false;
  $("job-result").hidden = true;
  $("job-detail-title").textContent = `${job.kind.replace("JOB_KIND_", "")} job ${job.id}`;
  await follow(job, { text: $("job-detail-text"), curve: $("job-curve"), result: $("job-result"),
                      signal: detailWatch.signal });
}

// ---- set-up -------------------------------------------------------------------------------------------------------

const presetsOnly = new Set(); // models that render only their built-in presets (ListModels: styleImages false)
let defaultModel = "";

async function loadModels() {
  const reply = await api("GET", "/v1/models");
  const select = $("model");
  select.replaceChildren();
  presetsOnly.clear();
  defaultModel = reply.defaultModel;
  for (const model of reply.models) {
    if (!model.styleImages) presetsOnly.add(model.name);
    const label = model.untrained ? `${model.name} (untrained)` : model.name;
    select.add(new Option(label, model.name, false, model.name === reply.defaultModel));
  }
}

async function loadServerData() {
  await guarded(async () => {
    await loadModels();
    await loadGallery();
    await refreshJobs();
  });
}

function setUpToken() {
  $("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    notice(token ? "Token saved for this tab." : "Token cleared.");
    loadServerData();
  });
  $("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    notice("Token forgotten.");
  });
}

function setUpContent() {
  for (const id of ["content-file", "content-camera"]) {
    $(id).addEventListener("change", () => guarded(() => loadContent($(id).files[0])));
  }
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    guarded(() => loadContent(event.dataTransfer.files[0]));
  });
}

function main() {
  setUpToken();
  setUpContent();
  setUpMask();
  $("style-file").addEventListener("change", () => guarded(() => uploadStyle($("style-file").files[0])));
  $("alpha").addEventListener("input", () => { $("alpha-out").value = Number($("alpha").value).toFixed(2); });
  $("stylize").addEventListener("click", () => guarded(stylize));
  $("live-start").addEventListener("click", () => guarded(async () => {
    try {
      await startLive();
    } catch (error) {
      stopLive();
      throw error;
    }
  }));
  $("live-stop").addEventListener("click", stopLive);
  for (const id of ["alpha", "color", "model"]) $(id).addEventListener("change", liveChanged);
  $("gatys-submit").addEventListener("click", () => guarded(submitGatys));
  $("gatys-cancel").addEventListener("click", () => guarded(cancelGatys));
  $("jobs-refresh").addEventListener("click", () => guarded(refreshJobs));
  loadServerData();
}

main();

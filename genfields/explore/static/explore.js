// genfields explore: the page. Plain JS, no dependencies; every number comes from the server's /api/*.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const BUSY_MS = 200;  // a request slower than this shows the busy indicator
const SLOW_MS = 500;  // a ranking slower than this waits for a click instead of following every change
const MARGIN = 0.15;  // the main stage shows this share of the image's side around it: fields reach beyond the image

const state = {
  info: null,
  model: null,  // the model this page is about (null: the server's first)
  view: { seed: 0, truncation: 1, noise: "const", channels: [], mix: { styles: "", seed: 1 } },  // channels: {name, value, info, row}
  shown: null,  // the scalar settings of the last image the server rendered
  pixel: null,
  box: null,
  drag: null,
  tab: "fields",
  fieldLayers: new Set(),
  fields: null,
  render: null,
  attribute: null,
  maskLayers: new Set(),
  gfValues: [],
  slow: {},  // request name -> its last server time, for the slow ones
};

// --- requests, busy state and errors -------------------------------------------------------------------
function setPending(delta) {
  document.body.dataset.pending = String(Number(document.body.dataset.pending) + delta);
}

const busy = new Map();  // token -> label of each request running for longer than BUSY_MS
let busyToken = 0;

function showBusy() {
  const labels = [...new Set(busy.values())];
  $("busy").hidden = labels.length === 0;
  document.body.dataset.busy = labels.length ? "1" : "0";
  $("busy-text").textContent = labels.length ? `${labels.join(", ")}\u2026` : "";
}

// The control an error's field names (the server's `field`), else null.
function anchorFor(field) {
  if (!field) return null;
  if (field.startsWith("view.seed")) return $("seed");
  if (field.startsWith("view.truncation")) return $("truncation");
  if (field.startsWith("view.noise")) return $("noise");
  if (field.startsWith("view.mix")) return $("mix-seed");
  const m = field.match(/^view\.channels\[(\d+)\]/);
  if (m) return state.view.channels[Number(m[1])] ? state.view.channels[Number(m[1])].row : null;
  if (field === "model") return $("model");
  if (field === "file" || field === "align") return $("upload");
  return null;
}

function clearError(from) {
  for (const node of document.querySelectorAll(`.inline-error[data-from="${from}"]`)) node.remove();
  for (const node of document.querySelectorAll(`.invalid[data-from="${from}"]`)) {
    node.classList.remove("invalid");
    delete node.dataset.from;
  }
  if ($("message").dataset.from === from) $("message").hidden = true;
}

// The message goes right under the control that caused it (or the request's own place) and is scrolled into
// view; with neither, it shows in the corner of the window.
function showError(text, field, from, fallback) {
  clearError(from);
  const control = anchorFor(field) || fallback;
  if (!control) {
    $("message-text").textContent = text;
    $("message").dataset.from = from;
    $("message").hidden = false;
    return;
  }
  if (control.matches("input, select")) {
    control.classList.add("invalid");
    control.dataset.from = from;
  }
  const box = control.closest(".controls, .slider-row, .row, figure, p, table") || control;
  const note = document.createElement("div");
  note.className = "inline-error";
  note.dataset.from = from;
  note.setAttribute("role", "alert");
  note.textContent = text;
  box.after(note);
  note.scrollIntoView({ block: "nearest" });
}

// POST /api/<name>; null (and the message shown) on an error. options: anchor (where its errors go),
// busy (what the busy indicator says), line (a status line that says so too).
async function api(name, body, options = {}) {
  const token = ++busyToken;
  const line = options.line ? $(options.line) : null;
  const before = line ? line.textContent : null;
  const timer = setTimeout(() => {
    busy.set(token, options.busy || name);
    if (line) line.textContent = `${options.busy || name}\u2026`;
    showBusy();
  }, BUSY_MS);
  setPending(1);
  let ok = false;
  try {
    const request = { method: "POST", headers: {} };
    let url = "/api/" + name;
    if (name === "upload") {
      const query = new URLSearchParams({ align: options.align ? "1" : "0", name: options.fileName || "upload" });
      if (state.model) query.set("model", state.model);
      url += "?" + query;
      request.body = body;
    } else {
      request.headers["Content-Type"] = "application/json";
      request.body = JSON.stringify(state.model ? { ...body, model: state.model } : body);
    }
    const response = await fetch(url, request);
    let data;
    try {
      data = await response.json();
    } catch (err) {
      data = { error: `${name}: the server answered ${response.status} without JSON` };
    }
    if (typeof data.ms === "number") $("timing").textContent = `server ${data.ms.toFixed(0)} ms (${name})`;
    if (!response.ok || data.error) {
      showError(data.error || `${name}: HTTP ${response.status}`, data.field, name, options.anchor);
      return null;
    }
    clearError(name);
    ok = true;
    return data;
  } catch (err) {
    showError(`${name}: the server did not answer (${err.message}); is genfields explore still running?`, null, name,
              options.anchor);
    return null;
  } finally {
    clearTimeout(timer);
    busy.delete(token);
    showBusy();
    if (line && !ok && line.textContent.endsWith("\u2026")) line.textContent = before;
    setPending(-1);
  }
}

// One request per kind in flight; a change while it runs reruns it once with the latest state.
const runners = {};
function schedule(key, fn) {
  const r = runners[key] || (runners[key] = { busy: false, again: false });
  if (r.busy) { r.again = true; return; }
  r.busy = true;
  setPending(1);
  (async () => {
    try {
      do { r.again = false; await fn(); } while (r.again);
    } finally {
      r.busy = false;
      setPending(-1);
    }
  })();
}

function viewPayload() {
  const v = state.view;
  const view = { seed: v.seed, truncation: v.truncation, noise: v.noise,
                 channels: v.channels.map((c) => ({ name: c.name, value: c.value })) };
  if (v.mix.styles) view.mix = { seed: v.mix.seed, styles: v.mix.styles };
  return view;
}

// --- the URL: every setting of the view, so that a link restores it --------------------------------------
function writeHash() {
  const v = state.view;
  const p = new URLSearchParams();
  if (state.model) p.set("model", state.model);
  p.set("seed", v.seed);
  p.set("trunc", v.truncation);
  if (v.noise !== "const") p.set("noise", v.noise);
  if (v.mix.styles) p.set("mix", `${v.mix.styles}:${v.mix.seed}`);
  if (v.channels.length) p.set("ch", v.channels.map((c) => `${c.name}:${c.value}`).join(","));
  if (state.pixel) p.set("px", state.pixel.join(","));
  if (state.box) p.set("box", state.box.join(","));
  if (state.tab !== "fields") p.set("tab", state.tab);
  if (state.info) {
    p.set("probe", $("probe-layer").value);
    p.set("fmap", $("feature-layer").value);
  }
  if (state.attribute && state.attribute.startsWith("gallery:")) p.set("attr", state.attribute);
  history.replaceState(null, "", "#" + p.toString());
}

function readHash() {
  return new URLSearchParams(location.hash.slice(1));
}

function numbers(text, count) {
  const parts = (text || "").split(",").map(Number);
  return parts.length === count && parts.every(Number.isInteger) ? parts : null;
}

// --- drawing helpers --------------------------------------------------------------------------------
function el(tag, attrs, parent) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function resetSvg(svg) {
  const R = state.info.resolution;
  const m = svg.id === "overlay" ? MARGIN * R : 0;
  svg.setAttribute("viewBox", `${-m} ${-m} ${R + 2 * m} ${R + 2 * m}`);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  return R;
}

// SVG user units per CSS pixel, so that text and marks keep their on-screen size on any stage.
function unit(svg) {
  return svg.viewBox.baseVal.width / Math.max(1, svg.getBoundingClientRect().width);
}

function layerColour(conv) {
  const n = state.info.layers.length;
  return `hsl(${Math.round(330 * conv / Math.max(1, n - 1))}, 85%, 45%)`;
}

function rect(svg, box, colour, dash, width) {
  const [x0, y0, x1, y1] = box;
  return el("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: "none", stroke: colour,
                      "stroke-width": width || 2, "stroke-dasharray": dash || "none",
                      "vector-effect": "non-scaling-stroke" }, svg);
}

function label(svg, x, y, text, colour, size) {
  const t = el("text", { x, y, fill: colour, "font-size": size, "paint-order": "stroke", stroke: "#fff",
                         "stroke-width": size / 7, "font-family": "sans-serif" }, svg);
  t.textContent = text;
  return t;
}

// Landmarks, and the face-size line (landmarks 1 to 17) that the table's "Eq. 1 / face" divides by.
function drawFace(svg, face) {
  if (!face || !face.landmarks) return;
  const u = unit(svg);
  const lm = face.landmarks;
  lm.forEach((p, i) => el("circle", { cx: p[0], cy: p[1], r: 1.8 * u, fill: i < 17 ? "#ff4040" : "#40ff40" }, svg));
  el("line", { x1: lm[0][0], y1: lm[0][1], x2: lm[16][0], y2: lm[16][1], stroke: "#fff", "stroke-width": 2,
               "stroke-dasharray": "6 3", "vector-effect": "non-scaling-stroke" }, svg);
  if (svg.id === "overlay") {
    label(svg, lm[0][0], lm[0][1] + 16 * u, `face size ${face.face_size.toFixed(1)} px (dashed)`, "#000", 13 * u);
  }
}

function drawPose(svg, face) {
  if (!face || !face.pose) return;
  const u = unit(svg);
  const [yaw, pitch, roll] = face.pose;
  label(svg, 3 * u, 13 * u, `yaw ${yaw.toFixed(0)} pitch ${pitch.toFixed(0)} roll ${roll.toFixed(0)}`, "#000", 11 * u);
  label(svg, 3 * u, 26 * u, `face ${face.face_size.toFixed(1)} px`, "#000", 11 * u);
}

// --- generate -------------------------------------------------------------------------------------
function scalarSettings() {
  const v = state.view;
  return { seed: v.seed, truncation: v.truncation, noise: v.noise, mix: { ...v.mix } };
}

// After a refused view (or a server that stopped), the controls go back to the image still shown.
function revertView() {
  if (!state.shown) return;
  Object.assign(state.view, { ...state.shown, mix: { ...state.shown.mix } });
  syncViewControls();
}

function syncViewControls() {
  const v = state.view;
  $("seed").value = String(v.seed);
  $("truncation").value = String(v.truncation);
  $("truncation-value").textContent = Number(v.truncation).toFixed(2);
  $("noise").value = v.noise;
  $("mix-styles").value = v.mix.styles;
  $("mix-seed").value = String(v.mix.seed);
}

async function renderView() {
  const data = await api("render", { view: viewPayload() }, { anchor: $("view-controls"), busy: "rendering" });
  if (!data) { revertView(); return; }
  state.render = data;
  state.shown = scalarSettings();
  syncViewControls();
  $("image").src = data.image;
  for (const c of state.view.channels) {
    const row = data.channels.find((r) => r.paper === c.info.paper);
    c.row.querySelector(".std").textContent = row ? `${(row.value * row.std).toFixed(3)}` : "0";
  }
  drawMainOverlay();
  fillFaceNote();
  if (state.fields) fillFieldsTable();
  writeHash();
  refreshDependents();
}

// After a new view: the open tab's result for the clicked pixel (or box) is recomputed. Rankings that
// back-propagate through the generator (seconds on paper256) wait for a click when they are slow.
function refreshDependents(clicked) {
  const fast = (name) => clicked || (state.slow[name] || 0) < SLOW_MS;
  if (state.pixel && state.tab === "probe") schedule("probe", runProbe);
  if (state.pixel && state.tab === "features") schedule("features", runFeatures);
  if (state.pixel && state.tab === "channels") {
    if (fast("rank")) schedule("rank", runRank);
    else markStale("rank", "The image changed: click the pixel again to rank the channels for it.");
  }
  if (state.box && state.tab === "region") {
    if (fast("region")) schedule("region", runRegion);
    else markStale("region", "The image changed: drag the box again to search this image.");
  }
  if (state.attribute && state.tab === "edit") schedule("edit", runEdit);
}

// A slow ranking not rerun for the new image: its table stays, greyed, under a line that says why.
function markStale(name, text) {
  $(`${name}-line`).textContent = text;
  $(`${name}-table`).classList.add("stale");
}

function drawMainOverlay() {
  const svg = $("overlay");
  const R = resetSvg(svg);
  const u = unit(svg);
  const m = MARGIN * R;
  rect(svg, [0, 0, R, R], "#8a93a3", "3 3", 1);
  if (state.render && $("show-landmarks").checked) drawFace(svg, state.render);
  const box = state.drag && state.drag.box ? state.drag.box : state.box;
  if (box) {
    rect(svg, box, "#fff", null, 3);
    rect(svg, box, "#000", "5 4", 1.5);
  }
  if (!state.fields) return;
  let stacked = 0;
  for (const row of state.fields.layers) {
    if (!state.fieldLayers.has(row.name)) continue;
    const c = layerColour(state.info.layers.find((l) => l.name === row.name).conv);
    rect(svg, row.eq1, c);
    rect(svg, row.exact, c, "6 4");
    if (row.effective) rect(svg, row.effective, c, "2 3");
    let x = row.eq1[0] + 3 * u, y = row.eq1[1] + 15 * u;
    if (x < -m || y < -m + 12 * u) {  // the square starts outside the stage: label it at the stage's corner
      stacked += 1;
      x = -m + 3 * u;
      y = -m + 15 * u * stacked;
    }
    label(svg, x, y, row.name, c, 14 * u);
  }
  const [x, y] = state.fields.pixel;
  rect(svg, [x, y, x + 1, y + 1], "#000", null, 1.5);
}

// Image pixel under a mouse event (clamped to the image).
function pixelAt(event) {
  const R = state.info.resolution;
  const bounds = $("image").getBoundingClientRect();  // the image itself, not the stage's margin
  const x = Math.min(R - 1, Math.max(0, Math.floor((event.clientX - bounds.left) / bounds.width * R)));
  const y = Math.min(R - 1, Math.max(0, Math.floor((event.clientY - bounds.top) / bounds.height * R)));
  return [x, y];
}

// Press-and-release on the image: a click picks a pixel, a drag draws a box for the region search.
function onImageDown(event) {
  if (event.button !== 0) return;
  event.preventDefault();
  state.drag = { start: pixelAt(event), client: [event.clientX, event.clientY], box: null };
}

const DRAG_PX = 5;  // the pointer must move this far (screen pixels) for a drag: a shaky click stays a click

function onImageMove(event) {
  if (!state.drag) return;
  const [x0, y0] = state.drag.start, [x1, y1] = pixelAt(event);
  const moved = Math.hypot(event.clientX - state.drag.client[0], event.clientY - state.drag.client[1]) >= DRAG_PX;
  state.drag.box = !moved || (x0 === x1 && y0 === y1) ? null :
    [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1) + 1, Math.max(y0, y1) + 1];
  drawMainOverlay();
}

function onImageUp(event) {
  if (!state.drag) return;
  onImageMove(event);
  const drag = state.drag;
  state.drag = null;
  if (drag.box) {
    state.box = drag.box;
    drawMainOverlay();
    showTab("region", true);
  } else {
    pickPixel(...drag.start);
  }
}

function pickPixel(x, y) {
  state.pixel = [x, y];
  const R = state.info.resolution;
  $("pixel-line").textContent = `pixel (${x}, ${y}) of ${R}x${R}`;
  schedule("fields", runFields);
  writeHash();
  refreshDependents(true);
}

// --- fields ----------------------------------------------------------------------------------------
async function runFields() {
  const [x, y] = state.pixel;
  const data = await api("fields", { x, y }, { anchor: $("pixel-line") });
  if (!data) return;
  state.fields = data;
  drawMainOverlay();
  fillFieldsTable();
}

function faceReference() {
  if (state.render && state.render.face_size) return { size: state.render.face_size, source: "this image" };
  return state.info.face_reference;
}

function fillFaceNote() {
  const ref = state.info.face_reference;
  const here = state.render && state.render.face_size;
  $("face-note").textContent = here ?
    `"Eq. 1 / face" divides by this image's face size, ${here.toFixed(1)} px (landmarks 1 to 17 by the editor's ` +
    `landmark network; tick "landmarks" to see them). ` + (ref ? `Table 3's ranges in Edit use the mean over the ` +
    `attribute images, ${ref.size.toFixed(1)} px.` : "") :
    ref ? `"Eq. 1 / face" divides by ${ref.source}, ${ref.size.toFixed(1)} px (no landmark network here).` :
    "No face size: no landmark network is loaded and this is not a 256x256 model.";
}

function fillFieldsTable() {
  const table = $("fields-table");
  const face = faceReference();
  $("fields-empty").hidden = true;
  table.innerHTML = "<tr><th>layer</th><th>S</th><th>input</th><th>unit</th><th>Eq. 1</th><th>exact</th><th>effective</th>" +
    (face ? "<th>Eq. 1 / face</th>" : "") + "</tr>";
  for (const row of state.fields.layers) {
    const tr = document.createElement("tr");
    const cells = [row.name, `s${row.s_index}`, `${row.in_resolution}&sup2;`, `(${row.unit[0]}, ${row.unit[1]})`, row.gf,
                   `${row.exact_size[0]}&times;${row.exact_size[1]}`, row.effective_size || "&ndash;"];
    if (face) cells.push((row.gf / face.size).toFixed(2));
    tr.innerHTML = cells.map((c) => `<td>${c}</td>`).join("");
    table.appendChild(tr);
  }
}

function buildFieldPicks() {
  const box = $("field-layers");
  box.innerHTML = "";
  for (const layer of state.info.layers) {
    const lab = document.createElement("label");
    lab.innerHTML = `<input type="checkbox" value="${layer.name}"><span class="swatch" style="background:${layerColour(layer.conv)}"></span>${layer.name}`;
    const input = lab.querySelector("input");
    input.checked = state.fieldLayers.has(layer.name);
    input.addEventListener("change", () => {
      if (input.checked) state.fieldLayers.add(layer.name); else state.fieldLayers.delete(layer.name);
      drawMainOverlay();
    });
    box.appendChild(lab);
  }
}

function figure2Layers() {
  const n = state.info.layers.length;
  return [2, 6, 10].map((k) => `conv${Math.round(k * n / 13)}`);
}

function setFieldLayers(names) {
  state.fieldLayers = new Set(names);
  buildFieldPicks();
  drawMainOverlay();
}

// --- probe -----------------------------------------------------------------------------------------
async function runProbe() {
  const [x, y] = state.pixel;
  const layer = $("probe-layer").value;
  const amount = Number($("probe-amount").value);
  const data = await api("probe", { view: viewPayload(), x, y, layer, amount },
                         { anchor: $("probe-layer"), busy: "probing", line: "probe-line" });
  if (!data) return;
  $("probe-results").hidden = false;
  $("probe-image").src = data.image;
  $("probe-perturbed").src = data.perturbed;
  const svg = $("probe-overlay");
  resetSvg(svg);
  rect(svg, data.eq1, "#4aa3ff");
  rect(svg, data.exact, "#4aa3ff", "6 4");
  if (data.energy_box) rect(svg, data.energy_box, "#7dff9a", "2 3", 1.5);
  const size = (b) => `${b[2] - b[0]}&times;${b[3] - b[1]} px`;
  $("probe-line").className = "note";
  $("probe-line").innerHTML = `${data.layer} unit (${data.unit[0]}, ${data.unit[1]}) scaled by ${(1 + data.amount).toFixed(2)}: ` +
    (data.changed_box ? `the pixels that changed span ${size(data.changed_box)} (largest change ${data.peak.toFixed(1)} of 255 ` +
      `levels in one colour); 90% of the change lies in a ${data.energy_side} px square (dotted green). ` : "nothing changed. ") +
    `Exact field ${size(data.exact)} (dashed blue, unclipped), Eq. 1 ${data.eq1[2] - data.eq1[0]} px (solid blue).`;
}

// --- feature maps ------------------------------------------------------------------------------------
async function runFeatures() {
  const [x, y] = state.pixel;
  const data = await api("features", { view: viewPayload(), x, y, layer: $("feature-layer").value, top: 16 },
                         { anchor: $("feature-layer"), busy: "reading feature maps", line: "features-line" });
  if (!data) return;
  $("features-line").className = "note";
  $("features-line").textContent = `${data.layer}: the ${data.maps.length} of ${data.channels} input maps ` +
    `(${data.in_resolution}x${data.in_resolution}) largest in magnitude at unit (${data.unit[0]}, ${data.unit[1]}); ` +
    `mean |value| over all maps ${data.mean_abs.toFixed(3)}.`;
  const grid = $("feature-grid");
  grid.innerHTML = "";
  const side = 100 / data.in_resolution;
  for (const map of data.maps) {
    const fig = document.createElement("figure");
    fig.title = `${map.stylespace} = ${map.paper}: value ${map.value.toFixed(3)} at the unit, largest |value| ${map.peak.toFixed(3)}; click to add its slider`;
    fig.innerHTML = `<div class="map"><img class="pixelated" alt="${map.conv}" src="${map.image}">` +
      `<span class="unit" style="left:${data.unit[0] * side}%;top:${data.unit[1] * side}%;width:${side}%;height:${side}%"></span></div>` +
      `<figcaption>${map.stylespace} ${map.value >= 0 ? "+" : ""}${map.value.toFixed(2)}</figcaption>`;
    fig.addEventListener("click", () => addChannel(map.stylespace, 0, true));
    grid.appendChild(fig);
  }
}

// --- style channels --------------------------------------------------------------------------------
async function addChannel(name, value = 0, reveal = false, anchor = null) {
  const data = await api("channel", { name }, { anchor: anchor || $("channel-form") });
  if (!data) return false;
  let c = state.view.channels.find((ch) => ch.info.paper === data.paper);
  if (!c) {
    c = { name: data.paper, value, info: data, row: channelRow(data, value) };
    state.view.channels.push(c);
    $("channel-sliders").appendChild(c.row);
    $("sliders-empty").hidden = true;
    const range = c.row.querySelector("input");
    range.addEventListener("input", () => setChannelValue(c, Number(range.value)));
    c.row.querySelector("button.reset").addEventListener("click", () => setChannelValue(c, 0));
    c.row.querySelector("button.remove").addEventListener("click", () => {
      state.view.channels = state.view.channels.filter((other) => other !== c);
      c.row.remove();
      $("sliders-empty").hidden = state.view.channels.length > 0;
      schedule("render", renderView);
    });
    if (value !== 0) schedule("render", renderView);
  }
  if (reveal) {
    showTab("channels");
    c.row.classList.remove("flash");
    void c.row.offsetWidth;  // restart the animation
    c.row.classList.add("flash");
    c.row.scrollIntoView({ block: "nearest" });
  }
  c.row.querySelector("input").focus({ preventScroll: !reveal });
  return true;
}

function setChannelValue(c, value) {
  c.value = value;
  c.row.querySelector("input").value = String(value);
  c.row.querySelector("output").textContent = value.toFixed(1);
  schedule("render", renderView);
}

function channelRow(info, value) {
  const row = document.createElement("div");
  row.className = "slider-row";
  row.dataset.channel = info.paper;
  row.innerHTML = `<span class="name" title="${info.layer}, Eq. 1 field ${info.gf} px, std ${info.std.toFixed(3)}">` +
    `${info.stylespace} &middot; ${info.paper} &middot; ${info.conv}</span>` +
    `<input type="range" min="-10" max="10" step="0.1" value="${value}" aria-label="${info.stylespace} in stds">` +
    `<output>${value.toFixed(1)}</output><button type="button" class="reset" title="back to 0">0</button>` +
    `<button type="button" class="remove" title="remove">&times;</button>` +
    `<span class="note" style="grid-column: 1 / -1">${info.layer} (Eq. 1 field ${info.gf} px), std ${info.std.toFixed(3)}; dS = <span class="std">0</span></span>`;
  return row;
}

function channelTable(table, header, rows, cells) {
  table.innerHTML = `<tr>${header.map((h) => `<th>${h}</th>`).join("")}</tr>`;
  for (const row of rows) {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.title = "add a slider for this channel";
    tr.innerHTML = cells(row).map((c, i) => `<td${i < 2 ? ' class="mono"' : ""}>${c}</td>`).join("");
    tr.addEventListener("click", () => addChannel(row.stylespace, 0, true, tr));
    table.appendChild(tr);
  }
}

async function runRank() {
  const [x, y] = state.pixel;
  const data = await api("rank", { view: viewPayload(), x, y, top: 12 },
                         { anchor: $("rank-line"), busy: "ranking channels", line: "rank-line" });
  if (!data) return;
  state.slow.rank = data.ms;
  $("rank-table").classList.remove("stale");
  $("rank-line").className = "note";
  $("rank-line").textContent = `Pixel (${x}, ${y}): |dI/dS_c| x std_c, in 8-bit levels per std (first order). Click a row to add its slider.`;
  channelTable($("rank-table"), ["StyleSpace", "paper", "conv", "Eq. 1", "levels / std"], data.channels,
               (r) => [r.stylespace, r.paper, r.conv, r.gf, r.effect.toFixed(2)]);
}

// --- region search -------------------------------------------------------------------------------------
async function runRegion() {
  const box = state.box;
  const data = await api("region", { view: viewPayload(), box, top: 12 },
                         { anchor: $("region-line"), busy: "searching the region", line: "region-line" });
  if (!data) return;
  state.slow.region = data.ms;
  $("region-table").classList.remove("stale");
  const [x0, y0, x1, y1] = data.box;
  $("region-line").className = "note";
  $("region-line").textContent = `Box (${x0}, ${y0})\u2013(${x1}, ${y1}), ${x1 - x0}x${y1 - y0} px ` +
    `(${(100 * (x1 - x0) * (y1 - y0) / state.info.resolution ** 2).toFixed(1)}% of the image): ` +
    `${data.eligible} channels change it enough to rank; ${data.probes} random probes. Click a row to add its slider.`;
  channelTable($("region-table"), ["StyleSpace", "paper", "layer", "Eq. 1", "effective", "share inside", "RMS inside"],
               data.channels, (r) => [r.stylespace, r.paper, r.layer, r.gf, r.effective || "&ndash;",
                                      `${(100 * r.share).toFixed(0)}%`, r.inside_rms.toFixed(2)]);
}

// --- editing -----------------------------------------------------------------------------------------
function editPayload() {
  const all = state.info.layers.every((l) => state.maskLayers.has(l.name));
  const lo = Number($("gf-lo").value), hi = Number($("gf-hi").value);
  const full = lo === 0 && hi === state.gfValues.length - 1;
  return { view: viewPayload(), attribute: state.attribute,
           convs: all ? null : state.info.layers.filter((l) => state.maskLayers.has(l.name)).map((l) => l.name),
           gf: full ? null : [state.gfValues[lo], state.gfValues[hi]] };
}

async function runEdit() {
  const data = await api("edit", editPayload(), { anchor: $("gallery"), busy: "editing" });
  if (!data) return;
  $("edit-empty").hidden = true;
  $("edit-results").hidden = false;
  const parts = [["edit-id", data.identity], ["edit-attr", data.attribute], ["edit-out", data.output]];
  for (const [id, face] of parts) {
    $(id).src = face.image;
    const svg = $(id + "-overlay");
    resetSvg(svg);
    drawFace(svg, face);
    drawPose(svg, face);
  }
  const m = data.metrics;
  $("metrics-table").innerHTML = "<tr><th></th><th>edit</th><th>unedited</th></tr>" +
    `<tr><td>identity (cosine, higher is better)</td><td>${m.method.identity.toFixed(3)}</td><td>${m.unedited.identity.toFixed(3)}</td></tr>` +
    `<tr><td>expression (landmark distance / resolution, lower is better)</td><td>${m.method.expression.toFixed(4)}</td><td>${m.unedited.expression.toFixed(4)}</td></tr>` +
    `<tr><td>pose (MSE of yaw, pitch, roll, deg&sup2;, lower is better)</td><td>${m.method.pose.toFixed(2)}</td><td>${m.unedited.pose.toFixed(2)}</td></tr>`;
  const n = state.info.layers.length;
  $("mask-line").textContent = data.layers.length ?
    `dS applied on ${data.layers.length} of ${n} conv layers (${data.layers.join(", ")}); |dS| = ${data.delta_norm.toFixed(2)}.` :
    "No conv layer chosen: dS is masked out entirely, so I_out = I_id.";
  $("top-section").hidden = data.top.length === 0;
  channelTable($("top-table"), ["StyleSpace", "paper", "layer", "Eq. 1", "dS", "dS / std"], data.top,
               (r) => [r.stylespace, r.paper, r.layer, r.gf, r.delta.toFixed(3), r.delta_std.toFixed(2)]);
}

function selectAttribute(id) {
  state.attribute = id;
  for (const img of $("gallery").querySelectorAll("img")) img.classList.toggle("selected", img.dataset.id === id);
  writeHash();
  schedule("edit", runEdit);
}

function addThumbnail(item) {
  const img = document.createElement("img");
  img.src = item.image;
  img.className = "pixelated";
  img.dataset.id = item.id;
  img.alt = item.source;
  img.title = item.source;
  img.addEventListener("click", () => selectAttribute(item.id));
  $("gallery").appendChild(img);
  return img;
}

async function onUpload(event) {
  const file = event.target.files[0];
  if (!file) return;
  const limit = state.info.editing.upload_limit;
  if (file.size > limit) {  // refused here at once rather than after sending it
    event.target.value = "";
    showError(`${file.name}: ${(file.size / 2 ** 20).toFixed(1)} MB; the limit is ${limit / 2 ** 20} MB`, "file",
              "upload", $("upload"));
    return;
  }
  const bytes = await file.arrayBuffer();
  event.target.value = "";
  const data = await api("upload", bytes, { anchor: $("upload"), busy: "reading the photo", fileName: file.name,
                                           align: $("upload-align").checked });
  if (!data) return;
  addThumbnail(data);
  selectAttribute(data.id);
}

function buildMaskControls() {
  const box = $("mask-layers");
  box.innerHTML = "";
  for (const layer of state.info.layers) {
    const lab = document.createElement("label");
    lab.innerHTML = `<input type="checkbox" value="${layer.name}">${layer.name} <span class="note">(${layer.gf})</span>`;
    const input = lab.querySelector("input");
    input.checked = state.maskLayers.has(layer.name);
    input.addEventListener("change", () => {
      if (input.checked) state.maskLayers.add(layer.name); else state.maskLayers.delete(layer.name);
      if (state.attribute) schedule("edit", runEdit);
    });
    box.appendChild(lab);
  }
}

function setMaskLayers(names) {
  state.maskLayers = new Set(names);
  buildMaskControls();
  if (state.attribute) schedule("edit", runEdit);
}

function onGfChange(event) {
  const lo = $("gf-lo"), hi = $("gf-hi");
  if (Number(lo.value) > Number(hi.value)) {
    if (event.target === lo) hi.value = lo.value; else lo.value = hi.value;
  }
  $("gf-lo-value").textContent = `${state.gfValues[Number(lo.value)]} px`;
  $("gf-hi-value").textContent = `${state.gfValues[Number(hi.value)]} px`;
  if (state.attribute) schedule("edit", runEdit);
}

function setupEditing() {
  const editing = state.info.editing;
  if (!editing) {
    $("edit-missing").hidden = false;
    $("edit-body").hidden = true;
    return;
  }
  editing.gallery.forEach(addThumbnail);
  $("gallery-note").textContent = editing.gallery_note;
  $("upload-align").checked = editing.aligner;
  $("upload-align").disabled = !editing.aligner;
  if (!editing.aligner) $("upload-align").parentElement.title = "aligning needs dlib: pip install 'genfields[real]'";
  $("upload").addEventListener("change", onUpload);
  state.maskLayers = new Set(state.info.layers.map((l) => l.name));
  buildMaskControls();
  $("mask-all").addEventListener("click", () => setMaskLayers(state.info.layers.map((l) => l.name)));
  $("mask-none").addEventListener("click", () => setMaskLayers([]));
  for (const range of editing.table3) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `#${range.config} ${range.label}`;
    b.title = `the paper's configuration ${range.config} mapped to this generator (Eq. 1 fields ${range.gf[0]}-${range.gf[1]} px)`;
    b.addEventListener("click", () => setMaskLayers(range.convs));
    $("mask-buttons").appendChild(b);
  }
  state.gfValues = [...new Set(state.info.layers.map((l) => l.gf))].sort((a, b) => a - b);
  for (const id of ["gf-lo", "gf-hi"]) {
    $(id).max = String(state.gfValues.length - 1);
    $(id).addEventListener("input", onGfChange);
  }
  $("gf-lo").value = "0";
  $("gf-hi").value = String(state.gfValues.length - 1);
  onGfChange({ target: null });
  if (editing.kind !== "style") {
    for (const input of document.querySelectorAll("#mask-layers input, #gf-lo, #gf-hi, #mask-buttons button")) input.disabled = true;
    $("mask-line").textContent = "A W-space editor has no style channels to mask.";
  }
}

// --- capture and link --------------------------------------------------------------------------------
async function capture() {
  writeHash();
  const data = await api("capture", { view: viewPayload(), link: location.href }, { anchor: $("mix-controls"),
                                                                                     busy: "capturing" });
  if (!data) return;
  const a = document.createElement("a");
  a.href = data.image;
  a.download = data.filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
}

async function copyLink() {
  writeHash();
  const button = $("copy-link");
  try {
    await navigator.clipboard.writeText(location.href);
    button.textContent = "link copied";
  } catch (err) {
    button.textContent = "link in the address bar";
  }
  setTimeout(() => { button.textContent = "copy link"; }, 1500);
}

// --- set-up ----------------------------------------------------------------------------------------
// The image at an integer zoom (pixel-exact) as large as the window allows beside the tools, inside a margin
// where fields may reach; an image larger than that space is scaled down.
function layoutStage() {
  const R = state.info.resolution;
  const oneColumn = window.innerWidth <= 1000;
  const high = window.innerHeight - 190, wide = oneColumn ? window.innerWidth - 60 : window.innerWidth - 720;
  const room = Math.max(128, Math.min(high, wide)) / (1 + 2 * MARGIN);
  const zoom = R <= room ? Math.floor(room / R) : room / R;
  const side = Math.round(R * zoom);
  const stage = $("stage");
  stage.style.width = stage.style.height = `${Math.round(side * (1 + 2 * MARGIN))}px`;
  $("generate").style.width = oneColumn ? "" : `${Math.round(side * (1 + 2 * MARGIN)) + 28}px`;  // + the padding
  const img = $("image");
  img.style.left = img.style.top = `${Math.round(side * MARGIN)}px`;
  img.style.width = img.style.height = `${side}px`;
  $("zoom-line").textContent = `${R}x${R} shown at ${Number.isInteger(zoom) ? zoom : zoom.toFixed(2)}x; ` +
    "the grey margin is outside the image.";
  if (state.render) drawMainOverlay();
}

function showTab(name, clicked) {
  state.tab = name;
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== `tab-${name}`;
  writeHash();
  refreshDependents(clicked);
}

function setSeed(raw, key = "seed") {
  const value = raw === "" ? NaN : Number(raw);
  const target = key === "seed" ? state.view : state.view.mix;
  if (Number.isNaN(value)) {
    showError(`${key === "seed" ? "seed" : "the mixing seed"} must be an integer in 0..4294967295`,
              key === "seed" ? "view.seed" : "view.mix.seed", "render");
    revertView();
    return;
  }
  target.seed = value;  // the server refuses -5, 1.7 or 1e20 with a message next to the box
  if (key === "seed" || state.view.mix.styles) schedule("render", renderView);
}

function addOptions(select, items) {
  for (const [value, text] of items) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = text;
    select.appendChild(option);
  }
}

async function restoreFromHash(p) {
  const v = state.view;
  if (p.has("seed")) v.seed = Number(p.get("seed"));
  if (p.has("trunc")) v.truncation = Number(p.get("trunc"));
  if (p.has("noise")) v.noise = p.get("noise");
  if (p.has("mix")) {
    const [styles, seed] = p.get("mix").split(":");
    v.mix = { styles, seed: Number(seed) };
  }
  for (const [select, key] of [["probe-layer", "probe"], ["feature-layer", "fmap"]]) {
    if (p.has(key) && state.info.layers.some((l) => l.name === p.get(key))) $(select).value = p.get(key);
  }
  syncViewControls();
  for (const item of (p.get("ch") || "").split(",").filter(Boolean)) {
    const at = item.lastIndexOf(":");
    await addChannel(item.slice(0, at), Number(item.slice(at + 1)));
  }
  const R = state.info.resolution;
  const px = numbers(p.get("px"), 2), box = numbers(p.get("box"), 4);
  if (box && box[0] < box[2] && box[1] < box[3] && box[2] <= R && box[3] <= R) state.box = box;
  if (px && px[0] < R && px[1] < R) {
    state.pixel = px;
    $("pixel-line").textContent = `pixel (${px[0]}, ${px[1]}) of ${R}x${R}`;
    schedule("fields", runFields);
  }
  if (p.get("attr") && state.info.editing && state.info.editing.gallery.some((g) => g.id === p.get("attr"))) {
    state.attribute = p.get("attr");
    for (const img of $("gallery").querySelectorAll("img")) img.classList.toggle("selected", img.dataset.id === state.attribute);
  }
  const tab = p.get("tab");
  if (tab && $(`tab-${tab}`)) {
    state.tab = tab;
    for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b.dataset.tab === tab);
    for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== `tab-${tab}`;
  }
}

async function init() {
  const p = readHash();
  state.model = p.get("model");
  const info = await api("info", {}, { busy: `loading ${state.model || "the model"}` });
  if (!info) return;
  state.info = info;
  state.model = info.model;
  addOptions($("model"), info.models.map((m) => [m, m]));
  $("model").value = info.model;
  $("model").addEventListener("change", (e) => {
    location.hash = "model=" + encodeURIComponent(e.target.value);
    location.reload();
  });
  $("model-line").textContent = `${info.resolution}x${info.resolution}, S ${info.s_dim} dims` +
    (info.editor ? ` \u00b7 editor ${info.editor}` : " \u00b7 no editor");
  addOptions($("noise"), info.noise_modes.map((m) => [m, m]));
  state.view.truncation = info.truncation;
  const layerOptions = info.layers.map((l) => [l.name, `${l.name} (${l.in_resolution}x${l.in_resolution} input, Eq. 1 ${l.gf})`]);
  addOptions($("probe-layer"), layerOptions);
  addOptions($("feature-layer"), layerOptions);
  const fig2 = figure2Layers();
  $("probe-layer").value = fig2[1];
  $("feature-layer").value = fig2[1];
  state.fieldLayers = new Set(fig2);
  buildFieldPicks();
  $("effective-note").textContent = info.effective_source ? `Effective fields: ${info.effective_source}.` :
    "Effective fields were not measured for this model (genfields fields --model M --measure measures them).";
  if (!info.landmarks) {
    $("show-landmarks").disabled = true;
    $("landmarks-label").title = "needs a landmark network: start with an editor (--editor NAME)";
  }
  layoutStage();
  window.addEventListener("resize", layoutStage);

  $("seed").addEventListener("change", (e) => setSeed(e.target.value));
  $("seed-prev").addEventListener("click", () => setSeed(String(state.view.seed - 1)));
  $("seed-next").addEventListener("click", () => setSeed(String(state.view.seed + 1)));
  $("seed-random").addEventListener("click", () => setSeed(String(Math.floor(Math.random() * 100000))));
  $("truncation").addEventListener("input", (e) => {
    state.view.truncation = Number(e.target.value);
    $("truncation-value").textContent = state.view.truncation.toFixed(2);
    schedule("render", renderView);
  });
  $("noise").addEventListener("change", (e) => { state.view.noise = e.target.value; schedule("render", renderView); });
  $("mix-styles").addEventListener("change", (e) => { state.view.mix.styles = e.target.value; schedule("render", renderView); });
  $("mix-seed").addEventListener("change", (e) => setSeed(e.target.value, "mix"));
  $("capture").addEventListener("click", capture);
  $("copy-link").addEventListener("click", copyLink);
  $("show-landmarks").addEventListener("change", drawMainOverlay);
  $("image").addEventListener("mousedown", onImageDown);
  window.addEventListener("mousemove", onImageMove);
  window.addEventListener("mouseup", onImageUp);
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab, true));
  $("fields-all").addEventListener("click", () => setFieldLayers(info.layers.map((l) => l.name)));
  $("fields-none").addEventListener("click", () => setFieldLayers([]));
  $("fields-fig2").addEventListener("click", () => setFieldLayers(figure2Layers()));
  $("probe-layer").addEventListener("change", () => { writeHash(); if (state.pixel) schedule("probe", runProbe); });
  $("feature-layer").addEventListener("change", () => { writeHash(); if (state.pixel) schedule("features", runFeatures); });
  $("probe-amount").addEventListener("input", (e) => {
    $("probe-amount-value").textContent = Number(e.target.value).toFixed(2);
    if (state.pixel) schedule("probe", runProbe);
  });
  $("channel-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("channel-name").value.trim();
    if (name) addChannel(name);
  });
  $("channels-reset").addEventListener("click", () => state.view.channels.forEach((c) => setChannelValue(c, 0)));
  $("message-close").addEventListener("click", () => { $("message").hidden = true; });
  setupEditing();
  await restoreFromHash(p);
  schedule("render", renderView);
}

init();

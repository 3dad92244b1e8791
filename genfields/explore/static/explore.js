// genfields explore: the page. Plain JS, no dependencies; every number comes from the server's /api/*.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

const state = {
  info: null,
  view: { seed: 0, truncation: 1, noise: "const", channels: [] },  // channels: {name, value, row}
  pixel: null,
  tab: "fields",
  fieldLayers: new Set(),
  fields: null,
  render: null,
  probe: null,
  attribute: null,
  maskLayers: new Set(),
  gfValues: [],
  messageFrom: null,
  rankMs: 0,
};

// --- requests -------------------------------------------------------------------------------------
function setPending(delta) {
  const n = Number(document.body.dataset.pending) + delta;
  document.body.dataset.pending = String(n);
}

function showMessage(text, from) {
  $("message-text").textContent = text;
  $("message").hidden = false;
  state.messageFrom = from;
}

function clearMessage(from) {
  if (state.messageFrom === from) {
    $("message").hidden = true;
    state.messageFrom = null;
  }
}

async function api(name, body, raw, fileName) {
  const options = { method: "POST", headers: {}, body: raw !== undefined ? raw : JSON.stringify(body || {}) };
  if (raw === undefined) options.headers["Content-Type"] = "application/json";
  setPending(1);
  try {
    const url = name !== "upload" ? "/api/" + name :
      `/api/upload?align=${$("upload-align").checked ? 1 : 0}&name=${encodeURIComponent(fileName || "upload")}`;
    const response = await fetch(url, options);
    const data = await response.json();
    if (typeof data.ms === "number") $("timing").textContent = `server ${data.ms.toFixed(0)} ms (${name})`;
    if (data.error) {
      showMessage(data.error, name);
      return null;
    }
    clearMessage(name);
    return data;
  } catch (err) {
    showMessage(`${name}: the server did not answer (${err.message})`, name);
    return null;
  } finally {
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
  return { seed: v.seed, truncation: v.truncation, noise: v.noise,
           channels: v.channels.map((c) => ({ name: c.name, value: c.value })) };
}

// --- drawing helpers --------------------------------------------------------------------------------
function el(tag, attrs, parent) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

const MARGIN = 0.2;  // the main stage shows a fifth of the image's side around it: fields reach beyond the image

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

function drawFace(svg, face, withPoints) {
  if (!face || !face.landmarks) return;
  const u = unit(svg);
  const lm = face.landmarks;
  if (withPoints) {
    lm.forEach((p, i) => el("circle", { cx: p[0], cy: p[1], r: 1.8 * u, fill: i < 17 ? "#ff4040" : "#40ff40" }, svg));
  }
  el("line", { x1: lm[0][0], y1: lm[0][1], x2: lm[16][0], y2: lm[16][1], stroke: "#fff", "stroke-width": 2,
               "stroke-dasharray": "6 3", "vector-effect": "non-scaling-stroke" }, svg);
  if (svg.id === "overlay") label(svg, lm[0][0], lm[0][1] - 4 * u, `face ${face.face_size.toFixed(1)} px`, "#000", 15 * u);
}

function drawPose(svg, face) {
  if (!face || !face.pose) return;
  const u = unit(svg);
  const [yaw, pitch, roll] = face.pose;
  label(svg, 3 * u, 13 * u, `yaw ${yaw.toFixed(0)} pitch ${pitch.toFixed(0)} roll ${roll.toFixed(0)}`, "#000", 11 * u);
  label(svg, 3 * u, 26 * u, `face ${face.face_size.toFixed(1)} px`, "#000", 11 * u);
}

// --- generate -------------------------------------------------------------------------------------
async function renderView() {
  const data = await api("render", { view: viewPayload() });
  if (!data) return;
  state.render = data;
  $("image").src = data.image;
  for (const c of state.view.channels) {
    const row = data.channels.find((r) => r.paper === c.info.paper);
    c.row.querySelector(".std").textContent = row ? `${(row.value * row.std).toFixed(3)}` : "0";
  }
  drawMainOverlay();
  refreshDependents();
}

// After a new view: the open tab's result for the clicked pixel is recomputed. The channel ranking
// back-propagates through the generator (seconds on paper256): when it is slow it waits for a click.
const SLOW_RANK_MS = 500;

function refreshDependents(clicked) {
  if (state.pixel && state.tab === "probe") schedule("probe", runProbe);
  if (state.pixel && state.tab === "channels") {
    if (clicked || state.rankMs < SLOW_RANK_MS) schedule("rank", runRank);
    else $("rank-line").textContent = "The image changed: click the pixel again to rank the channels for it.";
  }
  if (state.attribute && state.tab === "edit") schedule("edit", runEdit);
}

function drawMainOverlay() {
  const svg = $("overlay");
  const R = resetSvg(svg);
  const u = unit(svg);
  rect(svg, [0, 0, R, R], "#8a93a3", "3 3", 1);
  if (state.render) drawFace(svg, state.render, $("show-landmarks").checked);
  if (!state.fields) return;
  for (const row of state.fields.layers) {
    if (!state.fieldLayers.has(row.name)) continue;
    const c = layerColour(state.info.layers.find((l) => l.name === row.name).conv);
    rect(svg, row.eq1, c);
    rect(svg, row.exact, c, "6 4");
    if (row.effective) rect(svg, row.effective, c, "2 3");
    label(svg, row.eq1[0] + 3 * u, row.eq1[1] + 15 * u, row.name, c, 14 * u);
  }
  const [x, y] = state.fields.pixel;
  rect(svg, [x, y, x + 1, y + 1], "#000", null, 1.5);
}

function onImageClick(event) {
  const img = $("image");
  const R = state.info.resolution;
  const bounds = img.getBoundingClientRect();  // the image itself, not the stage's margin
  const x = Math.min(R - 1, Math.max(0, Math.floor((event.clientX - bounds.left) / bounds.width * R)));
  const y = Math.min(R - 1, Math.max(0, Math.floor((event.clientY - bounds.top) / bounds.height * R)));
  state.pixel = [x, y];
  $("pixel-line").textContent = `pixel (${x}, ${y}) of ${R}x${R}`;
  schedule("fields", runFields);
  refreshDependents(true);
}

// --- fields ----------------------------------------------------------------------------------------
async function runFields() {
  const [x, y] = state.pixel;
  const data = await api("fields", { x, y });
  if (!data) return;
  state.fields = data;
  drawMainOverlay();
  fillFieldsTable();
}

function faceReference() {
  if (state.render && state.render.face_size) return { size: state.render.face_size, source: "this image" };
  return state.info.face_reference;
}

function fillFieldsTable() {
  const table = $("fields-table");
  const face = faceReference();
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
  const data = await api("probe", { view: viewPayload(), x, y, layer, amount });
  if (!data) return;
  state.probe = data;
  $("probe-image").src = data.image;
  $("probe-perturbed").src = data.perturbed;
  const svg = $("probe-overlay");
  resetSvg(svg);
  rect(svg, data.eq1, "#4aa3ff");
  rect(svg, data.exact, "#4aa3ff", "6 4");
  if (data.energy_box) rect(svg, data.energy_box, "#7dff9a", "2 3", 1.5);
  const size = (b) => `${b[2] - b[0]}&times;${b[3] - b[1]} px`;
  $("probe-line").innerHTML = `${data.layer} unit (${data.unit[0]}, ${data.unit[1]}) scaled by ${(1 + data.amount).toFixed(2)}: ` +
    (data.changed_box ? `the pixels that changed span ${size(data.changed_box)} (peak ${data.peak.toFixed(1)} levels); ` +
      `90% of the change lies in a ${data.energy_side} px square (dotted green). ` : "nothing changed. ") +
    `Exact field ${size(data.exact)} (dashed blue, unclipped), Eq. 1 ${data.eq1[2] - data.eq1[0]} px (solid blue).`;
}

// --- style channels --------------------------------------------------------------------------------
async function addChannel(name) {
  const data = await api("channel", { name });
  if (!data) return;
  let c = state.view.channels.find((ch) => ch.info.paper === data.paper);
  if (!c) {
    c = { name: data.paper, value: 0, info: data, row: channelRow(data) };
    state.view.channels.push(c);
    $("channel-sliders").appendChild(c.row);
    c.row.querySelector("input").addEventListener("input", (ev) => {
      c.value = Number(ev.target.value);
      c.row.querySelector("output").textContent = c.value.toFixed(1);
      schedule("render", renderView);
    });
    c.row.querySelector("button").addEventListener("click", () => {
      state.view.channels = state.view.channels.filter((other) => other !== c);
      c.row.remove();
      schedule("render", renderView);
    });
  }
  c.row.querySelector("input").focus();
}

function channelRow(info) {
  const row = document.createElement("div");
  row.className = "slider-row";
  row.dataset.channel = info.paper;
  row.innerHTML = `<span class="name" title="${info.layer}, Eq. 1 field ${info.gf} px, std ${info.std.toFixed(3)}">` +
    `${info.stylespace} &middot; ${info.paper} &middot; ${info.conv}</span>` +
    `<input type="range" min="-10" max="10" step="0.1" value="0" aria-label="${info.stylespace} in stds">` +
    `<output>0.0</output><button type="button" title="remove">&times;</button>` +
    `<span class="note" style="grid-column: 1 / -1">${info.layer} (Eq. 1 field ${info.gf} px), std ${info.std.toFixed(3)}; dS = <span class="std">0</span></span>`;
  return row;
}

async function runRank() {
  const [x, y] = state.pixel;
  const data = await api("rank", { view: viewPayload(), x, y, top: 12 });
  if (!data) return;
  state.rankMs = data.ms;
  $("rank-line").textContent = `Pixel (${x}, ${y}): |dI/dS_c| x std_c, in 8-bit levels per std (first order). Click a row to add its slider.`;
  const table = $("rank-table");
  table.innerHTML = "<tr><th>StyleSpace</th><th>paper</th><th>conv</th><th>Eq. 1</th><th>levels / std</th></tr>";
  for (const row of data.channels) {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.innerHTML = `<td class="mono">${row.stylespace}</td><td class="mono">${row.paper}</td><td class="mono">${row.conv}</td><td>${row.gf}</td><td>${row.effect.toFixed(2)}</td>`;
    tr.addEventListener("click", () => addChannel(row.stylespace));
    table.appendChild(tr);
  }
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
  const data = await api("edit", editPayload());
  if (!data) return;
  const parts = [["edit-id", data.identity], ["edit-attr", data.attribute], ["edit-out", data.output]];
  for (const [id, face] of parts) {
    $(id).src = face.image;
    const svg = $(id + "-overlay");
    resetSvg(svg);
    drawFace(svg, face, true);
    drawPose(svg, face);
  }
  const m = data.metrics;
  $("metrics-table").innerHTML = "<tr><th></th><th>edit</th><th>unedited</th></tr>" +
    `<tr><td>identity (cosine, higher is better)</td><td>${m.method.identity.toFixed(3)}</td><td>${m.unedited.identity.toFixed(3)}</td></tr>` +
    `<tr><td>expression (landmark distance / resolution)</td><td>${m.method.expression.toFixed(4)}</td><td>${m.unedited.expression.toFixed(4)}</td></tr>` +
    `<tr><td>pose (MSE of yaw, pitch, roll, deg&sup2;)</td><td>${m.method.pose.toFixed(2)}</td><td>${m.unedited.pose.toFixed(2)}</td></tr>`;
  const n = state.info.layers.length;
  $("mask-line").textContent = data.layers.length ?
    `dS applied on ${data.layers.length} of ${n} conv layers (${data.layers.join(", ")}); |dS| = ${data.delta_norm.toFixed(2)}.` :
    "No conv layer chosen: dS is masked out entirely, so I_out = I_id.";
  const table = $("top-table");
  table.innerHTML = "<tr><th>StyleSpace</th><th>paper</th><th>layer</th><th>Eq. 1</th><th>dS</th><th>dS / std</th></tr>";
  for (const row of data.top) {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.innerHTML = `<td class="mono">${row.stylespace}</td><td class="mono">${row.paper}</td><td>${row.layer}</td><td>${row.gf}</td>` +
      `<td>${row.delta.toFixed(3)}</td><td>${row.delta_std.toFixed(2)}</td>`;
    tr.title = "add a slider for this channel";
    tr.addEventListener("click", () => addChannel(row.stylespace));
    table.appendChild(tr);
  }
}

function selectAttribute(id) {
  state.attribute = id;
  for (const img of $("gallery").querySelectorAll("img")) img.classList.toggle("selected", img.dataset.id === id);
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
  const bytes = await file.arrayBuffer();
  event.target.value = "";
  const data = await api("upload", null, bytes, file.name);
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

// --- set-up ----------------------------------------------------------------------------------------
// The image at an integer zoom (pixel-exact), about 512 px, inside a margin where fields may reach.
function layoutStage(R) {
  const zoom = R >= 512 ? 1 : Math.floor(512 / R);
  const side = R * zoom;
  const stage = $("stage");
  stage.style.width = stage.style.height = `${side * (1 + 2 * MARGIN)}px`;
  const img = $("image");
  img.style.left = img.style.top = `${side * MARGIN}px`;
  img.style.width = img.style.height = `${side}px`;
  $("zoom-line").textContent = `${R}x${R} shown at ${zoom}x; the grey margin is outside the image.`;
}

function showTab(name) {
  state.tab = name;
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== `tab-${name}`;
  refreshDependents(true);
}

function setSeed(seed) {
  seed = Math.max(0, Math.min(4294967295, Math.floor(Number(seed) || 0)));
  state.view.seed = seed;
  $("seed").value = String(seed);
  schedule("render", renderView);
}

async function init() {
  const info = await api("info", {});
  if (!info) return;
  state.info = info;
  $("model-line").textContent = `model ${info.model} (${info.resolution}x${info.resolution}, S ${info.s_dim} dims)` +
    (info.editor ? ` \u00b7 editor ${info.editor}` : " \u00b7 no editor");
  for (const mode of info.noise_modes) {
    const option = document.createElement("option");
    option.value = option.textContent = mode;
    $("noise").appendChild(option);
  }
  $("noise").value = state.view.noise;
  layoutStage(info.resolution);
  state.view.truncation = info.truncation;
  $("truncation").value = String(info.truncation);
  $("truncation-value").textContent = info.truncation.toFixed(2);
  for (const layer of info.layers) {
    const option = document.createElement("option");
    option.value = layer.name;
    option.textContent = `${layer.name} (${layer.in_resolution}x${layer.in_resolution} input, Eq. 1 ${layer.gf})`;
    $("probe-layer").appendChild(option);
  }
  const fig2 = figure2Layers();
  $("probe-layer").value = fig2[1];
  state.fieldLayers = new Set(fig2);
  buildFieldPicks();
  $("effective-note").textContent = info.effective_source ? `Effective fields: ${info.effective_source}.` :
    "Effective fields were not measured for this model (genfields fields --model M --measure measures them).";
  if (info.face_reference) $("face-legend").textContent = ` \u00b7 face size ${info.face_reference.size.toFixed(1)} px (${info.face_reference.source})`;

  $("seed").addEventListener("change", (e) => setSeed(e.target.value));
  $("seed-prev").addEventListener("click", () => setSeed(state.view.seed - 1));
  $("seed-next").addEventListener("click", () => setSeed(state.view.seed + 1));
  $("seed-random").addEventListener("click", () => setSeed(Math.floor(Math.random() * 100000)));
  $("truncation").addEventListener("input", (e) => {
    state.view.truncation = Number(e.target.value);
    $("truncation-value").textContent = state.view.truncation.toFixed(2);
    schedule("render", renderView);
  });
  $("noise").addEventListener("change", (e) => { state.view.noise = e.target.value; schedule("render", renderView); });
  $("show-landmarks").addEventListener("change", drawMainOverlay);
  $("image").addEventListener("click", onImageClick);
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("fields-all").addEventListener("click", () => setFieldLayers(info.layers.map((l) => l.name)));
  $("fields-none").addEventListener("click", () => setFieldLayers([]));
  $("fields-fig2").addEventListener("click", () => setFieldLayers(figure2Layers()));
  $("probe-layer").addEventListener("change", () => state.pixel && schedule("probe", runProbe));
  $("probe-amount").addEventListener("input", (e) => {
    $("probe-amount-value").textContent = Number(e.target.value).toFixed(2);
    if (state.pixel) schedule("probe", runProbe);
  });
  $("channel-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("channel-name").value.trim();
    if (name) addChannel(name);
  });
  $("message-close").addEventListener("click", () => { $("message").hidden = true; state.messageFrom = null; });
  setupEditing();
  schedule("render", renderView);
}

init();

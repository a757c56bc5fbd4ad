// catgan's page: the grid, the editor, morphing, model switching, download and share links.
// All model work happens in worker.js; this file only draws and handles input. Nothing taken
// from the URL or the manifest is ever inserted as HTML (textContent and value only).

const GRID = 16;           // cats in the grid
const SLIDERS = 16;        // latent directions shown at once
const SLIDER_RANGE = 3;    // each direction moves its latent coordinate by at most this much

const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });

const state = {
  models: [], model: null, seed: 0, cat: 0, psi: 1, edits: new Map(), page: 0,
  morphSeed: null, morphT: 0, latentSize: 0, inputSize: 0,
};
const latentCache = new Map(); // seed -> Float32Array: the latent, then any noise values
let nextId = 1;

// ---- share links -------------------------------------------------------------------------

function parseUrl() {
  const params = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
  const int = (key, max) => {
    const v = params.get(key);
    return v !== null && /^\d{1,10}$/.test(v) && Number(v) <= max ? Number(v) : null;
  };
  const num = (key, min, max) => {
    const v = params.get(key);
    if (v === null || !/^-?\d{1,3}(\.\d{1,4})?$/.test(v)) return null;
    const n = Number(v);
    return n >= min && n <= max ? n : null;
  };
  const out = {};
  const model = params.get('model');
  if (model !== null && /^[A-Za-z0-9_-]{1,64}$/.test(model)) out.model = model;
  out.seed = int('seed', 0xffffffff);
  out.cat = int('cat', GRID - 1);
  out.psi = num('psi', 0, 1);
  out.b = int('b', 0xffffffff);
  out.t = num('t', 0, 1);
  out.edits = new Map();
  const edits = params.get('e');
  if (edits !== null && edits.length < 4000) {
    for (const part of edits.split(',')) {
      const m = /^(\d{1,4}):(-?\d(\.\d{1,3})?)$/.exec(part);
      if (m && Math.abs(Number(m[2])) <= SLIDER_RANGE) out.edits.set(Number(m[1]), Number(m[2]));
    }
  }
  out.backend = ['cpu', 'webgpu'].includes(params.get('backend')) ? params.get('backend') : null;
  // Treat a software WebGPU adapter like a hardware one (for tests on machines without a GPU).
  out.anyAdapter = params.get('gpu') === 'any';
  return out;
}

function shareUrl() {
  const p = new URLSearchParams();
  p.set('model', state.model);
  p.set('seed', String(state.seed));
  p.set('cat', String(state.cat));
  if (state.psi !== 1) p.set('psi', state.psi.toFixed(2));
  const edits = [...state.edits].filter(([, v]) => v !== 0).map(([d, v]) => `${d}:${v.toFixed(2)}`);
  if (edits.length) p.set('e', edits.join(','));
  if (state.morphSeed !== null) { p.set('b', String(state.morphSeed)); p.set('t', state.morphT.toFixed(2)); }
  return `${location.origin}${location.pathname}#${p}`;
}

function syncUrl() { history.replaceState(null, '', shareUrl()); }

// ---- messages to the worker, coalesced per channel ---------------------------------------

const inflight = new Map();  // channel -> id
const pending = new Map();   // channel -> message waiting for the channel to free up
const waiting = new Map();   // id -> resolve

function send(message) { worker.postMessage(message); }

function generate(channel, latents, onImages, stage) {
  const message = { type: 'generate', id: nextId++, channel, name: state.model, latents, onImages, stage };
  if (inflight.has(channel)) { pending.set(channel, message); return; }
  dispatch(message);
}

function dispatch(message) {
  inflight.set(message.channel, message.id);
  waiting.set(message.id, message.onImages);
  const { onImages, ...plain } = message;
  send(plain);
}

function finish(channel) {
  inflight.delete(channel);
  const next = pending.get(channel);
  if (next) { pending.delete(channel); dispatch({ ...next, name: state.model }); }
}

function request(type, fields) {
  const id = nextId++;
  return new Promise((resolve) => { waiting.set(id, resolve); send({ type, id, ...fields }); });
}

// ---- latents -----------------------------------------------------------------------------

async function latentsFor(seeds) {
  const missing = seeds.filter((s) => !latentCache.has(s));
  if (missing.length) {
    const { latents } = await request('latents', { seeds: missing, size: state.inputSize });
    missing.forEach((s, i) => latentCache.set(s, Float32Array.from(latents[i])));
  }
  return seeds.map((s) => latentCache.get(s));
}

// Truncation scales the latent; a model's noise values (the fur's run), which follow it, stay.
function truncated(z) {
  return Float32Array.from(z, (v, i) => (i < state.latentSize ? v * state.psi : v));
}

function edited(base) {
  const z = Float32Array.from(base);
  for (const [d, v] of state.edits) if (d < state.latentSize) z[d] += v;
  return truncated(z);
}

// Morphs latent and noise values each along their own great circle.
function morph(a, b, t) {
  const n = state.latentSize;
  if (a.length === n) return slerp(a, b, t);
  return concat([slerp(a.subarray(0, n), b.subarray(0, n), t), slerp(a.subarray(n), b.subarray(n), t)]);
}

function slerp(a, b, t) {
  const norm = (v) => Math.hypot(...v);
  const na = norm(a), nb = norm(b);
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += (a[i] / na) * (b[i] / nb);
  const omega = Math.acos(Math.min(1, Math.max(-1, dot)));
  const out = new Float32Array(a.length);
  if (omega < 1e-4) { for (let i = 0; i < a.length; i++) out[i] = a[i] + t * (b[i] - a[i]); return out; }
  const sa = Math.sin((1 - t) * omega) / Math.sin(omega), sb = Math.sin(t * omega) / Math.sin(omega);
  for (let i = 0; i < a.length; i++) out[i] = sa * a[i] + sb * b[i];
  return out;
}

function concat(list) {
  const out = new Float32Array(list.reduce((n, l) => n + l.length, 0));
  let offset = 0;
  for (const l of list) { out.set(l, offset); offset += l.length; }
  return out;
}

// ---- drawing -----------------------------------------------------------------------------

function draw(canvas, pixels, index, side) {
  canvas.width = side; canvas.height = side;
  const size = side * side * 4;
  const image = new ImageData(new Uint8ClampedArray(pixels.buffer, pixels.byteOffset + index * size, size), side, side);
  canvas.getContext('2d').putImageData(image, 0, 0);
}

async function renderGrid() {
  const seeds = Array.from({ length: GRID }, (_, i) => (state.seed + i) >>> 0);
  const latents = await latentsFor(seeds);
  generate('grid', concat(latents.map(truncated)), (m) => {
    const cells = $('grid').querySelectorAll('canvas');
    cells.forEach((c, i) => draw(c, m.pixels, i, m.side));
    $('timing').textContent = `${m.count} cats in ${m.ms.toFixed(0)} ms`;
    const body = document.body.dataset;
    if (!body.firstCatMs) body.firstCatMs = performance.now().toFixed(0);
    body.gridMs = m.ms.toFixed(1);
    body.gridDrawn = String(Number(body.gridDrawn || 0) + 1);
  });
}

async function currentLatent() {
  const [base] = await latentsFor([(state.seed + state.cat) >>> 0]);
  let z = edited(base);
  if (state.morphSeed !== null) {
    const [other] = await latentsFor([state.morphSeed]);
    z = morph(z, truncated(other), state.morphT);
  }
  return z;
}

async function renderEditor() {
  const z = await currentLatent();
  generate('editor', z, (m) => {
    draw($('editor'), m.pixels, 0, m.side);
    document.body.dataset.editorMs = m.ms.toFixed(1);
    document.body.dataset.editorDrawn = String(Number(document.body.dataset.editorDrawn || 0) + 1);
  });
  renderGrowth(z);
  syncUrl();
}

// ---- watch it grow: a progressive model's cat at every stage -----------------------------

function stagesOf(entry) {
  return entry && entry.arch === 'progan' ? Math.log2(entry.resolution) - 1 : 0;
}

function buildGrowth() {
  const entry = state.models.find((m) => m.name === state.model);
  const stages = stagesOf(entry);
  const box = $('grow');
  box.hidden = stages === 0;
  const strip = $('grow-stages');
  strip.replaceChildren();
  for (let s = 0; s < stages; s++) {
    const figure = document.createElement('figure');
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 4 << s;
    canvas.setAttribute('aria-label', `The cat at ${4 << s}×${4 << s}`);
    const caption = document.createElement('figcaption');
    caption.textContent = `${4 << s}×${4 << s}`;
    figure.append(canvas, caption);
    strip.appendChild(figure);
  }
}

function renderGrowth(z) {
  const canvases = $('grow-stages').querySelectorAll('canvas');
  canvases.forEach((canvas, s) => {
    generate(`grow-${s}`, z, (m) => {
      draw(canvas, m.pixels, 0, m.side);
      document.body.dataset.growDrawn = String(Number(document.body.dataset.growDrawn || 0) + 1);
    }, s);
  });
}

function buildGrid() {
  const grid = $('grid');
  grid.replaceChildren();
  for (let i = 0; i < GRID; i++) {
    const button = document.createElement('button');
    button.className = 'cell';
    button.setAttribute('aria-label', `Edit cat ${i + 1}`);
    button.appendChild(document.createElement('canvas'));
    button.addEventListener('click', (event) => {
      if (event.shiftKey) setMorphTarget((state.seed + i) >>> 0);
      else selectCat(i);
    });
    grid.appendChild(button);
  }
}

function markSelected() {
  $('grid').querySelectorAll('.cell').forEach((c, i) => c.classList.toggle('selected', i === state.cat));
  $('seed-label').textContent = `seed ${(state.seed + state.cat) >>> 0}`;
}

function buildSliders() {
  const box = $('sliders');
  box.replaceChildren();
  const first = state.page * SLIDERS;
  for (let d = first; d < Math.min(first + SLIDERS, state.latentSize); d++) {
    const label = document.createElement('label');
    const name = document.createElement('span');
    name.textContent = `z${d}`;
    const input = document.createElement('input');
    Object.assign(input, { type: 'range', min: -SLIDER_RANGE, max: SLIDER_RANGE, step: 0.05 });
    input.value = String(state.edits.get(d) || 0);
    input.setAttribute('aria-label', `Latent direction ${d}`);
    input.addEventListener('input', () => {
      const v = Number(input.value);
      if (v === 0) state.edits.delete(d); else state.edits.set(d, v);
      renderEditor();
    });
    label.append(name, input);
    box.appendChild(label);
  }
  const pages = Math.ceil(state.latentSize / SLIDERS);
  $('page').max = String(pages - 1);
  $('page-label').textContent = `directions ${first}–${Math.min(first + SLIDERS, state.latentSize) - 1} of ${state.latentSize}`;
}

// ---- actions -----------------------------------------------------------------------------

function selectCat(i) { state.cat = i; markSelected(); renderEditor(); }

function setMorphTarget(seed) {
  state.morphSeed = seed;
  $('morph-label').textContent = `morphing toward seed ${seed}`;
  $('morph').disabled = false; $('play').disabled = false;
  renderEditor();
}

function newCats() {
  state.seed = Math.floor(Math.random() * 0xfffffff0) >>> 0;
  state.edits.clear(); state.morphSeed = null; state.morphT = 0;
  $('morph').value = '0'; $('morph').disabled = true; $('play').disabled = true;
  $('morph-label').textContent = 'shift-click a cat (or use "Morph with next") to morph';
  buildSliders(); markSelected(); renderGrid(); renderEditor();
}

let playing = null;
function togglePlay() {
  if (playing) { cancelAnimationFrame(playing); playing = null; $('play').textContent = 'Play'; return; }
  $('play').textContent = 'Pause';
  const start = performance.now();
  const step = (now) => {
    state.morphT = (1 - Math.cos(((now - start) / 3000) * Math.PI)) / 2;
    $('morph').value = String(state.morphT);
    renderEditor();
    playing = requestAnimationFrame(step);
  };
  playing = requestAnimationFrame(step);
}

function download() {
  const source = $('editor');
  const scale = Number($('scale').value);
  const out = document.createElement('canvas');
  out.width = source.width * scale; out.height = source.height * scale;
  const ctx = out.getContext('2d');
  ctx.imageSmoothingEnabled = $('smooth').value === 'smooth';
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, out.width, out.height);
  out.toBlob((blob) => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `catgan-${state.model}-${(state.seed + state.cat) >>> 0}.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, 'image/png');
}

async function share() {
  const url = shareUrl();
  $('share-url').value = url;
  try { await navigator.clipboard.writeText(url); $('share-status').textContent = 'Link copied'; }
  catch { $('share-status').textContent = 'Copy the link above'; }
}

function status(text, isError) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', !!isError);
}

// While another model is tried in the background, its download progress stays off the status
// line, which is showing why the wanted model failed.
let quietLoad = false;

// Loads and shows a model; false (with the reason on the page) if it cannot be used.
async function switchModel(name, { quiet = false } = {}) {
  const entry = state.models.find((m) => m.name === name);
  if (!entry) return false;
  $('model').disabled = true;
  if (!quiet) status(`Loading ${name}…`);
  quietLoad = quiet;
  const loaded = await loadModel(name);
  $('model').disabled = false;
  if (!loaded || loaded.type === 'error') { // the error message is already shown
    if (state.model) $('model').value = state.model; // the selector shows the model in use
    return false;
  }
  $('model').value = name;
  state.model = name;
  state.latentSize = entry.latent_size;
  state.inputSize = entry.latent_size + (entry.noise_size || 0);
  latentCache.clear();
  $('model-info').textContent = `${entry.arch}, ${entry.resolution}×${entry.resolution}, ` +
    `${(entry.bytes / 1e6).toFixed(1)} MB ${entry.precision}, trained ${entry.kimg.toFixed(0)} kimg`;
  if (!quiet) status('');
  state.page = Math.min(state.page, Math.ceil(state.latentSize / SLIDERS) - 1);
  $('page').value = String(state.page);
  buildSliders(); buildGrowth(); markSelected(); renderGrid(); renderEditor();
  return true;
}

// ---- worker replies ----------------------------------------------------------------------

const loads = new Map(); // model name -> resolve

worker.onmessage = (event) => {
  const m = event.data;
  switch (m.type) {
    case 'ready':
    case 'backend':
      $('backend').textContent = m.backend + (m.reason ? ` (${m.reason})` : '');
      document.body.dataset.backend = m.backend;
      break;
    case 'manifest': onManifest(m.models); break;
    case 'progress': {
      const bar = $('progress');
      bar.hidden = false; bar.max = m.total; bar.value = Math.min(m.loaded, m.total);
      if (!quietLoad) status(`Downloading ${m.name}: ${(m.loaded / 1e6).toFixed(1)} of ${(m.total / 1e6).toFixed(1)} MB`);
      break;
    }
    case 'loaded': $('progress').hidden = true; resolveLoad(m.name, m); break;
    case 'images': {
      const handler = waiting.get(m.id);
      waiting.delete(m.id);
      if (handler && m.name === state.model) handler(m);
      finish(m.channel);
      break;
    }
    case 'latents': { const r = waiting.get(m.id); waiting.delete(m.id); r && r(m); break; }
    case 'memory': { const r = waiting.get(m.id); waiting.delete(m.id); r && r(m); break; }
    case 'error': onError(m); break;
  }
};

function resolveLoad(name, value) { const r = loads.get(name); loads.delete(name); r && r(value); }

function onError(m) {
  $('progress').hidden = true;
  if (m.scope === 'load') {
    status(`Model '${m.name}' cannot be used: ${m.message}`, true);
    const option = [...$('model').options].find((o) => o.value === m.name);
    if (option) { option.disabled = true; option.textContent = `${m.name} (unavailable)`; }
    resolveLoad(m.name, m);
  } else if (m.scope === 'generate') {
    status(`Generating failed: ${m.message}`, true);
    waiting.delete(m.id);
    finish(m.channel);
  } else {
    status(`${m.scope === 'manifest' ? 'Cannot list models' : 'Error'}: ${m.message}`, true);
  }
  document.body.dataset.error = m.message;
}

// Resolves with the worker's 'loaded' or 'error' reply for that model.
function loadModel(name) {
  return new Promise((resolve) => { loads.set(name, resolve); send({ type: 'load', name }); });
}

function onManifest(models) {
  state.models = models;
  const select = $('model');
  select.replaceChildren();
  for (const m of models) {
    const option = document.createElement('option');
    option.value = m.name; option.textContent = m.name;
    select.appendChild(option);
  }
  if (!models.length) { status('The manifest lists no models.', true); return; }
  const wanted = initial.model && models.some((m) => m.name === initial.model) ? initial.model : models[0].name;
  select.value = wanted;
  openFirstUsable(wanted);
}

// Opens the wanted model or, where it cannot be used, the next one that can; the reason the
// wanted one failed stays on the page.
async function openFirstUsable(wanted) {
  let opened = await switchModel(wanted);
  if (!opened) {
    const failure = $('status').textContent;
    for (const m of state.models) {
      if (m.name === wanted) continue;
      if (await switchModel(m.name, { quiet: true })) {
        status(`${failure}; showing '${m.name}' instead`, true);
        opened = true;
        break;
      }
    }
    if (!opened) status(`${failure}; no other model could be loaded either`, true);
  }
  document.body.dataset.opened = opened ? 'yes' : 'none';
}

// ---- start -------------------------------------------------------------------------------

const initial = parseUrl();
state.seed = initial.seed ?? 0;
state.cat = initial.cat ?? 0;
state.psi = initial.psi ?? 1;
state.edits = initial.edits;
if (initial.b !== null) { state.morphSeed = initial.b; state.morphT = initial.t ?? 0.5; }

buildGrid();
$('psi').value = String(state.psi);
$('morph').value = String(state.morphT);
$('morph').disabled = state.morphSeed === null;
$('play').disabled = state.morphSeed === null;

$('new').addEventListener('click', newCats);
$('model').addEventListener('change', () => switchModel($('model').value));
$('psi').addEventListener('input', () => { state.psi = Number($('psi').value); renderGrid(); renderEditor(); });
$('page').addEventListener('input', () => { state.page = Number($('page').value); buildSliders(); });
$('reset').addEventListener('click', () => { state.edits.clear(); state.psi = 1; $('psi').value = '1'; buildSliders(); renderGrid(); renderEditor(); });
$('morph').addEventListener('input', () => { state.morphT = Number($('morph').value); renderEditor(); });
$('morph-next').addEventListener('click', () => setMorphTarget((state.seed + ((state.cat + 1) % GRID)) >>> 0));
$('play').addEventListener('click', togglePlay);
$('download').addEventListener('click', download);
$('share').addEventListener('click', share);

// Exposed for the browser tests and the benchmark: wasm memory, and a way to wait for a frame.
window.catgan = {
  state,
  memory: async () => (await request('memory', {})).bytes,
  loseGpu: () => send({ type: 'lose-gpu' }),
};

send({ type: 'init', mode: initial.backend || 'auto', anyAdapter: initial.anyAdapter });
send({ type: 'manifest' });

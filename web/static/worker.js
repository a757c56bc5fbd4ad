// catgan's model worker: owns the wasm engine, downloads and checks weights, generates cats.
// The page talks to it only through messages, so it never freezes while models load or run.
//
// There are two builds of the engine (web/src/lib.rs): a small CPU-only one and a larger one
// that can also run on WebGPU. By default the worker starts the CPU engine, so the first cats
// need only the small download, and then, where the browser grants a hardware GPU adapter,
// loads the WebGPU engine in the background and moves the models over to it. A software adapter
// (SwiftShader, or any the browser marks as a fallback) is slower than the CPU engine, so the
// page stays on the CPU there. `#backend=cpu` and `#backend=webgpu` skip the choice.

const here = new URL('.', self.location.href);
const BUILDS = { cpu: 'catgan_cpu', gpu: 'catgan_gpu' };
const modules = {};           // build -> initialised engine module
let engine = null;            // the engine module in use
let manifest = null;          // parsed manifest (checked by the engine)
const weights = new Map();    // model name -> verified bytes, kept to move models between engines
let backend = '';
let upgrade = null;           // in auto mode: the pending move to WebGPU, started after the first cats

function post(message, transfer) { self.postMessage(message, transfer || []); }

async function loadBuild(build) {
  if (!modules[build]) {
    const module = await import(`./${BUILDS[build]}.js`);
    await module.default(new URL(`${BUILDS[build]}_bg.wasm`, here));
    modules[build] = module;
  }
  return modules[build];
}

// The WebGPU device the engine runs on, caught as the engine asks for it, so that losing it
// (a driver reset, the GPU process crashing, a laptop switching GPUs) is noticed at once and the
// page carries on on the CPU.
let gpuDevice = null;
if (self.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    gpuDevice = device;
    device.lost.then((info) => {
      if (gpuDevice !== device) return;
      gpuDevice = null;
      enqueue(() => fallBackToCpu(`the WebGPU device was lost: ${info.message || info.reason}`));
    });
    return device;
  };
}

/** Why WebGPU cannot be used, or null if an adapter is granted; `software` is set for one that
 * runs on the CPU. */
async function gpuAdapter() {
  if (!('gpu' in navigator) || !navigator.gpu) return { reason: 'this browser has no WebGPU' };
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { reason: 'no WebGPU adapter was granted' };
    const info = adapter.info || {};
    const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
    const software = info.isFallbackAdapter || adapter.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|software/i.test(name);
    return { reason: null, software, name: name || 'unnamed adapter' };
  } catch (e) {
    return { reason: `WebGPU adapter request failed (${e})` };
  }
}

/** Starts on the engine and backend chosen by `mode`: 'auto', 'cpu' or 'webgpu'. */
async function start(mode, anyAdapter) {
  if (mode === 'cpu') return startCpu('CPU requested');
  const adapter = await gpuAdapter();
  if (adapter.reason) return startCpu(adapter.reason);
  if (mode === 'webgpu') {
    try {
      engine = await loadBuild('gpu');
    } catch (e) {
      return startCpu(`the WebGPU engine did not load (${e.message || e})`);
    }
    backend = await engine.init(true);
    if (backend.startsWith('WebGPU')) return post({ type: 'ready', backend, reason: null });
    return startCpu('WebGPU device could not start');
  }
  if (adapter.software && !anyAdapter) {
    return startCpu(`the WebGPU adapter (${adapter.name}) runs in software; the CPU engine is faster`);
  }
  await startCpu('moving to WebGPU after the first cats');
  upgrade = moveToGpu;
}

async function startCpu(reason) {
  engine = await loadBuild('cpu');
  backend = await engine.init(false);
  post({ type: 'ready', backend, reason });
}

/** Loads the WebGPU engine and moves the loaded models over to it. */
async function moveToGpu() {
  let gpu;
  try {
    gpu = await loadBuild('gpu');
  } catch (e) {
    return post({ type: 'backend', backend, reason: `the WebGPU engine did not load (${e.message || e})` });
  }
  const started = await gpu.init(true);
  if (!started.startsWith('WebGPU')) {
    return post({ type: 'backend', backend, reason: 'WebGPU device could not start' });
  }
  const cpu = engine;
  engine = gpu;
  backend = started;
  try {
    for (const name of weights.keys()) await load(name);
  } catch (e) {
    engine = cpu;
    backend = await cpu.init(false);
    for (const name of weights.keys()) await load(name);
    return post({ type: 'backend', backend, reason: `WebGPU failed loading the models (${e.message || e})` });
  }
  await cpu.init(false); // drops the CPU engine's copies of the models
  post({ type: 'backend', backend, reason: null });
}

async function fetchManifest() {
  const url = new URL('assets/manifest.json', here);
  let response;
  try {
    response = await fetch(url, { cache: 'no-cache' });
  } catch (e) {
    throw new Error(`cannot fetch assets/manifest.json: ${e.message}`);
  }
  if (!response.ok) throw new Error(`assets/manifest.json: HTTP ${response.status}`);
  const text = await response.text();
  manifest = JSON.parse(engine.check_manifest(text));
  return manifest.models;
}

async function download(entry) {
  const url = new URL('assets/' + entry.file, here);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${entry.file}: HTTP ${response.status}`);
  const total = entry.bytes;
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    post({ type: 'progress', name: entry.name, loaded, total });
    if (loaded > total * 2 + 1024) break; // far too big: not our file; the check will say so
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) { bytes.set(chunk, offset); offset += chunk.length; }
  return bytes;
}

async function load(name) {
  if (engine.has_model(name)) return;
  const entry = manifest && manifest.models.find((m) => m.name === name);
  if (!entry) throw new Error(`no model named '${name}' in the manifest`);
  const bytes = weights.get(name) || await download(entry);
  engine.load_model(JSON.stringify(entry), bytes);
  weights.set(name, bytes);
}

async function fallBackToCpu(why) {
  if (!backend.startsWith('WebGPU')) return;
  gpuDevice = null;
  engine = await loadBuild('cpu');
  backend = await engine.init(false);
  for (const name of weights.keys()) await load(name);
  post({ type: 'backend', backend, reason: why });
}

async function generate(message) {
  const started = performance.now();
  let pixels;
  try {
    pixels = await engine.generate(message.name, message.latents, message.stage);
  } catch (e) {
    if (!backend.startsWith('WebGPU')) throw e;
    await fallBackToCpu(`WebGPU failed during generation (${e.message || e})`);
    pixels = await engine.generate(message.name, message.latents, message.stage);
  }
  const entry = manifest.models.find((m) => m.name === message.name);
  const growing = entry.arch === 'progan' && Number.isInteger(message.stage);
  post({
    type: 'images', id: message.id, channel: message.channel, name: message.name,
    count: message.latents.length / (entry.latent_size + (entry.noise_size || 0)),
    side: growing ? 4 << message.stage : entry.resolution,
    pixels, ms: performance.now() - started,
  }, [pixels.buffer]);
}

// Messages (and a lost device's fallback) are handled one at a time, in order.
let queue = Promise.resolve();
function enqueue(task) { queue = queue.then(task); }

self.onmessage = (event) => {
  const message = event.data;
  enqueue(async () => {
    try {
      switch (message.type) {
        case 'init': await start(message.mode, message.anyAdapter); break;
        case 'manifest': post({ type: 'manifest', models: await fetchManifest() }); break;
        case 'load': await load(message.name); post({ type: 'loaded', name: message.name }); break;
        case 'generate':
          await generate(message);
          if (upgrade) { const move = upgrade; upgrade = null; enqueue(move); }
          break;
        case 'latents': {
          const latents = message.seeds.map((s) => Array.from(engine.latent(s, message.size)));
          post({ type: 'latents', id: message.id, latents });
          break;
        }
        case 'memory': post({ type: 'memory', id: message.id, bytes: engine.memory_bytes() }); break;
        // Used by the browser tests: destroys the WebGPU device, as a driver reset would.
        case 'lose-gpu': gpuDevice?.destroy(); break;
        default: throw new Error(`unknown message ${message.type}`);
      }
    } catch (e) {
      post({ type: 'error', scope: message.type, name: message.name, id: message.id,
             channel: message.channel, message: String(e && e.message ? e.message : e) });
    }
  });
};

// catgan's DCGAN generator rebuilt in TF.js from `catgan tensors` output (f32 safetensors), in
// inference mode (batch norm with its running statistics), so that the benchmark compares TF.js
// and catgan on the very same weights. Draws a first grid of 16 cats like catgan's page, then
// exposes `window.tfbench` to the driver (bench/browser.mjs).
/* global tf */

const GRID = 16;
const BN_EPSILON = 1e-5;
const params = new URLSearchParams(location.hash.slice(1));
const backend = params.get('backend') || 'webgl';
const $ = (id) => document.getElementById(id);

// ---- the latent for a seed: model/src/latent.rs and rng.rs, in JavaScript -------------------

const MASK = (1n << 64n) - 1n;

/** SplitMix64 over BigInt, wrapping at 64 bits like the Rust original. */
function splitmix(seed) {
  let state = BigInt(seed) & MASK;
  const next = () => {
    state = (state + 0x9E3779B97F4A7C15n) & MASK;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & MASK;
    z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & MASK;
    return z ^ (z >> 31n);
  };
  return { uniform: () => Number(next() >> 11n) * 2 ** -53 };
}

/** The first `size` normal deviates (Box-Muller) for `seed`, rounded to f32 like catgan's. */
export function latent(seed, size) {
  const rng = splitmix(seed);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i += 2) {
    const u1 = 1 - rng.uniform();
    const u2 = rng.uniform();
    const radius = Math.sqrt(-2 * Math.log(u1));
    const angle = 2 * Math.PI * u2;
    out[i] = radius * Math.cos(angle);
    if (i + 1 < size) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

// ---- weights --------------------------------------------------------------------------------

/** Tensors of a safetensors file (f32 only): name -> { shape, data }. */
function readSafetensors(buffer) {
  const view = new DataView(buffer);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, headerLength)));
  const start = 8 + headerLength;
  const tensors = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (info.dtype !== 'F32') throw new Error(`${name}: dtype ${info.dtype}, expected F32`);
    const [begin, end] = info.data_offsets;
    tensors[name] = { shape: info.shape, data: new Float32Array(buffer.slice(start + begin, start + end)) };
  }
  return tensors;
}

/** The generator's layers as TF.js tensors; transposed convolutions become NHWC filters. */
function buildGenerator(tensors) {
  const get = (name) => {
    if (!tensors[name]) throw new Error(`the weights have no tensor ${name}`);
    return tensors[name];
  };
  // Only tfjs-core's functions are used: its bundle has no chained methods (x.add(...)).
  // Burn (like PyTorch) stores a transposed convolution as [in, out, kh, kw]; TF.js wants
  // [kh, kw, out, in].
  const filter = ({ shape, data }) => tf.tidy(() => tf.transpose(tf.tensor4d(data, shape), [2, 3, 1, 0]));
  const vector = (name) => tf.tensor1d(get(name).data);
  const blocks = [];
  for (let i = 0; tensors[`Dcgan.blocks.${i}.conv.weight`]; i++) {
    const p = `Dcgan.blocks.${i}`;
    const weight = get(`${p}.conv.weight`);
    blocks.push({
      filter: filter(weight), channels: weight.shape[1],
      mean: vector(`${p}.norm.running_mean`), variance: vector(`${p}.norm.running_var`),
      gamma: vector(`${p}.norm.gamma`), beta: vector(`${p}.norm.beta`),
    });
  }
  const rgb = get('Dcgan.to_rgb.weight');
  return {
    latentSize: get('Dcgan.blocks.0.conv.weight').shape[0],
    blocks, toRgb: filter(rgb), rgbBias: vector('Dcgan.to_rgb.bias'),
  };
}

/** Latents [n, latentSize] to RGBA bytes [n, side, side, 4], rounded as catgan's page does. */
function forward(model, latents) {
  return tf.tidy(() => {
    const n = latents.shape[0];
    let x = tf.reshape(latents, [n, 1, 1, model.latentSize]);
    model.blocks.forEach((b, i) => {
      // The first layer maps 1x1 to 4x4 (stride 1, no padding); the others double the side
      // with stride 2, padding 1, which TF's 'same' gives for a 4x4 kernel.
      const side = i === 0 ? 4 : x.shape[1] * 2;
      x = tf.conv2dTranspose(x, b.filter, [n, side, side, b.channels], i === 0 ? 1 : 2,
        i === 0 ? 'valid' : 'same');
      x = tf.relu(tf.batchNorm(x, b.mean, b.variance, b.beta, b.gamma, BN_EPSILON));
    });
    const side = x.shape[1] * 2;
    x = tf.tanh(tf.add(tf.conv2dTranspose(x, model.toRgb, [n, side, side, 3], 2, 'same'), model.rgbBias));
    // catgan: round((clamp(v, -1, 1) + 1) * 127.5), halves rounded up.
    const rgb = tf.floor(tf.add(tf.mul(tf.add(tf.clipByValue(x, -1, 1), 1), 127.5), 0.5));
    return tf.cast(tf.concat([rgb, tf.fill([n, side, side, 1], 255)], 3), 'int32');
  });
}

// ---- start ----------------------------------------------------------------------------------

async function setUpBackend() {
  if (backend === 'wasm') {
    tf.wasm.setWasmPaths(new URL('../npm/@tensorflow/tfjs-backend-wasm/dist/', location.href).href);
    if (params.get('threads')) tf.wasm.setThreadsCount(Number(params.get('threads')));
  }
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend '${backend}' did not start`);
  await tf.ready();
  let detail = '';
  if (backend === 'wasm') {
    const threads = tf.wasm.getThreadsCount();
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const multithread = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    const build = multithread ? 'threaded SIMD build' : simd ? 'SIMD build' : 'plain build';
    detail = ` (${build}, ${threads} thread${threads === 1 ? '' : 's'})`;
  }
  return `${tf.getBackend()}${detail}`;
}

function draw(canvas, rgba, index, side) {
  const size = side * side * 4;
  const pixels = Uint8ClampedArray.from(rgba.subarray(index * size, (index + 1) * size));
  canvas.getContext('2d').putImageData(new ImageData(pixels, side, side), 0, 0);
}

async function main() {
  const description = await setUpBackend();
  $('backend').textContent = description;
  document.body.dataset.backend = description;

  const response = await fetch('../work/dcgan.safetensors');
  if (!response.ok) throw new Error(`dcgan.safetensors: HTTP ${response.status}`);
  const model = buildGenerator(readSafetensors(await response.arrayBuffer()));

  // Times one call from latents to RGBA bytes read back on the page, like catgan's worker.
  const generate = async (seeds) => {
    const values = new Float32Array(seeds.length * model.latentSize);
    seeds.forEach((s, i) => values.set(latent(s, model.latentSize), i * model.latentSize));
    const started = performance.now();
    const input = tf.tensor2d(values, [seeds.length, model.latentSize]);
    const output = forward(model, input);
    const rgba = await output.data();
    input.dispose();
    output.dispose();
    return { ms: performance.now() - started, rgba };
  };

  const grid = $('grid');
  const cells = Array.from({ length: GRID }, () => {
    const c = document.createElement('canvas');
    c.width = c.height = 64;
    return grid.appendChild(c);
  });
  const first = await generate(Array.from({ length: GRID }, (_, i) => i));
  cells.forEach((c, i) => draw(c, first.rgba, i, 64));
  document.body.dataset.firstCatMs = performance.now().toFixed(0);
  document.body.dataset.gridMs = first.ms.toFixed(1);
  $('status').textContent = `${GRID} cats in ${first.ms.toFixed(0)} ms`;

  window.tfbench = {
    backend: description,
    latent: (seed) => Array.from(latent(seed, model.latentSize)),
    time: async (seeds) => (await generate(seeds)).ms,
    pixels: async (seed) => Array.from((await generate([seed])).rgba),
    memory: () => tf.memory(),
  };
  document.body.dataset.ready = '1';
}

main().catch((e) => {
  document.body.dataset.error = String(e && e.message ? e.message : e);
  $('status').textContent = `failed: ${document.body.dataset.error}`;
});

// Headless-Chromium half of scripts/bench: catgan's page (the built site) against a TF.js page
// that runs the same DCGAN weights (bench/tfjs), on every backend both offer. Serves both on
// 127.0.0.1 only, and writes one JSON file per mode into the results folder.
//
//   node bench/browser.mjs --results DIR [--modes page,payload,memory] [--repeats N] [--moves N]
//
// page:    ms per grid of 16 and per single cat, after warm-up; TF.js output checked against
//          `catgan sample` and its latents against the wasm engine's.
// payload: bytes served before the first cats (raw and gzip), navigation to first cats.
// memory:  the page's wasm memory after load and every 100 slider moves (CPU path).
// Environment: SITE (built site), CATGAN (native binary), CHROMIUM, BENCH_NPM (node_modules with
// playwright-core and TF.js), BENCH_WORK (weights exported by `catgan tensors`, native samples).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

const root = path.resolve(import.meta.dirname, '..');
const SITE = path.resolve(process.env.SITE || path.join(root, 'target/site'));
const CATGAN = process.env.CATGAN || path.join(root, 'target/release/catgan');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const NPM = path.resolve(process.env.BENCH_NPM || path.join(root, 'target/bench/npm/node_modules'));
const WORK = path.resolve(process.env.BENCH_WORK || path.join(root, 'target/bench/work'));
const { chromium } = createRequire(path.join(NPM, 'x.js'))('playwright-core');

const { values: options } = parseArgs({
  options: {
    results: { type: 'string' },
    modes: { type: 'string', default: 'page,payload,memory' },
    repeats: { type: 'string', default: '5' },
    moves: { type: 'string', default: '1000' },
    only: { type: 'string', default: '' }, // run only the visits whose label contains this
  },
});
if (!options.results) throw new Error('--results DIR is required');
const modes = new Set(options.modes.split(','));
const REPEATS = Number(options.repeats);
const MOVES = Number(options.moves);
const TIMEOUT = 600_000;
// Seeds whose TF.js cats are compared pixel by pixel with `catgan sample`.
const CHECK_SEEDS = [0, 7, 4242];

// ---- a static server that counts what each page downloads ------------------------------------

const mounts = { site: SITE, tfjs: path.join(root, 'bench/tfjs'), npm: NPM, work: WORK };
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png' };
let served = [];

const server = http.createServer((req, res) => {
  const [, mount, ...rest] = decodeURIComponent(new URL(req.url, 'http://x').pathname).split('/');
  const base = mounts[mount];
  const file = base && path.join(base, rest.join('/') || 'index.html');
  if (!base || !file.startsWith(base + path.sep) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404); res.end(); return;
  }
  const body = fs.readFileSync(file);
  const headers = { 'content-type': types[path.extname(file)] || 'application/octet-stream' };
  // The TF.js page is cross-origin isolated so that its wasm backend may use threads; catgan's
  // page is served as it would be anywhere.
  if (mount !== 'site') {
    headers['cross-origin-opener-policy'] = 'same-origin';
    headers['cross-origin-embedder-policy'] = 'require-corp';
  }
  res.writeHead(200, headers);
  res.end(body);
  served.push({ file, url: `${mount}/${rest.join('/')}`, bytes: body.length });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;

const gzipCache = new Map();
function gzipSize(file) {
  if (!gzipCache.has(file)) gzipCache.set(file, zlib.gzipSync(fs.readFileSync(file), { level: 9 }).length);
  return gzipCache.get(file);
}

function summarise(requests) {
  const files = requests.map((r) => ({ url: r.url, raw: r.bytes, gzip: gzipSize(r.file) }));
  const sum = (key) => files.reduce((t, f) => t + f[key], 0);
  return { files, raw: sum('raw'), gzip: sum('gzip') };
}

// ---- browsers --------------------------------------------------------------------------------

const BASE_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic', '--enable-precise-memory-info'];
// Headless Chromium here has no GPU: WebGPU and WebGL both run on SwiftShader (software).
const FLAGS = {
  webgpu: ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'],
  webgl: ['--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
  cpu: ['--disable-gpu'],
};

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), samples: xs.map((x) => +x.toFixed(1)) });
const data = (page, key) => page.evaluate((k) => document.body.dataset[k], key);
const until = (page, key, n) => page.waitForFunction(([k, v]) => Number(document.body.dataset[k] || 0) >= v,
  [key, n], { timeout: TIMEOUT });

/** Opens `url` in a fresh browser, waits for the first cats, then runs `measure(page)`. */
async function visit(label, url, flags, measure) {
  if (!label.includes(options.only)) return { label, skipped: true };
  console.error(`  ${label}`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...flags] });
  // A stack that fails on a backend is reported as such; the other measurements go on.
  try {
    const page = await (await browser.newContext()).newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    served = [];
    await page.goto(origin + url);
    await page.waitForFunction(() => document.body.dataset.firstCatMs || document.body.dataset.error,
      null, { timeout: TIMEOUT });
    const download = summarise(served);
    const error = await data(page, 'error');
    if (error) throw new Error(`${label}: the page reports: ${error}`);
    const result = {
      label, url, backend: await data(page, 'backend'),
      navigation_to_first_cats_ms: Number(await data(page, 'firstCatMs')), download,
      ...(await measure(page)),
    };
    if (errors.length) result.page_errors = errors;
    return result;
  } catch (e) {
    console.error(`    failed: ${e.message}`);
    return { label, url, error: String(e.message).split('\n')[0] };
  } finally {
    await browser.close();
  }
}

// ---- catgan's page ---------------------------------------------------------------------------

async function catganTimings(page) {
  await until(page, 'editorDrawn', 1);
  // One cat: the editor redraws on each slider step (right, then left, so it always changes).
  await page.focus('#sliders input');
  const one = [];
  for (let i = 0; i < REPEATS + 2; i++) {
    const n = Number(await data(page, 'editorDrawn'));
    await page.keyboard.press(i % 2 ? 'ArrowLeft' : 'ArrowRight');
    await until(page, 'editorDrawn', n + 1);
    one.push(Number(await data(page, 'editorMs')));
  }
  const grid = [];
  for (let i = 0; i < REPEATS; i++) {
    const n = Number(await data(page, 'gridDrawn'));
    await page.click('#new');
    await until(page, 'gridDrawn', n + 1);
    grid.push(Number(await data(page, 'gridMs')));
  }
  return { one_cat_ms: stats(one.slice(2)), grid_of_16_ms: stats(grid) };
}

async function catganMemory(page) {
  await until(page, 'editorDrawn', 1);
  // The JS heap is read after a forced collection, so it counts what is still referenced.
  const devtools = await page.context().newCDPSession(page);
  const sample = async (moves) => {
    await devtools.send('HeapProfiler.collectGarbage');
    return {
      moves,
      wasm_bytes: await page.evaluate(() => window.catgan.memory()),
      js_heap_bytes: await page.evaluate(() => performance.memory.usedJSHeapSize),
    };
  };
  const samples = [await sample(0)];
  await page.focus('#sliders input');
  for (let i = 1; i <= MOVES; i++) {
    const n = Number(await data(page, 'editorDrawn'));
    await page.keyboard.press(i % 2 ? 'ArrowRight' : 'ArrowLeft');
    await until(page, 'editorDrawn', n + 1);
    if (i % 100 === 0 || i === MOVES) samples.push(await sample(i));
  }
  const [first, last] = [samples[0], samples.at(-1)];
  return {
    moves: MOVES, samples,
    wasm_bytes_after_load: first.wasm_bytes, wasm_bytes_after_moves: last.wasm_bytes,
    wasm_growth_bytes: last.wasm_bytes - first.wasm_bytes,
  };
}

// ---- the TF.js page --------------------------------------------------------------------------

async function tfjsTimings(page) {
  await page.waitForFunction(() => window.tfbench, null, { timeout: TIMEOUT });
  return page.evaluate(async (repeats) => {
    const seeds = (first, n) => Array.from({ length: n }, (_, i) => first + i);
    const one = [];
    for (let i = 0; i < repeats + 2; i++) one.push(await window.tfbench.time([1000 + i]));
    const grid = [];
    for (let i = 0; i < repeats; i++) grid.push(await window.tfbench.time(seeds(100 + 16 * i, 16)));
    const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
    const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), samples: xs.map((x) => +x.toFixed(1)) });
    return { one_cat_ms: stats(one.slice(2)), grid_of_16_ms: stats(grid) };
  }, REPEATS);
}

// ---- agreement with `catgan sample` -----------------------------------------------------------

/** RGBA pixels of the native sample for `seed`, decoded by the page. */
const nativePixels = (page, seed) => page.evaluate(async (s) => {
  const bitmap = await createImageBitmap(await (await fetch(`/work/native-${s}.png`)).blob());
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d');
  context.drawImage(bitmap, 0, 0);
  return Array.from(context.getImageData(0, 0, bitmap.width, bitmap.height).data);
}, seed);

/** Largest and mean per-channel difference (0-255, alpha left out) over the check seeds. */
async function agreement(page, shownPixels) {
  const seeds = [];
  for (const seed of CHECK_SEEDS) {
    const [native, shown] = [await nativePixels(page, seed), await shownPixels(seed)];
    if (native.length !== shown.length) throw new Error(`seed ${seed}: image sizes differ`);
    let max = 0; let total = 0;
    native.forEach((v, i) => {
      if (i % 4 === 3) return;
      const d = Math.abs(v - shown[i]);
      max = Math.max(max, d); total += d;
    });
    seeds.push({ seed, max_diff: max, mean_diff: total / (native.length * 0.75) });
  }
  return { seeds, max_diff: Math.max(...seeds.map((s) => s.max_diff)) };
}

/** The cat catgan's page draws in its editor for each check seed, each in a fresh tab. */
const catganAgreement = (page, hash) => agreement(page, async (seed) => {
  const tab = await page.context().newPage();
  await tab.goto(`${origin}/site/index.html${hash}&seed=${seed}&cat=0`);
  await until(tab, 'editorDrawn', 1);
  const pixels = await tab.evaluate(() =>
    Array.from(document.getElementById('editor').getContext('2d').getImageData(0, 0, 64, 64).data));
  await tab.close();
  return pixels;
});

const tfjsAgreement = (page) => agreement(page, (seed) => page.evaluate((s) => window.tfbench.pixels(s), seed));

/** Checks the JavaScript latent against the one the wasm engine computes (model/src/latent.rs). */
async function latentAgreement(page) {
  return page.evaluate(async (seeds) => {
    const engine = await import('../site/catgan_cpu.js');
    await engine.default(new URL('../site/catgan_cpu_bg.wasm', location.href));
    let differing = 0; let max = 0; let compared = 0;
    for (const seed of seeds) {
      const a = engine.latent(seed, 128);
      const b = window.tfbench.latent(seed);
      for (let i = 0; i < 128; i++) {
        if (a[i] !== b[i]) differing++;
        max = Math.max(max, Math.abs(a[i] - b[i]));
        compared++;
      }
    }
    return { compared, differing, max_abs_diff: max };
  }, [...CHECK_SEEDS, ...Array.from({ length: 97 }, (_, i) => 1000 + i)]);
}

async function gpuAdapter(page) {
  return page.evaluate(async () => {
    const adapter = navigator.gpu && await navigator.gpu.requestAdapter();
    if (!adapter) return null;
    const info = adapter.info || {};
    return { vendor: info.vendor, architecture: info.architecture, description: info.description };
  });
}

// ---- runs ------------------------------------------------------------------------------------

function nativeSamples() {
  for (const seed of CHECK_SEEDS) {
    const out = path.join(WORK, `native-${seed}.png`);
    execFileSync(CATGAN, ['sample', '--model', 'dcgan', '--seed', String(seed), '--count', '1',
      '--device', 'cpu', '--assets', path.join(SITE, 'assets'), '--out', out], { stdio: 'ignore' });
  }
}

const chromiumVersion = execFileSync(CHROMIUM, ['--version']).toString().trim();
const timing = modes.has('page');
const pageResults = [];
if (timing || modes.has('payload')) {
  if (timing) nativeSamples();
  console.error('catgan page');
  // 'auto' is the page as visitors get it: it starts on the small CPU engine and moves to the
  // WebGPU engine only on a hardware adapter, so here (SwiftShader) it measures the download
  // before the first cats; the other two force one engine and are timed.
  const catgan = [['auto', 'webgpu', '#model=dcgan'], ['webgpu', 'webgpu', '#model=dcgan&backend=webgpu'],
    ['cpu', 'cpu', '#model=dcgan&backend=cpu']];
  for (const [name, flags, hash] of catgan) {
    const timed = timing && name !== 'auto';
    pageResults.push({ stack: 'catgan', path: name, ...await visit(`catgan ${name}`,
      `/site/index.html${hash}`, FLAGS[flags], async (page) => ({
        ...(timed ? await catganTimings(page) : {}),
        ...(timed ? { agreement: await catganAgreement(page, hash) } : {}),
        ...(name === 'webgpu' ? { adapter: await gpuAdapter(page) } : {}),
      })) });
  }
  console.error('TF.js page');
  // tfjs-backend-wasm runs its threaded SIMD build, but sizes the thread pool from
  // navigator.hardwareConcurrency / 2: one thread on a two-core machine, whatever setThreadsCount
  // asks. It is measured as it comes.
  const tfjs = [['webgpu', 'webgpu'], ['webgl', 'webgl'], ['wasm', 'cpu'], ['cpu', 'cpu']];
  for (const [backend, flags] of tfjs) {
    pageResults.push({ stack: 'tfjs', path: backend, ...await visit(`tfjs ${backend}`,
      `/tfjs/index.html#backend=${backend}`, FLAGS[flags], async (page) => ({
        ...(timing ? await tfjsTimings(page) : {}),
        ...(timing ? { agreement: await tfjsAgreement(page) } : {}),
        ...(timing && backend === 'cpu' ? { latent_agreement: await latentAgreement(page) } : {}),
      })) });
  }
}

const write = (name, value) => fs.writeFileSync(path.join(options.results, `${name}.json`),
  JSON.stringify({ chromium: chromiumVersion, command: `node bench/browser.mjs ${process.argv.slice(2).join(' ')}`,
    ...value }, null, 1));
if (timing) write('page', { repeats: REPEATS, pages: pageResults });
if (modes.has('payload')) {
  // What a TF.js page built on the one-file bundle (tf.min.js: core, cpu, webgl, layers,
  // converter) would download, for comparison with the per-backend minimum measured above.
  const full = ['@tensorflow/tfjs/dist/tf.es2017.min.js'].map((f) => path.join(NPM, f));
  const weights = path.join(WORK, 'dcgan.safetensors');
  const fullBundle = summarise([...full, weights].map((file) => ({
    file, url: path.relative(root, file), bytes: fs.statSync(file).size })));
  write('payload', {
    pages: pageResults.map(({ stack, path: p, label, backend, navigation_to_first_cats_ms, download }) =>
      ({ stack, path: p, label, backend, navigation_to_first_cats_ms, download })),
    tfjs_full_bundle_webgl: fullBundle,
  });
}
if (modes.has('memory')) {
  console.error('catgan page memory');
  write('memory', await visit(`catgan cpu, ${MOVES} slider moves`, '/site/index.html#model=dcgan&backend=cpu',
    FLAGS.cpu, catganMemory));
}
server.close();

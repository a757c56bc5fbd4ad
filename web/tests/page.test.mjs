// Headless Chromium tests of the catgan page, against a site built by scripts/build-web.
// Environment: SITE (the built site folder), CATGAN (the native binary), CHROMIUM (browser).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '../..');
const SITE = process.env.SITE || path.join(root, 'target/site');
const CATGAN = process.env.CATGAN || path.join(root, 'target/release/catgan');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'catgan-page-'));

const types = {
  '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.wasm': 'application/wasm', '.png': 'image/png', '.bpk': 'application/octet-stream',
};

// Each scenario is a URL prefix, so the site is also exercised under sub-paths.
function scenario(name, file, body) {
  const manifest = () => JSON.parse(fs.readFileSync(path.join(SITE, 'assets/manifest.json')));
  if (name === 'missing-manifest' && file === 'assets/manifest.json') return null;
  if (name === 'no-gpu-engine' && file === 'catgan_gpu_bg.wasm') return null;
  if (name === 'bad-sha' && file === 'assets/manifest.json') {
    const m = manifest(); m.models[0].sha256 = '0'.repeat(64); return JSON.stringify(m);
  }
  if (name === 'other-arch' && file === 'assets/manifest.json') {
    // The first model's entry points at another architecture's weights (their true size and
    // checksum, so only the architecture check can catch it).
    const m = manifest(); const other = m.models.find((e) => e.arch !== m.models[0].arch);
    Object.assign(m.models[0], { file: other.file, bytes: other.bytes, sha256: other.sha256 });
    return JSON.stringify(m);
  }
  if (name === 'wrong-version' && file === 'assets/manifest.json') {
    const m = manifest(); m.models[0].format_version = 99; return JSON.stringify(m);
  }
  if (name === 'html-weights' && file.endsWith('.bpk')) return fs.readFileSync(path.join(SITE, 'index.html'));
  if (name === 'truncated' && file.endsWith('.bpk')) return body.subarray(0, body.length >> 1);
  return body;
}

let server, base, browser, gpuBrowser;
const requests = []; // every path asked of the server, as 'scenario/file'

before(async () => {
  for (const engine of ['catgan_cpu_bg.wasm', 'catgan_gpu_bg.wasm']) {
    assert.ok(fs.existsSync(path.join(SITE, engine)), `no built site in ${SITE}; run scripts/build-web ${SITE}`);
  }
  server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const [, name, ...rest] = url.pathname.split('/');
    const file = rest.join('/') || 'index.html';
    requests.push(`${name}/${file}`);
    const source = name === 'scratch' ? path.join(scratch, file) : path.join(SITE, file);
    if (!source.startsWith(name === 'scratch' ? scratch : SITE) || !fs.existsSync(source)) {
      res.writeHead(404, { 'content-type': 'text/html' }); res.end('<!doctype html><h1>Not found</h1>'); return;
    }
    const body = scenario(name, file, fs.readFileSync(source));
    if (body === null) { res.writeHead(404); res.end('<html>not found</html>'); return; }
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
    res.end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
  const args = ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic'];
  browser = await chromium.launch({ executablePath: CHROMIUM, args: [...args, '--disable-gpu'] });
  gpuBrowser = await chromium.launch({ executablePath: CHROMIUM,
    args: [...args, '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'] });
});

after(async () => {
  await browser?.close();
  await gpuBrowser?.close();
  server?.close();
});

async function open(url, { gpu = false } = {}) {
  const page = await (gpu ? gpuBrowser : browser).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); d.dismiss(); });
  await page.goto(`${base}/${url}`);
  return { page, errors };
}

const drawn = (page, what, n = 1) =>
  page.waitForFunction(([w, k]) => Number(document.body.dataset[w] || 0) >= k, [what, n], { timeout: 180_000 });

// Pixels of a canvas (RGBA) by selector, or of every grid canvas.
const pixels = (page, selector) => page.evaluate((sel) => [...document.querySelectorAll(sel)].map((c) =>
  Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)), selector);

function stats(rgba) {
  const values = rgba.filter((_, i) => i % 4 !== 3);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
  return { mean, sd };
}

// RGBA pixels of a PNG in the scratch folder, decoded by the page.
const png = (page, name) => page.evaluate(async (src) => {
  const img = new Image(); img.src = src; await img.decode();
  const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
  const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
  return { width: img.width, data: Array.from(ctx.getImageData(0, 0, c.width, c.height).data) };
}, `${base}/scratch/${name}`).then((r) => Object.assign(r.data, { width: r.width }));

// Shipped models, in manifest order.
const models = () => {
  const file = path.join(SITE, 'assets/manifest.json');
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file)).models.map((m) => m.name) : ['(no site built)'];
};

// Largest per-channel difference (0-255) accepted between the page and `catgan sample`.
const TOLERANCE = 3;

const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

// The core behaviour on both paths: a browser with WebGPU (SwiftShader) and one without.
// The WebGPU path is asked for (#backend=webgpu): by default the page stays on its CPU engine on
// a software adapter such as this SwiftShader. The CPU path is the default page in a browser
// without WebGPU.
for (const path_ of [{ name: 'WebGPU', gpu: true, backend: /^WebGPU/, hash: 'backend=webgpu&' },
                     { name: 'CPU fallback', gpu: false, backend: /^CPU/, hash: '' }]) {
  test(`${path_.name}: the page reports its backend and draws sixteen different cats`, async (t) => {
    const { page, errors } = await open(`ok/index.html#${path_.hash}seed=11`, { gpu: path_.gpu });
    await drawn(page, 'gridDrawn');
    const backend = await page.textContent('#backend');
    t.diagnostic(`backend: ${backend}`);
    assert.match(backend, path_.backend);
    // Without WebGPU (or without an adapter) the page says why it runs on the CPU.
    if (!path_.gpu) assert.match(backend, /\((this browser has no WebGPU|no WebGPU adapter was granted|WebGPU device could not start)/);
    const cells = await pixels(page, '#grid canvas');
    assert.equal(cells.length, 16);
    for (const cell of cells) assert.ok(stats(cell).sd > 10, 'a cell is nearly flat');
    assert.ok(maxDiff(cells[0], cells[1]) > 50, 'two cells are the same image');
    assert.deepEqual(errors, []);
    await page.close();
  });

  // Every shipped model, selected through the share link, draws the native cat.
  for (const model of models()) {
    test(`${path_.name}: ${model} draws the cat \`catgan sample\` draws for the same seed`, async (t) => {
      const native = path.join(scratch, `native-${model}.png`);
      execFileSync(CATGAN, ['sample', '--model', model, '--seed', '4242', '--count', '1', '--device', 'cpu',
        '--assets', path.join(SITE, 'assets'), '--out', native], { stdio: 'ignore' });
      const { page, errors } = await open(`ok/index.html#${path_.hash}model=${model}&seed=4242&cat=0`, { gpu: path_.gpu });
      await drawn(page, 'editorDrawn');
      assert.match(await page.textContent('#backend'), path_.backend);
      assert.equal(await page.inputValue('#model'), model);
      const [shown] = await pixels(page, '#editor');
      const expected = await png(page, `native-${model}.png`);
      assert.equal(shown.length, expected.length);
      // Same code, weights and latent; only float rounding differs between backends.
      const worst = maxDiff(shown, expected);
      t.diagnostic(`largest pixel difference from native: ${worst}/255`);
      assert.ok(worst <= TOLERANCE, `pixels differ by ${worst}`);
      assert.deepEqual(errors, []);
      await page.close();
    });
  }

  test(`${path_.name}: moving a slider changes the cat`, async () => {
    const { page, errors } = await open(`ok/index.html#${path_.hash}seed=3`, { gpu: path_.gpu });
    await drawn(page, 'editorDrawn');
    await page.waitForTimeout(300);
    const [before] = await pixels(page, '#editor');
    const count = await page.evaluate(() => Number(document.body.dataset.editorDrawn));
    await page.focus('#sliders input');
    await page.keyboard.press('End'); // the slider's maximum, +3 along its direction
    await drawn(page, 'editorDrawn', count + 1);
    await page.waitForTimeout(1500);
    const [after] = await pixels(page, '#editor');
    const moved = await page.evaluate(() => catgan.state.edits.get(0));
    assert.equal(moved, 3);
    assert.ok(maxDiff(before, after) > 20, `the slider changed pixels by ${maxDiff(before, after)} only`);
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test('a WebGPU device lost in the middle of use: the page carries on on the CPU and says so', async () => {
  const { page, errors } = await open('ok/index.html#backend=webgpu&seed=5', { gpu: true });
  await drawn(page, 'gridDrawn');
  assert.match(await page.textContent('#backend'), /^WebGPU/);
  const count = await page.evaluate(() => Number(document.body.dataset.gridDrawn));
  await page.evaluate(() => catgan.loseGpu());
  await page.waitForFunction(() => document.body.dataset.backend.startsWith('CPU'), null, { timeout: 60_000 });
  assert.match(await page.textContent('#backend'), /WebGPU device was lost/);
  // The same cats, now drawn on the CPU.
  const [before] = await pixels(page, '#grid canvas');
  await page.click('#new');
  await page.click('#new');
  await drawn(page, 'gridDrawn', count + 1);
  await page.waitForTimeout(1500);
  const cells = await pixels(page, '#grid canvas');
  for (const cell of cells) assert.ok(stats(cell).sd > 10, 'a cell is nearly flat');
  assert.ok(maxDiff(before, cells[0]) > 20, 'the grid was not redrawn');
  assert.deepEqual(errors, []);
  await page.close();
});

// Which engines a scenario's page fetched, in order.
const engines = (scenario) => requests.filter((r) => r.startsWith(`${scenario}/`) && r.endsWith('_bg.wasm'))
  .map((r) => r.slice(scenario.length + 1));

test('by default a software WebGPU adapter is passed over: the first cats need only the CPU engine', async () => {
  const { page, errors } = await open('auto-software/index.html#seed=8', { gpu: true });
  await drawn(page, 'gridDrawn');
  await drawn(page, 'editorDrawn');
  await page.waitForTimeout(1500); // time enough to start fetching the WebGPU engine, were it wanted
  const backend = await page.textContent('#backend');
  assert.match(backend, /^CPU \(wasm\) \(the WebGPU adapter \(.*swiftshader.*\) runs in software/i);
  assert.deepEqual(engines('auto-software'), ['catgan_cpu_bg.wasm']);
  for (const cell of await pixels(page, '#grid canvas')) assert.ok(stats(cell).sd > 10, 'a cell is nearly flat');
  assert.deepEqual(errors, []);
  await page.close();
});

test('on a usable GPU adapter the page draws its first cats on the CPU, then moves to WebGPU', async () => {
  // #gpu=any treats this software adapter as a hardware one, to exercise the move.
  const { page, errors } = await open('auto-move/index.html#gpu=any&seed=8&cat=2', { gpu: true });
  await drawn(page, 'editorDrawn');
  const onCpu = (await pixels(page, '#editor'))[0];
  await page.waitForFunction(() => document.body.dataset.backend.startsWith('WebGPU'), null, { timeout: 120_000 });
  assert.deepEqual(engines('auto-move'), ['catgan_cpu_bg.wasm', 'catgan_gpu_bg.wasm']);
  assert.equal(await page.textContent('#backend'), 'WebGPU');
  // The same cat, redrawn by the WebGPU engine, agrees with the CPU engine's.
  const count = await page.evaluate(() => Number(document.body.dataset.editorDrawn));
  await page.focus('#sliders input');
  await page.keyboard.press('ArrowRight');
  await drawn(page, 'editorDrawn', count + 1);
  await page.keyboard.press('ArrowLeft');
  await drawn(page, 'editorDrawn', count + 2);
  const onGpu = (await pixels(page, '#editor'))[0];
  assert.ok(maxDiff(onCpu, onGpu) <= TOLERANCE, `CPU and WebGPU differ by ${maxDiff(onCpu, onGpu)}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a WebGPU engine that fails to download leaves the page on the CPU, saying why', async () => {
  const { page, errors } = await open('no-gpu-engine/index.html#gpu=any&seed=8', { gpu: true });
  await drawn(page, 'gridDrawn');
  await page.waitForFunction(() => /WebGPU engine did not load/.test(document.getElementById('backend').textContent),
    null, { timeout: 60_000 });
  assert.match(await page.textContent('#backend'), /^CPU/);
  // The page keeps working on the CPU engine.
  const count = await page.evaluate(() => Number(document.body.dataset.gridDrawn));
  await page.click('#new');
  await drawn(page, 'gridDrawn', count + 1);
  for (const cell of await pixels(page, '#grid canvas')) assert.ok(stats(cell).sd > 10, 'a cell is nearly flat');
  // The browser logs the 404 itself; nothing else may go wrong.
  assert.deepEqual(errors.filter((e) => !/404|Failed to load resource/.test(e)), []);
  await page.close();
  // Asked for WebGPU outright, it starts on the CPU engine instead and says why.
  const forced = await open('no-gpu-engine/index.html#backend=webgpu&seed=8', { gpu: true });
  await drawn(forced.page, 'gridDrawn');
  assert.match(await forced.page.textContent('#backend'), /^CPU \(wasm\) \(the WebGPU engine did not load/);
  assert.deepEqual(forced.errors.filter((e) => !/404|Failed to load resource/.test(e)), []);
  await forced.page.close();
});

test('a progressive model shows the same cat at every stage, as `catgan sample --growth` does', async (t) => {
  const entry = JSON.parse(fs.readFileSync(path.join(SITE, 'assets/manifest.json'))).models
    .find((m) => m.arch === 'progan');
  if (!entry) { t.skip('no progressive model in the manifest'); return; }
  const stages = Math.log2(entry.resolution) - 1;
  execFileSync(CATGAN, ['sample', '--model', entry.name, '--seed', '77', '--count', '1', '--growth',
    '--device', 'cpu', '--assets', path.join(SITE, 'assets'), '--out', path.join(scratch, 'growth.png')],
  { stdio: 'ignore' });
  const { page, errors } = await open(`ok/index.html#backend=cpu&model=${entry.name}&seed=77&cat=0`);
  await drawn(page, 'growDrawn', stages);
  await page.waitForTimeout(500);
  assert.equal(await page.isVisible('#grow'), true);
  const shown = await pixels(page, '#grow-stages canvas');
  assert.equal(shown.length, stages);
  const native = await png(page, 'growth.png');
  const side = entry.resolution;
  let worst = 0;
  shown.forEach((rgba, s) => {
    const n = 4 << s;
    assert.equal(rgba.length, n * n * 4, `stage ${s} is ${n}x${n}`);
    // The native strip shows stage s in column s, enlarged to the full side.
    const scale = side / n;
    for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) for (let c = 0; c < 3; c++) {
      const nx = s * (side + 1) + x * scale, ny = y * scale;
      const expected = native[(ny * native.width + nx) * 4 + c];
      worst = Math.max(worst, Math.abs(rgba[(y * n + x) * 4 + c] - expected));
    }
  });
  t.diagnostic(`largest pixel difference from native over ${stages} stages: ${worst}/255`);
  assert.ok(worst <= TOLERANCE, `stage pixels differ by ${worst}`);
  // Models that do not grow hide the strip.
  const other = models().find((m) => m !== entry.name);
  if (other) {
    await page.selectOption('#model', other);
    await page.waitForFunction(() => document.getElementById('grow').hidden, null, { timeout: 120_000 });
  }
  assert.deepEqual(errors, []);
  await page.close();
});

// A site whose only model takes noise inputs: a tiny residual GAN trained for a few steps on
// cats drawn by a shipped model, exported into a copy of the site under the scratch folder.
test('a model with noise inputs draws the native cat for a seed, and its morph and truncation work', async (t) => {
  const site = path.join(scratch, 'noise-site');
  for (const file of fs.readdirSync(SITE)) {
    if (file !== 'assets') fs.cpSync(path.join(SITE, file), path.join(site, file), { recursive: true });
  }
  const cats = path.join(scratch, 'noise-cats');
  fs.mkdirSync(cats);
  const shipped = models()[0];
  for (let seed = 0; seed < 8; seed++) {
    execFileSync(CATGAN, ['sample', '--model', shipped, '--seed', String(seed), '--count', '1', '--device', 'cpu',
      '--assets', path.join(SITE, 'assets'), '--out', path.join(cats, `${seed}.png`)], { stdio: 'ignore' });
  }
  const run = path.join(scratch, 'noise-run');
  execFileSync(CATGAN, ['train', '--data', cats, '--out', run, '--arch', 'resnet', '--noise-inputs',
    '--resolution', '16', '--generator-width', '4', '--discriminator-width', '4', '--latent-size', '8',
    '--batch-size', '4', '--kimg', '0.016', '--tick-kimg', '0.008', '--swd-kimg', '0', '--lr-generator', '0.05',
    '--no-progress', '--device', 'cpu'], { stdio: 'ignore' });
  const assets = path.join(site, 'assets');
  execFileSync(CATGAN, ['export', run, '--name', 'noisy', '--assets', assets, '--precision', 'f32',
    '--device', 'cpu'], { stdio: 'ignore' });
  const entry = JSON.parse(fs.readFileSync(path.join(assets, 'manifest.json'))).models[0];
  assert.equal(entry.noise_size, 64 + 256);
  execFileSync(CATGAN, ['sample', '--model', 'noisy', '--seed', '4242', '--count', '1', '--device', 'cpu',
    '--assets', assets, '--out', path.join(scratch, 'noisy.png')], { stdio: 'ignore' });

  const { page, errors } = await open('scratch/noise-site/index.html#backend=cpu&seed=4242&cat=0');
  await drawn(page, 'editorDrawn');
  assert.equal(await page.evaluate(() => [catgan.state.latentSize, catgan.state.inputSize].join()), '8,328');
  const [shown] = await pixels(page, '#editor');
  const worst = maxDiff(shown, await png(page, 'noisy.png'));
  t.diagnostic(`largest pixel difference from native: ${worst}/255`);
  assert.ok(worst <= TOLERANCE, `pixels differ by ${worst}`);
  // One slider per latent value, none for the noise.
  assert.match(await page.textContent('#page-label'), /of 8$/);
  // Truncation and a morph toward another seed redraw the cat without errors.
  const before = Number(await page.evaluate(() => document.body.dataset.editorDrawn));
  await page.evaluate(() => { const psi = document.getElementById('psi'); psi.value = '0.5'; psi.dispatchEvent(new Event('input')); });
  await drawn(page, 'editorDrawn', before + 1);
  const [truncated] = await pixels(page, '#editor');
  assert.ok(maxDiff(truncated, shown) > 0, 'truncation changed nothing');
  assert.deepEqual(errors, []);
  await page.close();
  const morphing = await open('scratch/noise-site/index.html#backend=cpu&seed=4242&cat=0&psi=0.50&b=7&t=0.50');
  await drawn(morphing.page, 'editorDrawn');
  const [morphed] = await pixels(morphing.page, '#editor');
  assert.ok(maxDiff(morphed, truncated) > 0, 'the morph changed nothing');
  assert.deepEqual(morphing.errors, []);
  await morphing.page.close();
});

test('a share link reproduces the edited cat', async () => {
  const { page, errors } = await open('ok/index.html#backend=cpu&seed=99&cat=3&psi=0.80&e=2:1.50,7:-2.00');
  await drawn(page, 'editorDrawn');
  const state = await page.evaluate(() => ({ seed: catgan.state.seed, cat: catgan.state.cat,
    psi: catgan.state.psi, edits: [...catgan.state.edits] }));
  assert.deepEqual(state, { seed: 99, cat: 3, psi: 0.8, edits: [[2, 1.5], [7, -2]] });
  await page.waitForTimeout(500);
  const [before] = await pixels(page, '#editor');
  await page.click('#share');
  const link = await page.inputValue('#share-url');
  const again = await open(link.replace(base + '/', ''));
  await drawn(again.page, 'editorDrawn');
  await again.page.waitForTimeout(500);
  const [after] = await pixels(again.page, '#editor');
  assert.deepEqual(after, before);
  assert.deepEqual([...errors, ...again.errors], []);
  await page.close(); await again.page.close();
});

test('hostile or malformed URL values fall back to defaults and inject nothing', async () => {
  const evil = encodeURIComponent('<img src=x onerror="window.pwned=1">');
  const { page, errors } = await open(`ok/index.html#backend=cpu&model=${evil}&seed=-5&cat=99&psi=NaN&e=1:999,abc,<b>`);
  await drawn(page, 'gridDrawn');
  const result = await page.evaluate(() => ({ pwned: window.pwned ?? null, imgs: document.images.length,
    seed: catgan.state.seed, cat: catgan.state.cat, psi: catgan.state.psi, edits: catgan.state.edits.size }));
  assert.deepEqual(result, { pwned: null, imgs: 0, seed: 0, cat: 0, psi: 1, edits: 0 });
  assert.deepEqual(errors, []);
  await page.close();
});

// `firstOnly`: only the first model's file is broken, so the page must go on with the next.
for (const [name, expected, firstOnly] of [
  ['bad-sha', /SHA-256/, true], ['html-weights', /HTML/], ['truncated', /truncated/],
  ['wrong-version', /format version/, true], ['other-arch', /does not fit a \w+ generator/, true],
  ['missing-manifest', /manifest/],
]) {
  test(`broken assets (${name}) give a clear message on the page`, async (t) => {
    const { page, errors } = await open(`${name}/index.html#backend=cpu`);
    await page.waitForFunction(() => document.body.dataset.error, null, { timeout: 120_000 });
    // Wait until the page has tried the other models too (there are none to try without a
    // manifest).
    if (name !== 'missing-manifest') {
      await page.waitForFunction(() => document.body.dataset.opened, null, { timeout: 120_000 });
    }
    const names = models();
    if (firstOnly && names.length > 1) {
      // The other models are still usable: the page opens the next one by itself.
      await drawn(page, 'gridDrawn');
      assert.equal(await page.evaluate(() => catgan.state.model), names[1]);
      assert.equal(await page.inputValue('#model'), names[1]);
      const first = await page.$eval(`#model option[value="${names[0]}"]`, (o) => [o.disabled, o.textContent]);
      assert.deepEqual(first, [true, `${names[0]} (unavailable)`]);
      const status = await page.textContent('#status');
      assert.match(status, new RegExp(`Model '${names[0]}' cannot be used`));
      assert.match(status, new RegExp(`showing '${names[1]}' instead`));
    }
    const status = await page.textContent('#status');
    t.diagnostic(status);
    assert.match(status, expected);
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test('wasm memory stays flat over many slider moves', async () => {
  const { page, errors } = await open('ok/index.html#backend=cpu');
  await drawn(page, 'editorDrawn');
  const move = (n) => page.evaluate(async (count) => {
    const slider = document.querySelector('#sliders input');
    for (let i = 0; i < count; i++) {
      slider.value = String(((i % 13) - 6) / 2);
      slider.dispatchEvent(new Event('input'));
      await new Promise((r) => setTimeout(r, 2));
    }
  }, n);
  const settle = async () => {
    const target = await page.evaluate(() => Number(document.body.dataset.editorDrawn));
    await page.waitForTimeout(1500);
    await drawn(page, 'editorDrawn', target);
  };
  await move(50); await settle();
  const early = await page.evaluate(() => catgan.memory());
  await move(950); await settle(); // 1,000 moves in all
  const late = await page.evaluate(() => catgan.memory());
  assert.ok(late <= early, `wasm memory grew from ${early} to ${late} bytes`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('switching models many times keeps wasm memory flat and the page working', async (t) => {
  const names = models();
  if (names.length < 2) { t.skip('only one model in the manifest'); return; }
  const { page, errors } = await open('ok/index.html#backend=cpu');
  await drawn(page, 'gridDrawn');
  const cycle = async (n) => {
    for (let i = 0; i < n; i++) {
      const name = names[i % names.length];
      const count = await page.evaluate(() => Number(document.body.dataset.gridDrawn));
      await page.selectOption('#model', name);
      await drawn(page, 'gridDrawn', count + 1);
    }
  };
  await cycle(2 * names.length);
  const early = await page.evaluate(() => catgan.memory());
  await cycle(100);
  const late = await page.evaluate(() => catgan.memory());
  t.diagnostic(`wasm memory after ${2 * names.length} switches ${early}, after 100 more ${late}`);
  assert.ok(late <= early, `wasm memory grew from ${early} to ${late} bytes`);
  assert.equal(await page.evaluate(() => catgan.state.model), names[(99) % names.length]);
  assert.deepEqual(errors, []);
  await page.close();
});

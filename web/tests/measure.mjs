// Measures the page in headless Chromium: download size, time to first cats, and generation
// time for one cat and for the grid of 16 on each backend. Prints one JSON object.
// Usage: node web/tests/measure.mjs [SITE]   (SITE defaults to target/site, see scripts/build-web)
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '../..');
const SITE = path.resolve(process.argv[2] || path.join(root, 'target/site'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.wasm': 'application/wasm' };

const size = (file) => {
  const body = fs.readFileSync(path.join(SITE, file));
  return { raw: body.length, gzip: zlib.gzipSync(body, { level: 9 }).length };
};
const manifest = JSON.parse(fs.readFileSync(path.join(SITE, 'assets/manifest.json')));
const weights = manifest.models[0].file;
// What the page (by default) fetches before its first cats: the CPU-only engine and the weights.
const files = ['index.html', 'app.js', 'worker.js', 'style.css', 'catgan_cpu.js',
  'catgan_cpu_bg.wasm', 'assets/manifest.json', `assets/${weights}`];
const payload = Object.fromEntries(files.map((f) => [f, size(f)]));
const total = files.reduce((t, f) => ({ raw: t.raw + payload[f].raw, gzip: t.gzip + payload[f].gzip }),
  { raw: 0, gzip: 0 });

const server = http.createServer((req, res) => {
  const file = path.join(SITE, decodeURIComponent(new URL(req.url, 'http://x').pathname));
  if (!file.startsWith(SITE) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404); res.end(); return;
  }
  res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
  res.end(fs.readFileSync(file));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/index.html`;

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const results = {};
for (const [name, args, hash] of [
  ['webgpu', ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'], '#backend=webgpu'],
  ['cpu', ['--disable-gpu'], '#backend=cpu'],
]) {
  const browser = await chromium.launch({ executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', ...args] });
  const page = await browser.newPage();
  await page.goto(url + hash);
  const wait = (key, n) => page.waitForFunction(([k, v]) => Number(document.body.dataset[k] || 0) >= v,
    [key, n], { timeout: 300_000 });
  await wait('gridDrawn', 1);
  const first = await page.evaluate(() => Number(document.body.dataset.firstCatMs));
  const backend = await page.textContent('#backend');
  const grid = [];
  for (let i = 0; i < 5; i++) {
    const n = await page.evaluate(() => Number(document.body.dataset.gridDrawn));
    await page.click('#new');
    await wait('gridDrawn', n + 1);
    grid.push(await page.evaluate(() => Number(document.body.dataset.gridMs)));
  }
  const one = [];
  await page.focus('#sliders input');
  for (let i = 0; i < 7; i++) {
    const n = await page.evaluate(() => Number(document.body.dataset.editorDrawn));
    await page.keyboard.press('ArrowRight');
    await wait('editorDrawn', n + 1);
    one.push(await page.evaluate(() => Number(document.body.dataset.editorMs)));
  }
  results[name] = { backend, navigation_to_first_cats_ms: first,
    grid_of_16_ms_median: median(grid), one_cat_ms_median: median(one.slice(2)) };
  await browser.close();
}
server.close();
console.log(JSON.stringify({ payload, total_first_cat_download: total, results }, null, 1));

// Loads the smallest set of TF.js bundles that one backend needs (tfjs-core plus that backend's
// package, as a page built for one backend would ship), then the generator module.
// URL hash: backend=webgpu|webgl|wasm|cpu, threads=N (wasm only), bundle=full (tf.min.js instead).
(() => {
  const params = new URLSearchParams(location.hash.slice(1));
  const backend = params.get('backend') || 'webgl';
  const npm = '../npm/@tensorflow/';
  const backendBundle = {
    cpu: 'tfjs-backend-cpu/dist/tf-backend-cpu.es2017.min.js',
    webgl: 'tfjs-backend-webgl/dist/tf-backend-webgl.es2017.min.js',
    wasm: 'tfjs-backend-wasm/dist/tf-backend-wasm.es2017.min.js',
    webgpu: 'tfjs-backend-webgpu/dist/tf-backend-webgpu.es2017.min.js',
  };
  if (!(backend in backendBundle)) throw new Error(`unknown backend '${backend}'`);
  const scripts = params.get('bundle') === 'full'
    // The full bundle already holds the cpu and webgl backends.
    ? ['tfjs/dist/tf.es2017.min.js', ...(['wasm', 'webgpu'].includes(backend) ? [backendBundle[backend]] : [])]
    : ['tfjs-core/dist/tf-core.es2017.min.js', backendBundle[backend]];

  const load = (src) => new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.appendChild(script);
  });
  (async () => {
    for (const src of scripts) await load(npm + src);
    const generator = document.createElement('script');
    generator.type = 'module';
    generator.src = './dcgan.js';
    document.head.appendChild(generator);
  })().catch((e) => { document.body.dataset.error = String(e.message || e); });
})();

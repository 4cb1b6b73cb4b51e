// Starts the app: loads the wasm-bindgen module and its wasm, whose hashed
// names trunk writes into this script's data attributes (`pattern_script`
// in Trunk.toml). A file of its own instead of trunk's inline script, so
// that the page's Content-Security-Policy allows scripts from this site
// only (nginx/nginx.conf).
const tag = document.querySelector('script[data-wasm]');
const bindings = await import(tag.dataset.js);
const wasm = await bindings.default({ module_or_path: tag.dataset.wasm });
window.wasmBindings = bindings;
dispatchEvent(new CustomEvent('TrunkApplicationStarted', { detail: { wasm } }));

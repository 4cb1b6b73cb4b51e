//! The browser face of the test executor: a Yew single-page app that reads
//! and writes only through the REST API of docs/API.md.

mod ansi;
mod api;
mod app;
mod components;
mod format;
mod health;
mod hooks;
mod pages;
mod query;
mod selection;
mod sort;
mod tree;
mod trend;

// Talc rather than Rust's default dlmalloc: a few kilobytes less wasm, and
// faster too.
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

fn main() {
    yew::Renderer::<app::App>::new().render();
}

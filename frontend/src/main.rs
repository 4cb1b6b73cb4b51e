//! The browser face of the test executor: a Yew single-page app that reads
//! and writes only through the REST API of API.md.

mod ansi;
mod api;
mod app;
mod components;
mod format;
mod hooks;
mod pages;
mod tree;
mod trend;

fn main() {
    yew::Renderer::<app::App>::new().render();
}

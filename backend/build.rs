//! The migrations are embedded in the binary (`db::MIGRATIONS`), and cargo
//! does not watch their directory by itself: without this, a migration
//! added with no change to the code would be missing from the next build.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}

//! `sqlx::migrate!` embeds the migrations at compile time, but cargo does not
//! know that: without this, a new migration file is missing from the binary
//! until some Rust file of this crate changes.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}

//! The migrations are embedded at compile time: a change to one rebuilds the crate.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

//! Links berth-shim as a position-dependent executable: a PIE's relocated
//! `.data.rel.ro` is private dirty memory in every shim (about 280 KiB), while a fixed
//! address keeps those pages clean and shared between all shims.

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}

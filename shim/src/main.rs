//! berth-shim: filled by the run-containers work.
fn main() {
    eprintln!("berth-shim: not implemented yet");
    std::process::exit(1);
}

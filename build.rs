//! Compiles every `.proto` under `proto/` with protox (no system `protoc`) and generates
//! prost messages plus tonic clients and servers, with one include file that nests the
//! generated modules by protobuf package.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
}

fn main() {
    let root = Path::new("proto");
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    collect(root, &mut files);
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|p| p.strip_prefix(root).expect("under proto/").to_path_buf())
        .collect();
    let fds = protox::compile(&relative, [root]).unwrap_or_else(|e| panic!("protox: {e}"));
    // The descriptors travel with the library so clients can print any message as JSON.
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(
        out_dir.join("descriptors.bin"),
        prost::Message::encode_to_vec(&fds),
    )
    .expect("write descriptors.bin");
    let mut config = tonic_prost_build::Config::new();
    // `prost::Name` on every message: berth builds `Any` type URLs from the full names.
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Services not served yet answer `Unimplemented` method by method.
        .generate_default_stubs(true)
        .emit_rerun_if_changed(false)
        .include_file("_includes.rs")
        .compile_fds_with_config(fds, config)
        .unwrap_or_else(|e| panic!("code generation: {e}"));
}

//! The benchmark's big image: three gzip layers of a few hundred MB and tens of
//! thousands of files, made deterministically from this machine's `/usr` (sorted walk,
//! fixed times and owners) and cached under the system temp dir, so only the first
//! benchmark run pays for building it. `BERTH_BENCH_PULL_SCALE=<percent>` scales the
//! byte and file budgets down for a quick run (default 100).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result, io};
use crate::registry::Registry;

/// What one layer takes from the file system: directories walked in order until the
/// byte or file budget is spent.
struct LayerPlan {
    roots: &'static [&'static str],
    max_bytes: u64,
    max_files: usize,
}

const PLAN: [LayerPlan; 3] = [
    // Shared libraries: few, big, binary.
    LayerPlan {
        roots: &["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"],
        max_bytes: 320 << 20,
        max_files: 3_000,
    },
    // Manual pages and documentation: many small files.
    LayerPlan {
        roots: &["/usr/share/man", "/usr/share/doc"],
        max_bytes: 150 << 20,
        max_files: 25_000,
    },
    // Interpreter libraries: text of all sizes.
    LayerPlan {
        roots: &[
            "/usr/lib/python3",
            "/usr/lib/python3.11",
            "/usr/share/perl",
            "/usr/include",
        ],
        max_bytes: 120 << 20,
        max_files: 6_000,
    },
];

/// Bump when the plan changes, so an old cache is not reused.
const VERSION: u32 = 2;

/// One built layer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BuiltLayer {
    /// The gzip blob.
    pub path: PathBuf,
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
    pub files: usize,
    pub unpacked: u64,
}

/// The built image: layers, config and manifest.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BenchImage {
    pub layers: Vec<BuiltLayer>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl BenchImage {
    /// Total gzip bytes of the layers.
    pub fn compressed(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Total files.
    pub fn files(&self) -> usize {
        self.layers.iter().map(|l| l.files).sum()
    }

    /// Total uncompressed tar bytes.
    pub fn unpacked(&self) -> u64 {
        self.layers.iter().map(|l| l.unpacked).sum()
    }

    /// The manifest digest.
    pub fn digest(&self) -> String {
        sha256(&self.manifest)
    }

    /// Pushes the image into `registry` as `repo:tag`.
    pub fn push(&self, registry: &Registry, repo: &str, tag: &str) -> Result<()> {
        for l in &self.layers {
            let data = std::fs::read(&l.path).map_err(io(format!("read {}", l.path.display())))?;
            registry.push_blob(repo, &l.digest, &data)?;
        }
        registry.push_blob(repo, &sha256(&self.config), &self.config)?;
        registry.push_manifest(
            repo,
            tag,
            "application/vnd.oci.image.manifest.v1+json",
            &self.manifest,
        )?;
        Ok(())
    }
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A writer that hashes and counts what passes to `inner`.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    count: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Every regular file and symlink under `root`, sorted, skipping unreadable ones.
fn walk(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            out.push(p.clone());
            walk(&p, out);
        } else if m.is_file() || m.file_type().is_symlink() {
            out.push(p);
        }
    }
}

fn build_layer(plan: &LayerPlan, scale: u64, path: &Path) -> Result<BuiltLayer> {
    let max_bytes = plan.max_bytes * scale / 100;
    let max_files = (plan.max_files as u64 * scale / 100).max(1) as usize;
    let file = File::create(path).map_err(io(format!("create {}", path.display())))?;
    let compressed = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        hash: Sha256::new(),
        count: 0,
    };
    let gz = flate2::write::GzEncoder::new(compressed, flate2::Compression::default());
    let plain = Hashing {
        inner: gz,
        hash: Sha256::new(),
        count: 0,
    };
    let mut tar = tar::Builder::new(plain);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    let (mut bytes, mut files) = (0u64, 0usize);
    'roots: for root in plan.roots {
        let mut paths = Vec::new();
        walk(Path::new(root), &mut paths);
        for p in paths {
            if bytes >= max_bytes || files >= max_files {
                break 'roots;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let name = p.strip_prefix("/").unwrap_or(&p);
            if m.is_file() && std::fs::File::open(&p).is_err() {
                continue;
            }
            tar.append_path_with_name(&p, name)
                .map_err(io(format!("add {} to the bench layer", p.display())))?;
            if m.is_file() {
                files += 1;
                bytes += m.len();
            }
        }
    }
    let plain = tar.into_inner().map_err(io("finish the bench layer tar"))?;
    let diff_id = format!("sha256:{}", hex::encode(plain.hash.finalize()));
    let unpacked = plain.count;
    let compressed = plain
        .inner
        .finish()
        .map_err(io("finish the bench layer gzip"))?;
    let digest = format!("sha256:{}", hex::encode(compressed.hash.finalize()));
    let size = compressed.count;
    compressed
        .inner
        .into_inner()
        .map_err(|e| Error::Io {
            context: "flush the bench layer".into(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(io("sync the bench layer"))?;
    Ok(BuiltLayer {
        path: path.to_path_buf(),
        digest,
        size,
        diff_id,
        files,
        unpacked,
    })
}

/// The cached image, built first when needed (a minute or two).
pub fn get() -> Result<BenchImage> {
    let scale = std::env::var("BERTH_BENCH_PULL_SCALE")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(100, |s| s.clamp(1, 100));
    let dir = std::env::temp_dir().join(if scale == 100 {
        format!("berth-bench-image-v{VERSION}")
    } else {
        format!("berth-bench-image-v{VERSION}-{scale}pct")
    });
    let index = dir.join("image.json");
    if let Ok(data) = std::fs::read(&index)
        && let Ok(img) = serde_json::from_slice::<BenchImage>(&data)
        && img
            .layers
            .iter()
            .all(|l| std::fs::metadata(&l.path).is_ok_and(|m| m.len() == l.size))
    {
        return Ok(img);
    }
    std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
    eprintln!(
        "building the benchmark image in {} (once) ...",
        dir.display()
    );
    let mut layers = Vec::new();
    for (i, plan) in PLAN.iter().enumerate() {
        layers.push(build_layer(
            plan,
            scale,
            &dir.join(format!("layer{i}.tar.gz")),
        )?);
    }
    let config = serde_json::to_vec(&json!({
        "architecture": crate::fixtures::Platform::host().architecture,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/usr/bin/true"], "Env": [crate::fixtures::PATH_ENV]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": layers.iter().map(|_| json!({"created_by": "berth-bench: files from /usr"})).collect::<Vec<_>>(),
    }))
    .map_err(|e| Error::Fixture {
        name: "bench config".into(),
        message: e.to_string(),
    })?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(&config),
            "size": config.len(),
        },
        "layers": layers.iter().map(|l| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": l.digest,
            "size": l.size,
        })).collect::<Vec<_>>(),
    }))
    .map_err(|e| Error::Fixture {
        name: "bench manifest".into(),
        message: e.to_string(),
    })?;
    let img = BenchImage {
        layers,
        config,
        manifest,
    };
    let data = serde_json::to_vec(&img).map_err(|e| Error::Fixture {
        name: "bench image index".into(),
        message: e.to_string(),
    })?;
    std::fs::write(&index, data).map_err(io(format!("write {}", index.display())))?;
    Ok(img)
}

//! A container's mounts beyond its root: `-v` binds (`HOST:CTR[:opts]`), named volumes
//! (`NAME:CTR[:opts]`), anonymous volumes (`-v /CTR` and the image's `VOLUME`s), and
//! `--tmpfs`. Parsed and checked at create, resolved into [`MountPoint`]s (volumes are
//! created and marked in use then), released at removal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::model::MountPoint;
use crate::error::{Error, Result};
use crate::volumes::{self, Volumes};

/// One `-v` value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    /// A host path.
    Host {
        source: PathBuf,
        dest: String,
        rw: bool,
        mode: String,
    },
    /// A named volume.
    Volume {
        name: String,
        dest: String,
        rw: bool,
        mode: String,
        nocopy: bool,
    },
    /// A fresh anonymous volume.
    Anonymous { dest: String, rw: bool },
}

impl Bind {
    pub fn dest(&self) -> &str {
        match self {
            Bind::Host { dest, .. } | Bind::Volume { dest, .. } | Bind::Anonymous { dest, .. } => {
                dest
            }
        }
    }
}

const PROPAGATION: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// Checks a mode list (`ro`, `rw`, `z`, `Z`, `nocopy`, propagation); returns (rw, nocopy).
fn parse_mode(spec: &str, mode: &str) -> Result<(bool, bool)> {
    let mut rw = true;
    let mut nocopy = false;
    let mut access = 0;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => {
                rw = false;
                access += 1;
            }
            "rw" => access += 1,
            "z" | "Z" => {}
            "nocopy" => nocopy = true,
            p if PROPAGATION.contains(&p) => {}
            other => {
                return Err(Error::InvalidArgument(format!(
                    "invalid mode {other:?} in volume specification {spec:?}"
                )));
            }
        }
    }
    if access > 1 {
        return Err(Error::InvalidArgument(format!(
            "invalid mode {mode:?} in volume specification {spec:?}: ro and rw together"
        )));
    }
    Ok((rw, nocopy))
}

fn check_dest(spec: &str, dest: &str) -> Result<String> {
    if !dest.starts_with('/') {
        return Err(Error::InvalidArgument(format!(
            "invalid volume specification {spec:?}: the mount point {dest:?} must be an absolute path"
        )));
    }
    let clean = clean_path(dest);
    if clean == "/" {
        return Err(Error::InvalidArgument(format!(
            "invalid volume specification {spec:?}: the destination can't be '/'"
        )));
    }
    Ok(clean)
}

/// `/a//b/./c/` as `/a/b/c` (no `..` resolution beyond the root).
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Parses one `-v` value.
pub fn parse_bind(spec: &str) -> Result<Bind> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, dest, mode) = match parts.as_slice() {
        [dest] => (None, *dest, ""),
        [dest, mode] if !mode.starts_with('/') && dest.starts_with('/') => (None, *dest, *mode),
        [source, dest] => (Some(*source), *dest, ""),
        [source, dest, mode] => (Some(*source), *dest, *mode),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "invalid volume specification {spec:?}: expected [SOURCE:]DEST[:MODE]"
            )));
        }
    };
    let dest = check_dest(spec, dest)?;
    let (rw, nocopy) = parse_mode(spec, mode)?;
    Ok(match source {
        None => Bind::Anonymous { dest, rw },
        Some(s) if s.starts_with('/') => Bind::Host {
            source: PathBuf::from(clean_path(s)),
            dest,
            rw,
            mode: mode.to_string(),
        },
        Some(s) if volumes::valid_name(s) => Bind::Volume {
            name: s.to_string(),
            dest,
            rw,
            mode: mode.to_string(),
            nocopy,
        },
        Some(s) => {
            return Err(Error::InvalidArgument(format!(
                "invalid volume specification {spec:?}: {s:?} is neither an absolute host path \
                 nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"
            )));
        }
    })
}

/// The mounts of a new container: its binds, then anonymous volumes for the image's
/// volumes no bind covers, then tmpfs mounts. Volumes are acquired for `user`
/// (`ns/id`); on error, whatever was acquired is released again.
pub fn resolve(
    vols: &Volumes,
    user: &str,
    binds: &[String],
    image_volumes: &[String],
    tmpfs: &BTreeMap<String, String>,
) -> Result<Vec<MountPoint>> {
    let mut parsed = Vec::new();
    for b in binds {
        parsed.push(parse_bind(b)?);
    }
    for v in image_volumes {
        let dest = clean_path(v);
        if !parsed.iter().any(|b| b.dest() == dest) && !tmpfs.contains_key(&dest) {
            parsed.push(Bind::Anonymous { dest, rw: true });
        }
    }
    let mut seen = std::collections::HashSet::new();
    for d in parsed
        .iter()
        .map(|b| b.dest().to_string())
        .chain(tmpfs.keys().map(|k| clean_path(k)))
    {
        if !seen.insert(d.clone()) {
            return Err(Error::InvalidArgument(format!(
                "duplicate mount point: {d}"
            )));
        }
    }
    for dest in tmpfs.keys() {
        check_dest(dest, dest)?;
    }
    let mut out: Vec<MountPoint> = Vec::new();
    let result = (|| {
        for b in parsed {
            out.push(acquire(vols, user, b)?);
        }
        Ok(())
    })();
    if let Err(e) = result {
        release(vols, user, &out, true);
        return Err(e);
    }
    for (dest, opts) in tmpfs {
        out.push(MountPoint {
            kind: "tmpfs".into(),
            name: String::new(),
            source: PathBuf::new(),
            destination: clean_path(dest),
            rw: !opts.split(',').any(|o| o == "ro"),
            mode: String::new(),
            options: opts.clone(),
            anonymous: false,
        });
    }
    Ok(out)
}

fn acquire(vols: &Volumes, user: &str, b: Bind) -> Result<MountPoint> {
    Ok(match b {
        Bind::Host {
            source,
            dest,
            rw,
            mode,
        } => {
            // docker creates a missing host directory of a -v bind.
            if !source.exists() {
                std::fs::create_dir_all(&source).map_err(|e| {
                    Error::io(format!("create bind source {}", source.display()), e)
                })?;
            }
            MountPoint {
                kind: "bind".into(),
                name: String::new(),
                source,
                destination: dest,
                rw,
                mode,
                options: String::new(),
                anonymous: false,
            }
        }
        Bind::Volume {
            name,
            dest,
            rw,
            mode,
            nocopy,
        } => {
            let (v, _) = vols.acquire(&name, user)?;
            MountPoint {
                kind: "volume".into(),
                name: v.name,
                source: v.mountpoint,
                destination: dest,
                rw,
                mode,
                options: if nocopy {
                    "nocopy".into()
                } else {
                    String::new()
                },
                anonymous: false,
            }
        }
        Bind::Anonymous { dest, rw } => {
            let v = vols.acquire_anonymous(user)?;
            MountPoint {
                kind: "volume".into(),
                name: v.name,
                source: v.mountpoint,
                destination: dest,
                rw,
                mode: String::new(),
                options: String::new(),
                anonymous: true,
            }
        }
    })
}

/// Gives the container's volumes back; anonymous ones are removed with
/// `remove_anonymous`.
pub fn release(vols: &Volumes, user: &str, mounts: &[MountPoint], remove_anonymous: bool) {
    for m in mounts.iter().filter(|m| m.kind == "volume") {
        if let Err(e) = vols.release(&m.name, user, remove_anonymous && m.anonymous) {
            tracing::warn!(volume = %m.name, container = %user, error = %e, "release volume");
        }
    }
}

/// The OCI mount of a resolved mount point.
pub fn oci_mount(m: &MountPoint) -> serde_json::Value {
    if m.kind == "tmpfs" {
        let mut options = vec!["nosuid".to_string(), "nodev".to_string(), "noexec".into()];
        options.extend(
            m.options
                .split(',')
                .filter(|o| !o.is_empty())
                .map(String::from),
        );
        return serde_json::json!({
            "destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": options,
        });
    }
    let mut options = vec![
        "rbind".to_string(),
        if m.rw { "rw" } else { "ro" }.to_string(),
    ];
    let propagation = m
        .mode
        .split(',')
        .find(|p| PROPAGATION.contains(p))
        .unwrap_or("rprivate");
    options.push(propagation.to_string());
    serde_json::json!({
        "destination": m.destination, "type": "bind",
        "source": m.source.display().to_string(), "options": options,
    })
}

/// Whether `dest` is a mount destination of `mounts`.
pub fn covers(mounts: &[MountPoint], dest: &str) -> bool {
    mounts.iter().any(|m| m.destination == dest)
}

/// The number of path components (parents sort before children).
pub fn depth(p: &Path) -> usize {
    p.components().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse_like_docker() {
        assert_eq!(
            parse_bind("/host/dir:/ctr:ro").unwrap(),
            Bind::Host {
                source: "/host/dir".into(),
                dest: "/ctr".into(),
                rw: false,
                mode: "ro".into()
            }
        );
        assert_eq!(
            parse_bind("data:/var/lib/data").unwrap(),
            Bind::Volume {
                name: "data".into(),
                dest: "/var/lib/data".into(),
                rw: true,
                mode: String::new(),
                nocopy: false
            }
        );
        assert_eq!(
            parse_bind("/scratch").unwrap(),
            Bind::Anonymous {
                dest: "/scratch".into(),
                rw: true
            }
        );
        assert_eq!(
            parse_bind("/scratch:ro").unwrap(),
            Bind::Anonymous {
                dest: "/scratch".into(),
                rw: false
            }
        );
        assert!(matches!(
            parse_bind("v1:/x:nocopy").unwrap(),
            Bind::Volume { nocopy: true, .. }
        ));
        for bad in [
            "relative:ctr",
            "/a:/",
            "/a:/b:ro,rw",
            "/a:/b:bogus",
            "a b:/c",
            "/a:/b:/c:/d",
        ] {
            assert!(parse_bind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolve_adds_image_volumes_and_refuses_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let md = std::sync::Arc::new(
            crate::metadata::Metadata::open(&dir.path().join("m.redb")).unwrap(),
        );
        let vols = Volumes::open(md, dir.path()).unwrap();
        let host = dir.path().join("made-for-me");
        let binds = vec![
            format!("{}:/etc/conf:ro", host.display()),
            "named:/data".to_string(),
        ];
        let image = vec!["/data".to_string(), "/cache".to_string()];
        let tmpfs: BTreeMap<String, String> = [("/run".to_string(), "size=1m".to_string())].into();
        let m = resolve(&vols, "ns/c1", &binds, &image, &tmpfs).unwrap();
        assert!(host.is_dir(), "missing bind sources are created");
        let kinds: Vec<(&str, &str, bool)> = m
            .iter()
            .map(|m| (m.kind.as_str(), m.destination.as_str(), m.anonymous))
            .collect();
        assert_eq!(
            kinds,
            [
                ("bind", "/etc/conf", false),
                ("volume", "/data", false),
                ("volume", "/cache", true),
                ("tmpfs", "/run", false)
            ]
        );
        assert!(!m[0].rw);
        assert_eq!(vols.list().unwrap().len(), 2);
        release(&vols, "ns/c1", &m, true);
        let left: Vec<String> = vols.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(left, ["named"]);
        let err = resolve(
            &vols,
            "ns/c2",
            &["va:/x".into(), "vb:/x/".into()],
            &[],
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("duplicate mount point: /x"),
            "{err}"
        );
        assert_eq!(vols.list().unwrap().len(), 1, "nothing acquired on error");
    }

    #[test]
    fn oci_mounts() {
        let m = MountPoint {
            kind: "bind".into(),
            name: String::new(),
            source: "/h".into(),
            destination: "/c".into(),
            rw: false,
            mode: "ro".into(),
            options: String::new(),
            anonymous: false,
        };
        assert_eq!(
            oci_mount(&m)["options"],
            serde_json::json!(["rbind", "ro", "rprivate"])
        );
    }
}

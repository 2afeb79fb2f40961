//! Paths inside a container's root seen from the host: symlinks are followed as the
//! container would follow them, relative to its root, so a link to `/etc/shadow` or
//! `../../..` in an image never leads outside the root. Used while the root is not in
//! use by a running container (reading its passwd files, copying into a volume).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// How many symlinks one resolution may follow.
const MAX_LINKS: usize = 40;

fn components(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
}

/// The host path of `path` (absolute inside the container) under `root`, with every
/// symlink on the way resolved inside `root`. Components that do not exist are kept
/// as they are.
pub fn resolve(root: &Path, path: &str) -> std::io::Result<PathBuf> {
    let mut todo: VecDeque<String> = components(path).collect();
    let mut current = PathBuf::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            current.pop();
            continue;
        }
        let candidate = current.join(&c);
        match std::fs::symlink_metadata(root.join(&candidate)) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(std::io::Error::other(format!(
                        "too many levels of symbolic links resolving {path} in {}",
                        root.display()
                    )));
                }
                let target = std::fs::read_link(root.join(&candidate))?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    current = PathBuf::new();
                }
                for part in components(&target).collect::<Vec<_>>().into_iter().rev() {
                    todo.push_front(part);
                }
            }
            Ok(_) => current = candidate,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                current = candidate;
                for rest in todo.drain(..) {
                    if rest == ".." {
                        current.pop();
                    } else {
                        current.push(rest);
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(root.join(current))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn links_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("data/real")).unwrap();
        symlink("/etc/shadow", root.join("etc/passwd")).unwrap();
        symlink("../../../../..", root.join("data/up")).unwrap();
        symlink("real", root.join("data/rel")).unwrap();
        symlink("/data/real", root.join("abs")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            resolve(&root, "/etc/passwd").unwrap(),
            root.join("etc/shadow")
        );
        assert_eq!(resolve(&root, "/data/up/etc").unwrap(), root.join("etc"));
        assert_eq!(
            resolve(&root, "/data/rel/x").unwrap(),
            root.join("data/real/x")
        );
        assert_eq!(
            resolve(&root, "/abs/../real").unwrap(),
            root.join("data/real")
        );
        assert_eq!(resolve(&root, "/missing/../etc").unwrap(), root.join("etc"));
        assert!(resolve(&root, "/loop").is_err());
    }
}

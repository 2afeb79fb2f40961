//! The user a container runs as: docker's `--user` (`name`, `uid`, `name:group`,
//! `uid:gid`) resolved against the image's `/etc/passwd` and `/etc/group`, with the
//! user's supplementary groups and home directory, plus `--group-add`.

use std::path::Path;

use super::rootpath;
use crate::error::{Error, Result};

/// What the process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// From the passwd entry; "/" when there is none.
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(text: &str) -> Vec<PasswdEntry<'_>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0],
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f.get(5).copied().unwrap_or(""),
            })
        })
        .collect()
}

fn group_entries(text: &str) -> Vec<GroupEntry<'_>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0],
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `spec` (empty: root) with the image's passwd and group files (None when the
/// image has none) and the `--group-add` entries. A name that the files do not know is
/// an error; a number is taken as it is.
pub fn resolve(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
    group_add: &[String],
) -> Result<ExecUser> {
    let users = passwd.map(passwd_entries).unwrap_or_default();
    let groups = group.map(group_entries).unwrap_or_default();
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => users.iter().find(|e| e.uid == uid),
        Err(_) => Some(users.iter().find(|e| e.name == user_part).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            ))
        })?),
    };
    let mut out = ExecUser {
        uid: match entry {
            Some(e) => e.uid,
            None => user_part.parse().unwrap_or(0),
        },
        gid: entry.map(|e| e.gid).unwrap_or(0),
        additional_gids: Vec::new(),
        home: entry
            .map(|e| e.home)
            .filter(|h| !h.is_empty())
            .unwrap_or("/")
            .to_string(),
    };
    let find_group = |g: &str| -> Result<u32> {
        match g.parse::<u32>() {
            Ok(gid) => Ok(gid),
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                }),
        }
    };
    match group_part {
        Some(g) if !g.is_empty() => out.gid = find_group(g)?,
        _ => {
            // Supplementary groups from the group file, only without an explicit group.
            if let Some(e) = entry {
                for g in groups.iter().filter(|g| g.members.contains(&e.name)) {
                    if g.gid != out.gid && !out.additional_gids.contains(&g.gid) {
                        out.additional_gids.push(g.gid);
                    }
                }
            }
        }
    }
    for g in group_add {
        let gid = find_group(g)?;
        if !out.additional_gids.contains(&gid) {
            out.additional_gids.push(gid);
        }
    }
    Ok(out)
}

/// Reads the image's `/etc/passwd` and `/etc/group` inside the mounted root `root`
/// (symlinks resolved inside it) and resolves `spec`.
pub fn resolve_in_root(root: &Path, spec: &str, group_add: &[String]) -> Result<ExecUser> {
    let read = |p: &str| -> Option<String> {
        let path = rootpath::resolve(root, p).ok()?;
        std::fs::read_to_string(path).ok()
    };
    let passwd = read("/etc/passwd");
    let group = read("/etc/group");
    resolve(spec, passwd.as_deref(), group.as_deref(), group_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
                          # comment\n\
                          www:x:33:33:www:/var/www:/bin/false\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\n\
                         daemon:x:1:\n\
                         www:x:33:\n\
                         audio:x:29:www,daemon\n\
                         video:x:44:www\n";

    fn r(spec: &str) -> Result<ExecUser> {
        resolve(spec, Some(PASSWD), Some(GROUP), &[])
    }

    #[test]
    fn root_by_default() {
        let u = r("").unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
        assert_eq!(u.home, "/root");
        let u = resolve("", None, None, &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/"));
    }

    #[test]
    fn names_and_numbers() {
        let u = r("www").unwrap();
        assert_eq!((u.uid, u.gid), (33, 33));
        assert_eq!(u.additional_gids, vec![29, 44]);
        assert_eq!(u.home, "/var/www");
        let u = r("33").unwrap();
        assert_eq!((u.uid, u.gid), (33, 33));
        let u = r("1234").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1234, 0, "/"));
        let u = r("www:audio").unwrap();
        assert_eq!((u.uid, u.gid), (33, 29));
        assert!(u.additional_gids.is_empty());
        let u = r("1234:5678").unwrap();
        assert_eq!((u.uid, u.gid), (1234, 5678));
        let u = resolve(
            "nobody",
            Some(PASSWD),
            Some(GROUP),
            &["video".into(), "99".into()],
        )
        .unwrap();
        assert_eq!(u.additional_gids, vec![44, 99]);
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = r("ghost").unwrap_err().to_string();
        assert!(err.contains("unable to find user ghost"), "{err}");
        let err = r("www:ghosts").unwrap_err().to_string();
        assert!(err.contains("unable to find group ghosts"), "{err}");
        assert!(resolve("www", None, None, &[]).is_err());
    }

    #[test]
    fn reads_the_files_in_a_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(root.path().join("etc/group"), GROUP).unwrap();
        let u = resolve_in_root(root.path(), "daemon", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1, 1));
        assert_eq!(u.additional_gids, vec![29]);
    }
}

//! Volumes: directories that outlive containers, with the `local` driver only. A
//! volume's data is `<root>/volumes/<name>/_data`; its record (in the `volumes` table of
//! the metadata database) says who uses it. Volumes are host objects shared by every
//! berth namespace, like networks; the containers using one are named `ns/id`.
//!
//! A named volume is created on first use; an empty volume is filled from the image's
//! content at the path where it is first mounted, as docker does ([`Volumes::populate`]).
//! Anonymous volumes (an image's `VOLUME`s, `-v /path`) get a random 64-hex name and go
//! with their container when it is removed with `-v` (or `--rm`). A volume in use is
//! never removed.

mod populate;
mod record;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use record::{Volume, valid_name};

use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::metadata::{Metadata, Table};

/// The only driver berth has.
pub const LOCAL: &str = "local";

pub(crate) const VOLUMES: Table = Table::new("volumes");

/// What `volume create` (or a container's first use) asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeCreate {
    /// Empty: an anonymous volume with a random name.
    pub name: String,
    /// Empty or `local`.
    pub driver: String,
    pub labels: Labels,
    /// Driver options; the local driver takes none yet.
    pub options: BTreeMap<String, String>,
}

/// The volume subsystem.
#[derive(Clone)]
pub struct Volumes {
    md: Arc<Metadata>,
    dir: PathBuf,
}

fn now() -> i64 {
    berth_api::time::to_unix_nanos(std::time::SystemTime::now())
}

fn new_name() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Volumes {
    /// Opens the subsystem: `<root>/volumes` and its table.
    pub fn open(md: Arc<Metadata>, root: &Path) -> Result<Volumes> {
        let dir = root.join("volumes");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        md.write(|tx| tx.create(VOLUMES))?;
        Ok(Volumes { md, dir })
    }

    /// The directory holding volume `name` (its data is `_data` inside).
    fn volume_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates a volume; an existing one of that name is returned as it is (docker's
    /// `volume create` is idempotent) unless the driver differs.
    pub fn create(&self, req: VolumeCreate) -> Result<Volume> {
        let anonymous = req.name.is_empty();
        let name = if anonymous { new_name() } else { req.name };
        if !valid_name(&name) {
            return Err(Error::InvalidArgument(format!(
                "volume name {name:?} must be 2 or more of letters, digits, '_', '.' or '-', \
                 starting with a letter or digit"
            )));
        }
        let driver = if req.driver.is_empty() {
            LOCAL.to_string()
        } else {
            req.driver
        };
        if driver != LOCAL {
            return Err(Error::Unimplemented(format!(
                "volume {name}: driver {driver:?} (only \"local\" is available)"
            )));
        }
        if let Some(k) = req.options.keys().next() {
            return Err(Error::Unimplemented(format!(
                "volume {name}: driver option {k:?} (the local driver takes none yet)"
            )));
        }
        crate::labels::validate(&req.labels)?;
        let vol = Volume {
            name: name.clone(),
            driver,
            mountpoint: self.volume_dir(&name).join("_data"),
            created_at: now(),
            labels: req.labels,
            options: req.options,
            anonymous,
            users: Default::default(),
        };
        let (vol, created) = self.md.write(|tx| {
            if let Some(have) = tx.get::<Volume>(VOLUMES, &name)? {
                return Ok((have, false));
            }
            tx.put(VOLUMES, &name, &vol)?;
            Ok((vol, true))
        })?;
        if created {
            std::fs::create_dir_all(&vol.mountpoint).map_err(|e| {
                let _ = self.md.write(|tx| tx.remove(VOLUMES, &name));
                Error::io(
                    format!("create volume directory {}", vol.mountpoint.display()),
                    e,
                )
            })?;
        }
        Ok(vol)
    }

    /// The volume `name`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        self.md
            .read(|tx| tx.get::<Volume>(VOLUMES, name))?
            .ok_or_else(|| Error::NotFound(format!("volume {name}")))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>> {
        Ok(self
            .md
            .read(|tx| tx.scan::<Volume>(VOLUMES, ""))?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Records that container `user` (`ns/id`) uses the volume `name`, creating the
    /// volume first when it does not exist. True when it was created now.
    pub fn acquire(&self, name: &str, user: &str) -> Result<(Volume, bool)> {
        let existed = self
            .md
            .read(|tx| tx.get::<Volume>(VOLUMES, name))?
            .is_some();
        let created = if existed {
            false
        } else {
            self.create(VolumeCreate {
                name: name.to_string(),
                ..Default::default()
            })?;
            true
        };
        let vol = self.md.write(|tx| {
            let mut v = tx
                .get::<Volume>(VOLUMES, name)?
                .ok_or_else(|| Error::NotFound(format!("volume {name}")))?;
            v.users.insert(user.to_string());
            tx.put(VOLUMES, name, &v)?;
            Ok(v)
        })?;
        Ok((vol, created))
    }

    /// Creates an anonymous volume used by `user`.
    pub fn acquire_anonymous(&self, user: &str) -> Result<Volume> {
        let v = self.create(VolumeCreate::default())?;
        Ok(self.acquire(&v.name, user)?.0)
    }

    /// Forgets that `user` uses the volume; with `remove_anonymous`, an anonymous volume
    /// nobody else uses is removed.
    pub fn release(&self, name: &str, user: &str, remove_anonymous: bool) -> Result<()> {
        let remove = self.md.write(|tx| {
            let Some(mut v) = tx.get::<Volume>(VOLUMES, name)? else {
                return Ok(false);
            };
            v.users.remove(user);
            if remove_anonymous && v.anonymous && v.users.is_empty() {
                tx.remove(VOLUMES, name)?;
                return Ok(true);
            }
            tx.put(VOLUMES, name, &v)?;
            Ok(false)
        })?;
        if remove {
            self.remove_dir(name)?;
        }
        Ok(())
    }

    fn remove_dir(&self, name: &str) -> Result<()> {
        let dir = self.volume_dir(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove volume {}", dir.display()), e)),
        }
    }

    /// Removes a volume no container uses.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.md.write(|tx| {
            let v = tx
                .get::<Volume>(VOLUMES, name)?
                .ok_or_else(|| Error::NotFound(format!("volume {name}")))?;
            if !v.users.is_empty() {
                return Err(Error::FailedPrecondition(format!(
                    "volume {name} is in use by container(s) {}; remove them first",
                    v.users.iter().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            tx.remove(VOLUMES, name)?;
            Ok(())
        })?;
        self.remove_dir(name)
    }

    /// Removes the volumes no container uses: anonymous ones only, or every one with
    /// `all`, that `keep` does not spare. Returns the names and the bytes reclaimed.
    pub fn prune(&self, all: bool, keep: impl Fn(&Volume) -> bool) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut bytes = 0;
        for v in self.list()? {
            if !v.users.is_empty() || (!all && !v.anonymous) || keep(&v) {
                continue;
            }
            let size = self.usage(&v.name).unwrap_or(0);
            match self.remove(&v.name) {
                Ok(()) => {
                    removed.push(v.name);
                    bytes += size;
                }
                // Taken into use meanwhile.
                Err(Error::FailedPrecondition(_)) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((removed, bytes))
    }

    /// Bytes used by the volume's data.
    pub fn usage(&self, name: &str) -> Result<u64> {
        let dir = self.volume_dir(name).join("_data");
        berth_snapshotter::fsutil::disk_usage(&dir)
            .map(|u| u.size.max(0) as u64)
            .map_err(Error::from)
    }
}

#[cfg(test)]
mod tests;

//! `volume create|ls|inspect|rm|prune`: docker's filters over the volume records, sizes
//! on request, and a `volume` event for every creation and removal.

use std::sync::Arc;

use super::{label_matches, parse_filters};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::journal::{Kind, attrs};
use crate::volumes::{Volume, VolumeCreate};

/// A volume and, when asked, the bytes it holds (-1 when not computed).
pub struct Listed {
    pub volume: Volume,
    pub size: i64,
}

fn size_of(core: &Core, v: &Volume, want: bool) -> i64 {
    if want {
        core.volumes.usage(&v.name).map(|s| s as i64).unwrap_or(-1)
    } else {
        -1
    }
}

/// Creates a volume (an existing one of the name is returned as it is).
pub fn create(core: &Arc<Core>, req: VolumeCreate) -> Result<Volume> {
    let existed = !req.name.is_empty() && core.volumes.get(&req.name).is_ok();
    let v = core.volumes.create(req)?;
    if !existed {
        core.journal.emit(
            "",
            Kind::Volume,
            "create",
            &v.name,
            attrs([("driver", v.driver.as_str())]),
        );
    }
    Ok(v)
}

/// The volumes matching docker's `dangling=`, `name=`, `label=` and `driver=` filters.
pub fn list(core: &Arc<Core>, filters: &[String], sizes: bool) -> Result<Vec<Listed>> {
    let filters = parse_filters(filters, &["dangling", "name", "label", "driver"])?;
    let mut out = Vec::new();
    'volumes: for v in core.volumes.list()? {
        for (k, want) in &filters {
            let ok = match *k {
                "dangling" => match *want {
                    "true" | "1" => v.users.is_empty(),
                    "false" | "0" => !v.users.is_empty(),
                    _ => {
                        return Err(Error::InvalidArgument(format!(
                            "invalid filter 'dangling={want}' (true or false)"
                        )));
                    }
                },
                "name" => v.name.contains(want),
                "label" => label_matches(&v.labels, want),
                _ => v.driver == *want,
            };
            if !ok {
                continue 'volumes;
            }
        }
        let size = size_of(core, &v, sizes);
        out.push(Listed { volume: v, size });
    }
    Ok(out)
}

pub fn inspect(core: &Arc<Core>, name: &str, sizes: bool) -> Result<Listed> {
    let v = core.volumes.get(name)?;
    let size = size_of(core, &v, sizes);
    Ok(Listed { volume: v, size })
}

/// Removes a volume no container uses; with `force` a missing one is no error.
pub fn remove(core: &Arc<Core>, name: &str, force: bool) -> Result<()> {
    match core.volumes.remove(name) {
        Ok(()) => {
            core.journal.emit(
                "",
                Kind::Volume,
                "destroy",
                name,
                attrs([("driver", "local")]),
            );
            Ok(())
        }
        Err(Error::NotFound(_)) if force => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes unused volumes: anonymous ones, or all with `all`, matching `label=` and
/// `label!=` filters.
pub fn prune(core: &Arc<Core>, all: bool, filters: &[String]) -> Result<(Vec<String>, u64)> {
    let filters = parse_filters(filters, &["label", "label!", "all"])?;
    let mut all = all;
    for (k, v) in &filters {
        if *k == "all" {
            all = matches!(*v, "true" | "1");
        }
    }
    let (removed, bytes) = core.volumes.prune(all, |v| {
        !filters.iter().all(|(k, want)| match *k {
            "label" => label_matches(&v.labels, want),
            "label!" => !label_matches(&v.labels, want),
            _ => true,
        })
    })?;
    for name in &removed {
        core.journal.emit(
            "",
            Kind::Volume,
            "destroy",
            name,
            attrs([("driver", "local")]),
        );
    }
    Ok((removed, bytes))
}

//! Domain types of the snapshot model: kinds, info records, usage and mount descriptions.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Labels attached to a snapshot.
pub type Labels = BTreeMap<String, String>;

/// The kind of a snapshot, as in containerd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// A read-only view of a committed parent; cannot be committed.
    View,
    /// A writable snapshot, the only kind that can be committed.
    Active,
    /// An immutable snapshot that can be the parent of others.
    Committed,
}

impl Kind {
    /// Lower-case name as used by containerd's filters (`view`, `active`, `committed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Active => "active",
            Kind::Committed => "committed",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "view" => Ok(Kind::View),
            "active" => Ok(Kind::Active),
            "committed" => Ok(Kind::Committed),
            other => Err(crate::Error::InvalidArgument(format!(
                "unknown snapshot kind {other:?}"
            ))),
        }
    }
}

/// What is known about one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The key (active, view) or name (committed).
    pub name: String,
    /// The committed parent, if any.
    pub parent: Option<String>,
    /// The kind of the snapshot.
    pub kind: Kind,
    /// User labels.
    pub labels: Labels,
    /// When the snapshot was created (for committed ones: committed).
    pub created_at: SystemTime,
    /// When the snapshot's info last changed.
    pub updated_at: SystemTime,
}

/// Resources used by a snapshot's own layer (not its parents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Bytes of disk blocks used.
    pub size: i64,
    /// Number of inodes used.
    pub inodes: i64,
}

/// One mount to perform, in the form of containerd's `types.Mount`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mount {
    /// The mount type: `bind`, `overlay`, ...
    pub kind: String,
    /// The mount source (a directory for bind mounts, `overlay` for overlay).
    pub source: String,
    /// Mount options; flags like `ro`/`rbind` and file-system data like `lowerdir=`.
    pub options: Vec<String>,
}

impl Mount {
    /// A recursive bind mount of `source`, read-only when `read_only` is set.
    pub fn bind(source: impl Into<String>, read_only: bool) -> Self {
        Mount {
            kind: "bind".into(),
            source: source.into(),
            options: vec![if read_only { "ro" } else { "rw" }.into(), "rbind".into()],
        }
    }

    /// True for a bind mount (type `bind`, or an option `bind`/`rbind`).
    pub fn is_bind(&self) -> bool {
        self.kind == "bind" || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }

    /// True when the options ask for a read-only mount.
    pub fn is_read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }

    /// The value of the first `name=value` option, if present.
    pub fn option_value(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find_map(|o| o.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    }
}

//! A lease held for the length of one image operation (pull, load, unpack), so that
//! garbage collection keeps what the operation has written before an image record
//! refers to it. The lease expires after a day should berthd die before deleting it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::core::Core;
use crate::error::Result;
use crate::gc::GC_EXPIRE;
use crate::labels::Labels;

/// How long an abandoned operation lease lives.
const EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// A lease deleted (and a collection scheduled) when dropped.
pub struct OpLease {
    core: Arc<Core>,
    ns: String,
    id: String,
}

impl OpLease {
    pub fn create(core: &Arc<Core>, ns: &str) -> Result<OpLease> {
        let expires = chrono::DateTime::<chrono::Utc>::from(SystemTime::now() + EXPIRY)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let labels: Labels = [(GC_EXPIRE.to_string(), expires)].into_iter().collect();
        let lease = core.metadata.lease_create(ns, "", labels)?;
        Ok(OpLease {
            core: core.clone(),
            ns: ns.to_string(),
            id: lease.id,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for OpLease {
    fn drop(&mut self) {
        if let Err(e) = self.core.metadata.lease_delete(&self.ns, &self.id) {
            tracing::warn!(lease = %self.id, error = %e, "delete the operation lease");
        }
        self.core.gc.trigger().schedule();
    }
}

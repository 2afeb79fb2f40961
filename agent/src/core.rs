//! The daemon's shared state, handed to every service adapter.

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Config;
use crate::containers::Containers;
use crate::error::Result;
use crate::events::Exchange;
use crate::metadata::Metadata;
use crate::namespaces::Namespaces;
use crate::plugins::{self, Plugin};

/// Everything the services reach.
pub struct Core {
    pub config: Config,
    pub metadata: Arc<Metadata>,
    pub events: Exchange,
    pub namespaces: Namespaces,
    pub containers: Containers,
    pub plugins: Vec<Plugin>,
    pub uuid: String,
    pub started_at: SystemTime,
}

impl Core {
    /// Opens the metadata database under the root and assembles the subsystems.
    pub fn open(config: Config) -> Result<Arc<Core>> {
        let metadata = Arc::new(Metadata::open(&config.root.join("meta.redb"))?);
        let events = Exchange::new();
        let uuid = metadata.server_uuid()?;
        Ok(Arc::new(Core {
            namespaces: Namespaces::new(metadata.clone(), events.clone()),
            containers: Containers::new(metadata.clone(), events.clone()),
            plugins: plugins::registry(&config.root),
            metadata,
            events,
            uuid,
            started_at: SystemTime::now(),
            config,
        }))
    }
}

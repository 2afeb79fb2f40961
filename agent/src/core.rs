//! The daemon's shared state, handed to every service adapter.

use std::sync::Arc;
use std::time::SystemTime;

use crate::berth_containers::BerthContainers;
use crate::config::Config;
use crate::containers::{Containers, ContainersGc};
use crate::content::{ContentGc, ContentStore};
use crate::diff::Differ;
use crate::distribution::RegistryClient;
use crate::error::Result;
use crate::events::Exchange;
use crate::gc::{Collector, LeasesGc, Trigger};
use crate::images::{Images, ImagesGc};
use crate::journal::Journal;
use crate::metadata::Metadata;
use crate::namespaces::Namespaces;
use crate::network::Networks;
use crate::plugins::{self, Plugin};
use crate::snapshots::{Snapshots, SnapshotsGc};
use crate::tasks::{ShimCommand, Tasks};
use crate::volumes::Volumes;

/// Everything the services reach.
pub struct Core {
    pub config: Config,
    pub metadata: Arc<Metadata>,
    pub events: Exchange,
    pub namespaces: Namespaces,
    pub containers: Containers,
    pub content: Arc<ContentStore>,
    pub images: Images,
    pub snapshots: Snapshots,
    pub tasks: Tasks,
    pub differ: Differ,
    /// Container networking (bridges, addresses, ports, name resolution).
    pub networks: Arc<Networks>,
    pub volumes: Volumes,
    /// docker-style events (`berthctl events`): recent history and live subscribers.
    pub journal: Journal,
    /// berth's own (docker-style) containers.
    pub berth: BerthContainers,
    /// The registry client of pulls, pushes, searches and logins.
    pub registry: RegistryClient,
    /// Garbage collection; later subsystems register their participants here.
    pub gc: Arc<Collector>,
    pub plugins: Vec<Plugin>,
    pub uuid: String,
    pub started_at: SystemTime,
}

impl Core {
    /// Opens the metadata database and the content store under the root and assembles
    /// the subsystems. The garbage collection scheduler starts with
    /// [`Collector::start`](crate::gc::Collector::start) (the daemon does it).
    pub fn open(config: Config) -> Result<Arc<Core>> {
        let metadata = Arc::new(Metadata::open(&config.root.join("meta.redb"))?);
        let events = Exchange::new();
        let uuid = metadata.server_uuid()?;
        let trigger = Trigger::default();
        let gc = Collector::new(metadata.clone(), config.gc.clone(), trigger.clone());
        let content = ContentStore::open(&config.root, metadata.clone(), events.clone(), trigger)?;
        let snapshots = Snapshots::open(&config.root, metadata.clone(), events.clone())?;
        let differ = Differ::new(content.clone(), config.root.join("tmp"), None);
        let registry = RegistryClient::new(&config.registry)?;
        gc.register(Arc::new(LeasesGc));
        gc.register(Arc::new(ContainersGc));
        gc.register(Arc::new(SnapshotsGc::new(snapshots.clone())));
        gc.register(Arc::new(ImagesGc));
        gc.register(Arc::new(ContentGc::new(
            content.clone(),
            config.gc.ingest_max_age,
        )));
        let containers = Containers::new(metadata.clone(), events.clone());
        let shim = ShimCommand::new(
            crate::tasks::locate_shim(&config.runtime.shim),
            if config.runtime.shim_log_level.is_empty() {
                config.log.level.clone()
            } else {
                config.runtime.shim_log_level.clone()
            },
        );
        let tasks = Tasks::new(
            config.state.clone(),
            shim,
            events.clone(),
            containers.clone(),
            snapshots.clone(),
        );
        let networks = Arc::new(Networks::open(
            metadata.clone(),
            &config.network,
            &config.state.join("network"),
        )?);
        let volumes = Volumes::open(metadata.clone(), &config.root)?;
        let berth =
            BerthContainers::open(metadata.clone(), config.containers.clone(), &config.state)?;
        Ok(Arc::new(Core {
            networks,
            volumes,
            journal: Journal::new(),
            berth,
            namespaces: Namespaces::new(metadata.clone(), events.clone()),
            containers,
            tasks,
            images: Images::new(metadata.clone(), events.clone(), gc.clone()),
            plugins: plugins::registry(&config.root),
            content,
            snapshots,
            differ,
            registry,
            gc,
            metadata,
            events,
            uuid,
            started_at: SystemTime::now(),
            config,
        }))
    }
}

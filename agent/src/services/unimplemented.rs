//! Services whose issues have not landed yet: every method answers `Unimplemented`
//! (the generated default of each method).

use berth_api::containerd::services as cs;

pub struct Snapshots;
pub struct Diff;
pub struct Tasks;

#[tonic::async_trait]
impl cs::snapshots::v1::snapshots_server::Snapshots for Snapshots {}
#[tonic::async_trait]
impl cs::diff::v1::diff_server::Diff for Diff {}
#[tonic::async_trait]
impl cs::tasks::v1::tasks_server::Tasks for Tasks {}

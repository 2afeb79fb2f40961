//! Services whose issues have not landed yet: every method answers `Unimplemented`
//! (the generated default of each method).

use berth_api::containerd::services as cs;

pub struct Tasks;

#[tonic::async_trait]
impl cs::tasks::v1::tasks_server::Tasks for Tasks {}

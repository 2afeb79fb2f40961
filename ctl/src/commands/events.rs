//! `berthctl events`: follows events until interrupted.

use berth_api::containerd::services::events::v1::{SubscribeRequest, events_client::EventsClient};

use crate::global::{Format, GlobalOptions};
use crate::output::time_text;

#[derive(clap::Args)]
pub struct EventsArgs {
    /// Filters in containerd's syntax (e.g. 'topic~="/containers/"', namespace==default);
    /// several filters match when any matches.
    #[arg(short = 'f', long = "filter")]
    filters: Vec<String>,
}

pub async fn run(g: &GlobalOptions, args: EventsArgs) -> anyhow::Result<()> {
    let mut client = EventsClient::new(g.ns_channel().await?);
    let mut stream = client
        .subscribe(SubscribeRequest {
            filters: args.filters,
        })
        .await?
        .into_inner();
    loop {
        let env = tokio::select! {
            m = stream.message() => match m? {
                Some(env) => env,
                None => return Ok(()),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let event = env.event.as_ref().and_then(berth_api::reflect::any_to_json);
        if g.format == Format::Json {
            println!(
                "{}",
                serde_json::json!({
                    "timestamp": time_text(env.timestamp.as_ref()),
                    "namespace": env.namespace,
                    "topic": env.topic,
                    "type": env.event.as_ref().map(|a| a.type_url.clone()),
                    "event": event,
                })
            );
        } else {
            println!(
                "{} {} {} {}",
                time_text(env.timestamp.as_ref()),
                env.namespace,
                env.topic,
                event.map(|e| e.to_string()).unwrap_or_default()
            );
        }
    }
}

//! `berthctl namespace ls|create|rm|label`.

use std::collections::HashMap;

use anyhow::Context;
use berth_api::containerd::services::namespaces::v1::{
    CreateNamespaceRequest, DeleteNamespaceRequest, GetNamespaceRequest, ListNamespacesRequest,
    Namespace, UpdateNamespaceRequest, namespaces_client::NamespacesClient,
};
use clap::Subcommand;
use serde_json::json;

use crate::global::{Format, GlobalOptions};
use crate::output::{labels_text, print_json, print_table, table};

#[derive(Subcommand)]
pub enum NamespaceCommand {
    /// List namespaces.
    #[command(visible_alias = "list")]
    Ls {
        /// Only print names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Create a namespace with optional labels (KEY=VALUE).
    Create { name: String, labels: Vec<String> },
    /// Remove empty namespaces.
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Set labels (KEY=VALUE) on a namespace; KEY= removes one.
    Label { name: String, labels: Vec<String> },
}

fn parse_labels(args: &[String]) -> anyhow::Result<HashMap<String, String>> {
    args.iter()
        .map(|a| {
            let (k, v) = a
                .split_once('=')
                .with_context(|| format!("label {a:?} is not KEY=VALUE"))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Runs the command; the exit code is 1 when some of several names failed.
pub async fn run(g: &GlobalOptions, cmd: NamespaceCommand) -> anyhow::Result<i32> {
    let mut client = NamespacesClient::new(g.ns_channel().await?);
    match cmd {
        NamespaceCommand::Ls { quiet } => {
            let mut list = client
                .list(ListNamespacesRequest::default())
                .await?
                .into_inner()
                .namespaces;
            list.sort_by(|a, b| a.name.cmp(&b.name));
            if g.format == Format::Json {
                let v: Vec<_> = list
                    .iter()
                    .map(|n| json!({"name": n.name, "labels": n.labels}))
                    .collect();
                print_json(&v)?;
                return Ok(0);
            }
            if quiet {
                list.iter().for_each(|n| println!("{}", n.name));
                return Ok(0);
            }
            let mut t = table(&["NAME", "LABELS"]);
            for n in &list {
                t.add_row(vec![n.name.clone(), labels_text(&n.labels)]);
            }
            print_table(&t);
        }
        NamespaceCommand::Create { name, labels } => {
            let labels = parse_labels(&labels)?;
            client
                .create(CreateNamespaceRequest {
                    namespace: Some(Namespace { name, labels }),
                })
                .await?;
        }
        NamespaceCommand::Rm { names } => {
            let mut code = 0;
            for name in names {
                match client
                    .delete(DeleteNamespaceRequest { name: name.clone() })
                    .await
                {
                    Ok(_) => println!("{name}"),
                    Err(e) => {
                        eprintln!("berthctl: remove namespace {name}: {}", e.message());
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        NamespaceCommand::Label { name, labels } => {
            let labels = parse_labels(&labels)?;
            // Make sure it exists first, for a clear error.
            client
                .get(GetNamespaceRequest { name: name.clone() })
                .await?;
            let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
            client
                .update(UpdateNamespaceRequest {
                    namespace: Some(Namespace { name, labels }),
                    update_mask: Some(prost_types::FieldMask { paths }),
                })
                .await?;
        }
    }
    Ok(0)
}

//! `berthctl image inspect`: docker's JSON description of images, or a template over it.

use berth_api::berth::v1::{ImageInspect, InspectImageRequest};
use serde_json::{Map, Value, json};

use super::client;
use crate::global::{Format, GlobalOptions};
use crate::output::{nanos, rfc3339};
use crate::template::Template;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// A Go-style template over the JSON (`{{.Config.Cmd}}`).
    #[arg(short = 'f')]
    template: Option<String>,
    /// Names or IDs.
    #[arg(required = true)]
    images: Vec<String>,
}

fn list_or_null(v: &[String]) -> Value {
    if v.is_empty() { Value::Null } else { json!(v) }
}

fn set_or_null(v: &[String]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        Value::Object(v.iter().map(|k| (k.clone(), json!({}))).collect())
    }
}

/// The JSON docker shows for an image, with berth's extra facts under `Berth`.
pub fn to_json(i: &ImageInspect) -> Value {
    let c = i.config.clone().unwrap_or_default();
    let mut config = Map::new();
    config.insert("User".into(), json!(c.user));
    config.insert("ExposedPorts".into(), set_or_null(&c.exposed_ports));
    config.insert("Env".into(), list_or_null(&c.env));
    config.insert("Cmd".into(), list_or_null(&c.cmd));
    config.insert("Entrypoint".into(), list_or_null(&c.entrypoint));
    config.insert("Volumes".into(), set_or_null(&c.volumes));
    config.insert("WorkingDir".into(), json!(c.working_dir));
    config.insert(
        "Labels".into(),
        if c.labels.is_empty() {
            Value::Null
        } else {
            let mut l: Vec<_> = c.labels.iter().collect();
            l.sort();
            Value::Object(l.into_iter().map(|(k, v)| (k.clone(), json!(v))).collect())
        },
    );
    if !c.stop_signal.is_empty() {
        config.insert("StopSignal".into(), json!(c.stop_signal));
    }
    if !c.shell.is_empty() {
        config.insert("Shell".into(), json!(c.shell));
    }
    if c.args_escaped {
        config.insert("ArgsEscaped".into(), json!(true));
    }
    if let Ok(Value::Object(extra)) = serde_json::from_str::<Value>(&c.extra_json) {
        for (k, v) in extra {
            config.entry(k).or_insert(v);
        }
    }
    let mut v = Map::new();
    v.insert("Id".into(), json!(i.id));
    v.insert("RepoTags".into(), json!(i.repo_tags));
    v.insert("RepoDigests".into(), json!(i.repo_digests));
    v.insert("Parent".into(), json!(i.parent));
    v.insert("Comment".into(), json!(i.comment));
    v.insert("Created".into(), json!(rfc3339(nanos(i.created.as_ref()))));
    v.insert("DockerVersion".into(), json!(i.docker_version));
    v.insert("Author".into(), json!(i.author));
    v.insert("Config".into(), Value::Object(config));
    v.insert("Architecture".into(), json!(i.architecture));
    if !i.variant.is_empty() {
        v.insert("Variant".into(), json!(i.variant));
    }
    v.insert("Os".into(), json!(i.os));
    if !i.os_version.is_empty() {
        v.insert("OsVersion".into(), json!(i.os_version));
    }
    v.insert("Size".into(), json!(i.size));
    v.insert(
        "GraphDriver".into(),
        json!({
            "Name": i.snapshotter,
            "Data": if i.snapshot.is_empty() { Value::Null } else { json!({"Snapshot": i.snapshot}) },
        }),
    );
    v.insert(
        "RootFS".into(),
        json!({"Type": i.rootfs_type, "Layers": i.rootfs_layers}),
    );
    v.insert(
        "Metadata".into(),
        json!({"LastTagTime": rfc3339(nanos(i.last_tag_time.as_ref()))}),
    );
    v.insert(
        "Berth".into(),
        json!({
            "Target": {"Digest": i.target_digest, "MediaType": i.target_media_type},
            "Manifest": i.manifest_digest,
            "ConfigMediaType": i.config_media_type,
            "ContentSize": i.content_size,
            "UnpackedSize": i.unpacked_size,
            "Labels": i.image_labels,
        }),
    );
    Value::Object(v)
}

pub async fn run(g: &GlobalOptions, a: InspectArgs) -> anyhow::Result<i32> {
    let template = match (a.template, &g.format) {
        (Some(t), _) => Some(Template::parse(&t)?),
        (None, Format::Template(t)) => Some(Template::parse(t)?),
        _ => None,
    };
    let mut c = client(g).await?;
    let mut found = Vec::new();
    let mut code = 0;
    for name in &a.images {
        match c.inspect(InspectImageRequest { name: name.clone() }).await {
            Ok(r) => {
                if let Some(i) = r.into_inner().image {
                    found.push(to_json(&i));
                }
            }
            Err(e) if e.code() == tonic::Code::NotFound => {
                eprintln!("Error: No such image: {name}");
                code = 1;
            }
            Err(e) => {
                eprintln!("{}", crate::output::daemon_error(&e));
                code = 1;
            }
        }
    }
    match template {
        Some(t) => {
            for v in &found {
                println!("{}", t.render(v)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&found)?),
    }
    Ok(code)
}

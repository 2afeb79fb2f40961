//! The image of a container: finding what the user named (a name, an ID or an ID
//! prefix) and merging the image's run config into the container's config as docker
//! does (env by key, cmd and entrypoint, working dir, user, ports, volumes, labels,
//! stop signal).

use std::sync::Arc;

use super::model::{ContainerConfig, Empty};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::images::catalog;
use crate::images::config::RunConfig;
use crate::images::content::PlatformImage;

/// An image found for a container.
pub struct FoundImage {
    /// The image record's name (what containerd's record and image removal use).
    pub record_name: String,
    /// `sha256:<config digest>`.
    pub id: String,
    pub image: PlatformImage,
}

/// Finds the image `input` names in `ns`, read for the host platform.
pub async fn find(core: &Arc<Core>, ns: &str, input: &str) -> Result<FoundImage> {
    let found = catalog::find(core, ns, input).await?;
    let image = found.group.image().cloned().ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "image {input}: its content is not (all) in the store; pull it again"
        ))
    })?;
    let record_name = match found.named {
        Some(n) => n,
        None => found
            .group
            .names()
            .into_iter()
            .next()
            .or_else(|| found.group.entries.first().map(|e| e.record.name.clone()))
            .unwrap_or_default(),
    };
    Ok(FoundImage {
        record_name,
        id: image.id().to_string(),
        image,
    })
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map(|(k, _)| k).unwrap_or(e)
}

/// Env of the image with the container's on top (same key: the container's wins).
pub fn merge_env(image: &[String], own: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(image.len() + own.len());
    for e in image.iter().chain(own) {
        match out.iter_mut().find(|x| env_key(x) == env_key(e)) {
            Some(slot) => *slot = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

/// Fills `config` (the request) from the image's run config. `entrypoint_set` says the
/// request gave an entrypoint (maybe empty): then the image's cmd is not used either.
pub fn merge(config: &mut ContainerConfig, image: &RunConfig, entrypoint_set: bool) {
    config.env = merge_env(image.env.as_deref().unwrap_or_default(), &config.env);
    if !entrypoint_set {
        config.entrypoint = image.entrypoint.clone().unwrap_or_default();
        if config.cmd.is_empty() {
            config.cmd = image.cmd.clone().unwrap_or_default();
        }
    }
    if config.working_dir.is_empty() {
        config.working_dir = image.working_dir.clone().unwrap_or_default();
    }
    if config.user.is_empty() {
        config.user = image.user.clone().unwrap_or_default();
    }
    for p in image.exposed_ports.iter().flat_map(|m| m.keys()) {
        config.exposed_ports.entry(p.clone()).or_insert(Empty {});
    }
    for v in image.volumes.iter().flat_map(|m| m.keys()) {
        config.volumes.entry(v.clone()).or_insert(Empty {});
    }
    if let Some(labels) = &image.labels {
        for (k, v) in labels {
            config.labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if config.stop_signal.is_empty() {
        config.stop_signal = image.stop_signal.clone().unwrap_or_default();
    }
}

/// The process's path and arguments: the entrypoint followed by the cmd.
pub fn command(config: &ContainerConfig) -> Result<(String, Vec<String>)> {
    let mut all = config.entrypoint.iter().chain(&config.cmd).cloned();
    let path = all.next().ok_or_else(|| {
        Error::InvalidArgument(
            "no command specified: the image has no Cmd or Entrypoint; give one".into(),
        )
    })?;
    Ok((path, all.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> RunConfig {
        RunConfig {
            env: Some(vec!["PATH=/bin".into(), "A=image".into()]),
            cmd: Some(vec!["sh".into()]),
            entrypoint: Some(vec!["/init".into()]),
            working_dir: Some("/srv".into()),
            user: Some("www".into()),
            exposed_ports: Some([("80/tcp".to_string(), serde_json::json!({}))].into()),
            volumes: Some([("/data".to_string(), serde_json::json!({}))].into()),
            labels: Some([("l".to_string(), "image".to_string())].into()),
            stop_signal: Some("SIGQUIT".into()),
            ..Default::default()
        }
    }

    #[test]
    fn image_defaults_fill_the_gaps() {
        let mut c = ContainerConfig {
            env: vec!["A=mine".into(), "B=2".into()],
            labels: [("l".to_string(), "mine".to_string())].into(),
            ..Default::default()
        };
        merge(&mut c, &image(), false);
        assert_eq!(c.env, ["PATH=/bin", "A=mine", "B=2"]);
        assert_eq!(c.entrypoint, ["/init"]);
        assert_eq!(c.cmd, ["sh"]);
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.user, "www");
        assert!(c.exposed_ports.contains_key("80/tcp"));
        assert!(c.volumes.contains_key("/data"));
        assert_eq!(c.labels["l"], "mine");
        assert_eq!(c.stop_signal, "SIGQUIT");
        assert_eq!(
            command(&c).unwrap(),
            ("/init".to_string(), vec!["sh".to_string()])
        );
    }

    #[test]
    fn flags_win() {
        let mut c = ContainerConfig {
            cmd: vec!["echo".into(), "hi".into()],
            working_dir: "/tmp".into(),
            user: "0".into(),
            stop_signal: "SIGINT".into(),
            ..Default::default()
        };
        merge(&mut c, &image(), false);
        assert_eq!(c.cmd, ["echo", "hi"]);
        assert_eq!(c.entrypoint, ["/init"]);
        assert_eq!((c.working_dir.as_str(), c.user.as_str()), ("/tmp", "0"));
        assert_eq!(c.stop_signal, "SIGINT");
    }

    #[test]
    fn an_entrypoint_drops_the_image_cmd() {
        let mut c = ContainerConfig {
            entrypoint: vec!["date".into()],
            ..Default::default()
        };
        merge(&mut c, &image(), true);
        assert_eq!(c.entrypoint, ["date"]);
        assert!(c.cmd.is_empty());
        let mut c = ContainerConfig::default();
        merge(&mut c, &image(), true);
        let err = command(&c).unwrap_err().to_string();
        assert!(err.contains("no command specified"), "{err}");
    }
}

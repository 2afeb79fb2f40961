//! Pushing an image to the registry its name points at: layers and config (skipped when
//! the registry has them, mounted from another repository of the same registry when the
//! content came from there), then the manifest by tag. An index is pushed whole when
//! every manifest it lists is here, else only the host platform's manifest.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::content::{Descriptor, Digest};
use crate::core::Core;
use crate::distribution::media::MAX_MANIFEST_SIZE;
use crate::distribution::{Credentials, FileSource, PushOutcome, Reference, Repository};
use crate::error::{Error, Result};
use crate::images::content::{self as ic, LABEL_SOURCE, to_dist, to_store};
use crate::images::progress::{Event, LayerStatus, Progress, Pushed};
use crate::labels::Labels;

/// Blobs uploaded at once (docker's default).
pub const MAX_UPLOADS: usize = 5;

/// Pushes the image named `reference` (the default tag is `latest`).
pub async fn push(
    core: &Arc<Core>,
    ns: &str,
    reference: &str,
    credentials: Option<Credentials>,
    progress: &Progress,
) -> Result<Pushed> {
    let r = Reference::parse(reference)?;
    let name = r.to_string();
    let record = match crate::images::catalog::record_name(core, ns, reference)? {
        Some(n) => core.images.get(ns, &n)?,
        None => {
            return Err(Error::Missing(format!(
                "An image does not exist locally with the tag: {}",
                r.familiar()
            )));
        }
    };
    let repo = core.registry.repository(&r, credentials);
    progress
        .status(format!(
            "The push refers to repository [{}]",
            r.familiar_name()
        ))
        .await;
    let target = record.target.clone();
    let (doc, data) = ic::read_document(&core.content, ns, &target).await?;
    let (pushed_desc, pushed_data) = match doc {
        crate::distribution::Document::Manifest(_) => {
            push_manifest_content(core, ns, &repo, &target, progress).await?;
            (target.clone(), Bytes::from(data))
        }
        crate::distribution::Document::Index(index) => {
            let all_here = index.manifests.iter().all(|m| {
                Digest::parse(&m.digest.to_string())
                    .and_then(|d| core.content.exists(ns, &d))
                    .unwrap_or(false)
            });
            if all_here {
                for m in &index.manifests {
                    let d = to_store(m)?;
                    if matches!(
                        crate::distribution::media::classify(&d.media_type),
                        Ok(crate::distribution::media::Kind::Manifest)
                    ) {
                        push_manifest_content(core, ns, &repo, &d, progress).await?;
                        let bytes = core
                            .content
                            .read_all(ns, &d.digest, MAX_MANIFEST_SIZE as i64)
                            .await?;
                        repo.push_manifest(d.digest.as_str(), &d.media_type, Bytes::from(bytes))
                            .await?;
                    }
                }
                (target.clone(), Bytes::from(data))
            } else {
                let chosen = ic::choose_manifest(&core.content, ns, &index, None, &name)?;
                let d = to_store(&chosen)?;
                progress
                    .status(format!(
                        "Pushing only the manifest for {}: the other platforms of the index are not here",
                        chosen
                            .platform
                            .as_ref()
                            .map(|p| format!("{}/{}", p.os, p.architecture))
                            .unwrap_or_else(|| "this platform".into())
                    ))
                    .await;
                push_manifest_content(core, ns, &repo, &d, progress).await?;
                let bytes = core
                    .content
                    .read_all(ns, &d.digest, MAX_MANIFEST_SIZE as i64)
                    .await?;
                (d, Bytes::from(bytes))
            }
        }
    };
    let tag = r.tag().unwrap_or("latest").to_string();
    let object = match r.digest() {
        Some(d) => d.to_string(),
        None => tag.clone(),
    };
    repo.push_manifest(&object, &pushed_desc.media_type, pushed_data)
        .await?;
    // The registry now has the target: the repo digest shows in `images --digests`.
    let mut l = Labels::new();
    ic::add_source(&mut l, r.registry(), r.repository());
    add_labels(core, ns, &pushed_desc.digest, &l);
    if pushed_desc.digest != target.digest {
        add_labels(core, ns, &target.digest, &l);
    }
    progress
        .status(format!(
            "{tag}: digest: {} size: {}",
            pushed_desc.digest, pushed_desc.size
        ))
        .await;
    let pushed = Pushed {
        name,
        tag,
        digest: pushed_desc.digest.clone(),
        size: pushed_desc.size,
    };
    progress.send(Event::Pushed(pushed.clone())).await;
    Ok(pushed)
}

fn add_labels(core: &Core, ns: &str, digest: &Digest, labels: &Labels) {
    let Ok(info) = core.content.info(ns, digest) else {
        return;
    };
    let mut merged = Labels::new();
    for (k, v) in labels {
        let mut cur = Labels::new();
        if let Some(old) = info.labels.get(k) {
            cur.insert(k.clone(), old.clone());
        }
        let host = &k[LABEL_SOURCE.len()..];
        for repo in v.split(',') {
            ic::add_source(&mut cur, host, repo);
        }
        merged.extend(cur);
    }
    let paths: Vec<String> = merged.keys().map(|k| format!("labels.{k}")).collect();
    if let Err(e) = core.content.update(ns, digest, &merged, &paths) {
        tracing::warn!(digest = %digest, error = %e, "label pushed content");
    }
}

/// Pushes the config and layers of manifest `desc` (not the manifest itself).
async fn push_manifest_content(
    core: &Arc<Core>,
    ns: &str,
    repo: &Repository,
    desc: &Descriptor,
    progress: &Progress,
) -> Result<()> {
    let (doc, _) = ic::read_document(&core.content, ns, desc).await?;
    let crate::distribution::Document::Manifest(m) = doc else {
        return Err(Error::Unimplemented(format!(
            "index {} lists another index; nested indexes are not supported",
            desc.digest
        )));
    };
    let mut blobs = Vec::new();
    for l in &m.layers {
        blobs.push((to_store(l)?, true));
    }
    blobs.push((to_store(&m.config)?, false));
    for (b, layer) in &blobs {
        if !core.content.exists(ns, &b.digest)? {
            return Err(Error::NotFound(format!(
                "{} {} of image {} is not in the content store; pull the image again",
                if *layer { "layer" } else { "config" },
                b.digest,
                desc.digest
            )));
        }
        if *layer {
            progress
                .layer(&b.digest, LayerStatus::Preparing, 0, b.size)
                .await;
        }
    }
    let sem = Arc::new(Semaphore::new(MAX_UPLOADS));
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    for (b, layer) in blobs {
        let (core, ns, repo, progress, sem) = (
            core.clone(),
            ns.to_string(),
            repo.clone(),
            progress.clone(),
            sem.clone(),
        );
        tasks.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .map_err(|_| Error::Internal("upload queue closed".into()))?;
            let info = core.content.info(&ns, &b.digest)?;
            // A repository of the same registry the blob came from can lend it.
            let key = format!("{LABEL_SOURCE}{}", repo.registry());
            let from = info.labels.get(&key).and_then(|v| {
                v.split(',')
                    .find(|r| *r != repo.repository())
                    .map(str::to_string)
            });
            if layer {
                progress
                    .layer(&b.digest, LayerStatus::Pushing, 0, b.size)
                    .await;
            }
            let source = FileSource(core.content.blob_path(&b.digest));
            let outcome = repo
                .push_blob(&to_dist(&b)?, &source, from.as_deref())
                .await?;
            let mut l = Labels::new();
            ic::add_source(&mut l, repo.registry(), repo.repository());
            add_labels(&core, &ns, &b.digest, &l);
            if layer {
                let status = match outcome {
                    PushOutcome::Exists => LayerStatus::LayerAlreadyExists,
                    PushOutcome::Mounted => LayerStatus::Mounted,
                    PushOutcome::Uploaded => LayerStatus::Pushed,
                };
                progress.layer(&b.digest, status, b.size, b.size).await;
                if outcome == PushOutcome::Mounted
                    && let Some(f) = from
                {
                    progress.status(format!("Mounted from {f}")).await;
                }
            }
            Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| Error::Internal(format!("upload task: {e}")))??;
    }
    Ok(())
}

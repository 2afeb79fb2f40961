//! What berthd is made of, as containerd's introspection describes it: one entry per
//! plugin (type, id, requirements, exports). Parts whose issues have not landed carry an
//! init error so `ctr plugins ls` shows them as not working rather than pretending.

use std::collections::BTreeMap;

/// One plugin.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub kind: &'static str,
    pub id: &'static str,
    pub requires: Vec<&'static str>,
    pub platforms: Vec<(&'static str, &'static str)>,
    pub exports: BTreeMap<String, String>,
    pub capabilities: Vec<&'static str>,
    /// Why the plugin is unavailable, if it is.
    pub init_err: Option<String>,
}

impl Plugin {
    fn new(kind: &'static str, id: &'static str) -> Self {
        Plugin {
            kind,
            id,
            requires: Vec::new(),
            platforms: Vec::new(),
            exports: BTreeMap::new(),
            capabilities: Vec::new(),
            init_err: None,
        }
    }

    fn requires(mut self, r: &[&'static str]) -> Self {
        self.requires = r.to_vec();
        self
    }

    fn export(mut self, k: &str, v: impl Into<String>) -> Self {
        self.exports.insert(k.into(), v.into());
        self
    }

    fn unavailable(mut self, why: &str) -> Self {
        self.init_err = Some(why.into());
        self
    }
}

impl crate::filters::Adaptor for Plugin {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first()?.as_str() {
            "type" => Some(self.kind.to_string()),
            "id" => Some(self.id.to_string()),
            "capabilities" => Some(self.capabilities.join(",")).filter(|s| !s.is_empty()),
            "exports" => self.exports.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

/// The overlayfs snapshotter works only where the kernel has overlayfs.
fn overlay_checked(p: Plugin) -> Plugin {
    let known = std::fs::read_to_string("/proc/filesystems")
        .map(|t| {
            t.lines()
                .any(|l| l.split_whitespace().last() == Some("overlay"))
        })
        .unwrap_or(false);
    if known || std::path::Path::new("/sys/module/overlay").exists() {
        p
    } else {
        p.unavailable("the kernel has no overlay file system; use the native snapshotter")
    }
}

/// The plugins of this berthd.
pub fn registry(root: &std::path::Path) -> Vec<Plugin> {
    let grpc = "io.containerd.grpc.v1";
    let service = "io.containerd.service.v1";
    vec![
        Plugin::new("io.containerd.content.v1", "content")
            .export("root", root.join("content").display().to_string()),
        overlay_checked(
            Plugin::new("io.containerd.snapshotter.v1", "overlayfs").export(
                "root",
                root.join("snapshots/overlayfs").display().to_string(),
            ),
        ),
        Plugin::new("io.containerd.snapshotter.v1", "native")
            .export("root", root.join("snapshots/native").display().to_string()),
        Plugin::new("io.containerd.metadata.v1", "redb")
            .export("path", root.join("meta.redb").display().to_string()),
        Plugin::new("io.containerd.event.v1", "exchange"),
        Plugin::new("io.containerd.gc.v1", "scheduler").requires(&["io.containerd.metadata.v1"]),
        Plugin::new(service, "namespaces-service").requires(&["io.containerd.metadata.v1"]),
        Plugin::new(service, "leases-service").requires(&["io.containerd.metadata.v1"]),
        Plugin::new(service, "content-service")
            .requires(&["io.containerd.content.v1", "io.containerd.metadata.v1"]),
        Plugin::new(service, "images-service")
            .requires(&["io.containerd.metadata.v1", "io.containerd.gc.v1"]),
        Plugin::new(grpc, "version"),
        Plugin::new(grpc, "introspection"),
        Plugin::new(grpc, "namespaces").requires(&[service]),
        Plugin::new(grpc, "leases").requires(&[service]),
        Plugin::new(grpc, "events").requires(&["io.containerd.event.v1"]),
        Plugin::new(grpc, "content").requires(&[service]),
        Plugin::new(grpc, "images").requires(&[service]),
        Plugin::new(grpc, "snapshots").requires(&[service]),
        Plugin::new(grpc, "diff").requires(&[service]),
        Plugin::new(grpc, "containers").requires(&[service]),
        Plugin::new(grpc, "tasks").requires(&[service]),
        Plugin::new("io.containerd.runtime.v2", "task").requires(&["io.containerd.metadata.v1"]),
        Plugin::new("berth.grpc.v1", "system"),
    ]
    .into_iter()
    .map(|mut p| {
        if p.kind.starts_with("io.containerd.snapshotter") {
            p.platforms = vec![("linux", std::env::consts::ARCH)];
        }
        p
    })
    .collect()
}

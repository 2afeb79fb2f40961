//! Progress of pulls and pushes as a stream of events for the client: per-layer status
//! and byte counts (byte updates throttled and dropped when the client lags), lines of
//! text, and the final image.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::content::Digest;

/// What a layer (or blob) is doing, with docker's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerStatus {
    Waiting,
    PullingFsLayer,
    Downloading,
    VerifyingChecksum,
    DownloadComplete,
    Extracting,
    PullComplete,
    AlreadyExists,
    Preparing,
    Pushing,
    Pushed,
    LayerAlreadyExists,
    Mounted,
}

impl LayerStatus {
    /// docker's words for the status.
    pub fn text(self) -> &'static str {
        match self {
            LayerStatus::Waiting => "Waiting",
            LayerStatus::PullingFsLayer => "Pulling fs layer",
            LayerStatus::Downloading => "Downloading",
            LayerStatus::VerifyingChecksum => "Verifying Checksum",
            LayerStatus::DownloadComplete => "Download complete",
            LayerStatus::Extracting => "Extracting",
            LayerStatus::PullComplete => "Pull complete",
            LayerStatus::AlreadyExists => "Already exists",
            LayerStatus::Preparing => "Preparing",
            LayerStatus::Pushing => "Pushing",
            LayerStatus::Pushed => "Pushed",
            LayerStatus::LayerAlreadyExists => "Layer already exists",
            LayerStatus::Mounted => "Mounted",
        }
    }
}

/// A pulled image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The normalised name.
    pub name: String,
    /// The manifest or index digest.
    pub digest: Digest,
    /// The config digest.
    pub id: Digest,
    /// False when the name already pointed at this content.
    pub updated: bool,
}

/// A pushed image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub name: String,
    pub tag: String,
    pub digest: Digest,
    pub size: i64,
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Layer {
        digest: Digest,
        status: LayerStatus,
        current: i64,
        total: i64,
    },
    Status(String),
    Pulled(Pulled),
    Pushed(Pushed),
}

/// Where progress goes. Status changes wait for room; byte counts are dropped when the
/// receiver lags. A closed receiver (the client went away) is ignored: the work goes on.
#[derive(Clone)]
pub struct Progress {
    tx: Option<mpsc::Sender<Event>>,
}

/// How often byte counts of one layer are sent at most.
const BYTES_INTERVAL: Duration = Duration::from_millis(100);

impl Progress {
    /// Progress into `tx`.
    pub fn new(tx: mpsc::Sender<Event>) -> Progress {
        Progress { tx: Some(tx) }
    }

    /// Progress nobody reads.
    pub fn none() -> Progress {
        Progress { tx: None }
    }

    pub async fn send(&self, e: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(e).await;
        }
    }

    pub async fn status(&self, text: impl Into<String>) {
        self.send(Event::Status(text.into())).await;
    }

    pub async fn layer(&self, digest: &Digest, status: LayerStatus, current: i64, total: i64) {
        self.send(Event::Layer {
            digest: digest.clone(),
            status,
            current,
            total,
        })
        .await;
    }

    /// A byte count, sent only when there is room.
    pub fn bytes(&self, digest: &Digest, status: LayerStatus, current: i64, total: i64) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(Event::Layer {
                digest: digest.clone(),
                status,
                current,
                total,
            });
        }
    }
}

/// Rate-limits the byte counts of one blob.
pub struct Ticker {
    last: Option<Instant>,
}

impl Ticker {
    pub fn new() -> Ticker {
        Ticker { last: None }
    }

    /// True when an update is due.
    pub fn due(&mut self) -> bool {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < BYTES_INTERVAL => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

impl Default for Ticker {
    fn default() -> Self {
        Ticker::new()
    }
}

//! Showing pull and push progress: one progress bar per layer when stdout is a
//! terminal, otherwise one line per layer status change (docker's two modes).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use berth_api::berth::v1::LayerProgress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where layer progress and status lines go.
pub struct Display {
    quiet: bool,
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
    last: HashMap<String, String>,
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix}: {msg:<12} [{bar:40}] {decimal_bytes:>8}/{decimal_total_bytes}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn text_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Display {
    /// Bars when stdout is a terminal, lines otherwise; nothing at all with `quiet`.
    pub fn new(quiet: bool) -> Display {
        let multi = (!quiet && std::io::stdout().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Display {
            quiet,
            multi,
            bars: HashMap::new(),
            last: HashMap::new(),
        }
    }

    /// A line of text.
    pub fn status(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => println!("{text}"),
        }
    }

    /// A layer's progress.
    pub fn layer(&mut self, l: &LayerProgress) {
        if self.quiet {
            return;
        }
        let Some(multi) = &self.multi else {
            if self.last.get(&l.id) != Some(&l.status) {
                println!("{}: {}", l.id, l.status);
                self.last.insert(l.id.clone(), l.status.clone());
            }
            return;
        };
        let bar = self.bars.entry(l.id.clone()).or_insert_with(|| {
            let b = multi.add(ProgressBar::new(l.total.max(0) as u64));
            b.set_style(text_style());
            b.set_prefix(l.id.clone());
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        let moving = matches!(l.status.as_str(), "Downloading" | "Extracting" | "Pushing")
            && l.total > 0
            && l.current < l.total;
        if moving {
            if self.last.get(&l.id).map(String::as_str) != Some(l.status.as_str()) {
                bar.set_style(bar_style());
            }
            bar.set_length(l.total as u64);
            bar.set_position(l.current.max(0) as u64);
        } else if self.last.get(&l.id) != Some(&l.status) {
            bar.set_style(text_style());
        }
        bar.set_message(l.status.clone());
        self.last.insert(l.id.clone(), l.status.clone());
    }

    /// Stops the bars, leaving their last state on screen.
    pub fn finish(&mut self) {
        for (_, b) in self.bars.drain() {
            b.disable_steady_tick();
            b.abandon();
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.finish();
    }
}

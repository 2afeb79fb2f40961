//! Side-by-side measurements: the same scenario against berthd and against containerd
//! (+ runc) in one run, reported as medians and berth/containerd ratios. Numbers drift
//! with machine load, ratios much less; no test asserts on them.

use std::time::{Duration, Instant};

/// Timings of repeated runs of one scenario on one daemon.
#[derive(Debug, Clone)]
pub struct Samples(pub Vec<Duration>);

impl Samples {
    /// Runs `f` `warmup` times unmeasured, then `n` times measured.
    pub fn measure(warmup: usize, n: usize, mut f: impl FnMut()) -> Samples {
        for _ in 0..warmup {
            f();
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            f();
            v.push(t.elapsed());
        }
        Samples(v)
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.0.clone();
        v.sort();
        v
    }

    /// The median (upper median for even counts).
    pub fn median(&self) -> Duration {
        let v = self.sorted();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }

    /// The 90th percentile.
    pub fn p90(&self) -> Duration {
        let v = self.sorted();
        v.get((v.len() * 9 / 10).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }
}

/// One line of the report: a scenario measured on both, with berth's target ratio.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub berth: String,
    pub containerd: String,
    pub ratio: f64,
    pub target: Option<f64>,
}

impl Row {
    /// A row from two timing sets (ratio of medians).
    pub fn timing(
        scenario: &str,
        berth: &Samples,
        containerd: &Samples,
        target: Option<f64>,
    ) -> Row {
        let fmt = |s: &Samples| format!("{:.1} ms (p90 {:.1})", ms(s.median()), ms(s.p90()));
        Row {
            scenario: scenario.into(),
            berth: fmt(berth),
            containerd: fmt(containerd),
            ratio: ms(berth.median()) / ms(containerd.median()).max(f64::MIN_POSITIVE),
            target,
        }
    }

    /// A row from two quantities in the same unit.
    pub fn quantity(
        scenario: &str,
        unit: &str,
        berth: f64,
        containerd: f64,
        target: Option<f64>,
    ) -> Row {
        Row {
            scenario: scenario.into(),
            berth: format!("{berth:.2} {unit}"),
            containerd: format!("{containerd:.2} {unit}"),
            ratio: berth / containerd.max(f64::MIN_POSITIVE),
            target,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints the report as an aligned table.
pub fn print(rows: &[Row]) {
    let header = ["scenario", "berth", "containerd", "ratio", "target"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let target = match r.target {
                Some(t) => format!("<= {t:.2}x {}", if r.ratio <= t { "met" } else { "MISSED" }),
                None => "-".into(),
            };
            [
                r.scenario.clone(),
                r.berth.clone(),
                r.containerd.clone(),
                format!("{:.2}x", r.ratio),
                target,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for c in &cells {
        for (w, s) in widths.iter_mut().zip(c) {
            *w = (*w).max(s.len());
        }
    }
    let line = |c: &[String]| {
        c.iter()
            .zip(widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect::<Vec<_>>()
            .join("   ")
    };
    println!("{}", line(&header.map(String::from)).trim_end());
    for c in &cells {
        println!("{}", line(c).trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let s = Samples((1..=10).map(Duration::from_millis).collect());
        assert_eq!(s.median(), Duration::from_millis(6));
        assert_eq!(s.p90(), Duration::from_millis(10));
        let r = Row::timing(
            "x",
            &s,
            &Samples(vec![Duration::from_millis(12)]),
            Some(0.5),
        );
        assert!((r.ratio - 0.5).abs() < 1e-9);
    }
}

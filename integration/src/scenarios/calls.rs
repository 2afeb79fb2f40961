//! Where berthd's time goes: the per-call durations berthd logs at debug level
//! (`method=… elapsed_us=…`, one line per gRPC call), summarised per method as count,
//! median and p90 once the scenarios ran. Informational only; no target applies.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::bench::Samples;

/// (method, samples) for every method found in `log`, sorted by total time, largest
/// first.
pub fn summarise(log: &str) -> Vec<(String, Samples)> {
    let mut by: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for line in log.lines() {
        let (Some(method), Some(us)) = (field(line, "method="), field(line, "elapsed_us=")) else {
            continue;
        };
        let Ok(us) = us.parse::<u64>() else { continue };
        by.entry(method.to_string())
            .or_default()
            .push(Duration::from_micros(us));
    }
    let mut out: Vec<(String, Samples)> = by.into_iter().map(|(m, v)| (m, Samples(v))).collect();
    out.sort_by_key(|(_, s)| std::cmp::Reverse(s.0.iter().sum::<Duration>()));
    out
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(name)? + name.len();
    let rest = &line[at..];
    Some(rest.split_whitespace().next()?.trim_matches('"'))
}

/// Prints the summary as a table.
pub fn print(calls: &[(String, Samples)]) {
    println!("berthd calls (from its debug log)");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (method, s) in calls {
        println!(
            "  {method:<58} n={:<4} median {:>7.2} ms   p90 {:>7.2} ms",
            s.0.len(),
            ms(s.median()),
            ms(s.p90())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_log_lines() {
        let log = "2026-01-01T00:00:00Z DEBUG berth_agent::services::timing: call method=/a.B/C elapsed_us=1500\n\
                   2026-01-01T00:00:00Z DEBUG berth_agent::services::timing: call method=/a.B/C elapsed_us=500\n\
                   noise\n";
        let s = summarise(log);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, "/a.B/C");
        assert_eq!(s[0].1.0.len(), 2);
    }
}

//! The status text `ps` shows ("Up 5 minutes", "Exited (0) 3 seconds ago"), computed
//! by the daemon as docker's is.

use super::model::{Record, Status};

/// docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let minutes = secs / 60;
    let hours = minutes / 60;
    match secs {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

fn since(then: i64, now: i64) -> String {
    human_duration((now - then).max(0) / 1_000_000_000)
}

/// The `STATUS` column of a container at `now` (Unix nanoseconds).
pub fn text(rec: &Record, now: i64) -> String {
    let s = &rec.state;
    match s.status {
        Status::Running => format!("Up {}", since(s.started_at, now)),
        Status::Paused => format!("Up {} (Paused)", since(s.started_at, now)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            since(s.finished_at, now)
        ),
        Status::Exited if s.finished_at > 0 => {
            format!("Exited ({}) {} ago", s.exit_code, since(s.finished_at, now))
        }
        Status::Exited => format!("Exited ({})", s.exit_code),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_docker() {
        let sec = 1_000_000_000i64;
        let mut r = Record::default();
        assert_eq!(text(&r, 0), "Created");
        r.state.status = Status::Running;
        r.state.started_at = 100 * sec;
        assert_eq!(text(&r, 100 * sec), "Up Less than a second");
        assert_eq!(text(&r, 190 * sec), "Up About a minute");
        r.state.status = Status::Paused;
        assert_eq!(text(&r, 400 * sec), "Up 5 minutes (Paused)");
        r.state.status = Status::Exited;
        r.state.exit_code = 3;
        r.state.finished_at = 500 * sec;
        assert_eq!(text(&r, 502 * sec), "Exited (3) 2 seconds ago");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
    }
}

//! `top`: the processes of a running container (the task's PIDs from its shim), as
//! docker shows them. Without options the columns of `ps -ef` (UID PID PPID C STIME TTY
//! TIME CMD) are read from the host's `/proc`; with options the host's `ps` is run with
//! them and its lines for the container's PIDs are kept, as docker does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::berth_containers::Status;
use crate::core::Core;
use crate::error::{Error, Result};

/// A process table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// The processes of the container `input`.
pub async fn top(core: &Arc<Core>, ns: &str, input: &str, ps_args: &[String]) -> Result<Top> {
    let rec = core.berth.store.resolve(ns, input)?;
    if !matches!(rec.state.status, Status::Running | Status::Paused) {
        return Err(Error::FailedPrecondition(format!(
            "container {} is not running",
            rec.name
        )));
    }
    let mut pids: Vec<u32> = core
        .tasks
        .pids(ns, &rec.id)
        .await?
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    pids.sort_unstable();
    if ps_args.is_empty() || (ps_args.len() == 1 && ps_args[0] == "-ef") {
        return tokio::task::spawn_blocking(move || Ok(proc_table(&pids)))
            .await
            .map_err(|e| Error::Internal(format!("top task: {e}")))?;
    }
    let out = tokio::process::Command::new("ps")
        .args(ps_args)
        .output()
        .await
        .map_err(|e| {
            Error::Unavailable(format!(
                "run ps on the host: {e}; without ps options berth reads /proc itself"
            ))
        })?;
    if !out.status.success() {
        return Err(Error::InvalidArgument(format!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
}

/// Keeps the lines of `ps` output whose PID column is one of `pids`.
pub fn parse_ps(output: &str, pids: &[u32]) -> Result<Top> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_col = titles.iter().position(|t| t == "PID").ok_or_else(|| {
        Error::InvalidArgument(
            "couldn't find the PID field in ps output; add pid to the ps options".into(),
        )
    })?;
    let wanted: HashSet<u32> = pids.iter().copied().collect();
    let mut processes = Vec::new();
    for line in lines {
        let fields = split_n(line, titles.len());
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if wanted.contains(&pid) {
            processes.push(fields);
        }
    }
    Ok(Top { titles, processes })
}

/// Splits on whitespace into at most `n` fields, the last one keeping the rest.
fn split_n(line: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        if out.len() + 1 == n {
            out.push(rest.trim_end().to_string());
            break;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        out.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
    }
    out
}

/// What `/proc/<pid>/stat` says, the fields `ps -ef` needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ProcStat {
    comm: String,
    ppid: u32,
    tty_nr: u64,
    utime: u64,
    stime: u64,
    starttime: u64,
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is the state (field 3); field n is rest[n - 3].
    let f = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        comm,
        ppid: f(4)? as u32,
        tty_nr: f(7)?,
        utime: f(14)?,
        stime: f(15)?,
        starttime: f(22)?,
    })
}

fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map(|v| v as u64)
        .filter(|v| *v > 0)
        .unwrap_or(100)
}

/// The host's user names by uid (`/etc/passwd`), as `ps` shows them.
fn user_names() -> HashMap<u32, String> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split(':');
            let name = it.next()?;
            let uid = it.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

/// `ps`'s TTY text for a `tty_nr`.
fn tty_text(tty_nr: u64) -> String {
    if tty_nr == 0 {
        return "?".into();
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => "?".into(),
    }
}

/// `[DD-]HH:MM:SS` of a number of seconds.
fn cpu_time(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// The `ps -ef` table of `pids` from `/proc`.
fn proc_table(pids: &[u32]) -> Top {
    let hz = ticks_per_second();
    let boot = std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    let users = user_names();
    let today = chrono::Local::now().date_naive();
    let mut processes = Vec::new();
    for &pid in pids {
        let dir = format!("/proc/{pid}");
        let Some(st) = std::fs::read_to_string(format!("{dir}/stat"))
            .ok()
            .and_then(|t| parse_stat(&t))
        else {
            continue;
        };
        let uid = std::fs::read_to_string(format!("{dir}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("Uid:")?
                    .split_whitespace()
                    .next()?
                    .parse::<u32>()
                    .ok()
            })
            .unwrap_or(0);
        let cmdline = std::fs::read(format!("{dir}/cmdline")).unwrap_or_default();
        let cmd = {
            let parts: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            if parts.is_empty() {
                format!("[{}]", st.comm)
            } else {
                parts.join(" ")
            }
        };
        let cpu_ticks = st.utime + st.stime;
        let started_secs = st.starttime as f64 / hz as f64;
        let elapsed = (uptime - started_secs).max(0.0);
        let c = if elapsed > 0.0 {
            ((cpu_ticks as f64 / hz as f64) / elapsed * 100.0) as u64
        } else {
            0
        };
        let start = chrono::DateTime::from_timestamp(boot + started_secs as i64, 0)
            .map(|t| t.with_timezone(&chrono::Local))
            .map(|t| {
                if t.date_naive() == today {
                    t.format("%H:%M").to_string()
                } else if t.format("%Y").to_string() == today.format("%Y").to_string() {
                    t.format("%b%d").to_string()
                } else {
                    t.format("%Y").to_string()
                }
            })
            .unwrap_or_default();
        processes.push(vec![
            users.get(&uid).cloned().unwrap_or_else(|| uid.to_string()),
            pid.to_string(),
            st.ppid.to_string(),
            c.to_string(),
            start,
            tty_text(st.tty_nr),
            cpu_time(cpu_ticks / hz),
            cmd,
        ]);
    }
    Top {
        titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        processes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_with_odd_names() {
        let st = parse_stat(
            "42 (sh (x) y) S 7 42 42 34816 42 4194560 100 0 0 0 12 3 0 0 20 0 1 0 5000 1 2 3",
        )
        .unwrap();
        assert_eq!(st.comm, "sh (x) y");
        assert_eq!(st.ppid, 7);
        assert_eq!(st.tty_nr, 34816);
        assert_eq!((st.utime, st.stime, st.starttime), (12, 3, 5000));
        assert_eq!(tty_text(34816), "pts/0");
        assert_eq!(tty_text(0), "?");
        assert_eq!(cpu_time(3725), "01:02:05");
        assert_eq!(cpu_time(90061), "1-01:01:01");
    }

    #[test]
    fn ps_output_is_filtered_by_pid() {
        let out = "USER PID %CPU COMMAND\nroot 1 0.0 /sbin/init splash\nroot 42 0.0 sleep 1000\n";
        let t = parse_ps(out, &[42]).unwrap();
        assert_eq!(t.titles, ["USER", "PID", "%CPU", "COMMAND"]);
        assert_eq!(t.processes, vec![vec!["root", "42", "0.0", "sleep 1000"]]);
        assert!(parse_ps("USER COMMAND\nroot x\n", &[1]).is_err());
    }

    #[test]
    fn our_own_process_is_in_the_table() {
        let me = std::process::id();
        let t = proc_table(&[me]);
        assert_eq!(t.processes.len(), 1);
        assert_eq!(t.processes[0][1], me.to_string());
        assert_eq!(t.titles.len(), t.processes[0].len());
    }
}

//! `logs`: the json-lines log the shim writes (`{"stream","time","log"}` per line,
//! rotated to `<path>.1`, `<path>.2`, ...), read oldest first, with `--tail`,
//! `--since`, `--until`, `--timestamps`, stream selection, and `--follow`: the open
//! file is read as it grows (and followed across a rotation) until the container stops.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use serde::Deserialize;

use crate::core::Core;
use crate::error::{Error, Result};

/// What `logs` asks for.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub follow: bool,
    /// The last N lines; negative: all.
    pub tail: i64,
    /// Unix nanoseconds; lines before are skipped.
    pub since: Option<i64>,
    /// Unix nanoseconds; lines after are skipped (and following stops there).
    pub until: Option<i64>,
    pub timestamps: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// One logged line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFrame {
    pub stderr: bool,
    pub data: Vec<u8>,
    /// Unix nanoseconds.
    pub time: i64,
}

#[derive(Deserialize)]
struct Line {
    stream: String,
    time: String,
    log: String,
}

const POLL: Duration = Duration::from_millis(100);

/// Parses one log line; None for a line that is not one (a torn write).
fn parse(line: &str) -> Option<LogFrame> {
    let l: Line = serde_json::from_str(line).ok()?;
    let time = chrono::DateTime::parse_from_rfc3339(&l.time)
        .ok()?
        .timestamp_nanos_opt()?;
    Some(LogFrame {
        stderr: l.stream == "stderr",
        data: l.log.into_bytes(),
        time,
    })
}

fn wanted(f: &LogFrame, o: &LogOptions) -> bool {
    (if f.stderr { o.stderr } else { o.stdout })
        && o.since.is_none_or(|s| f.time >= s)
        && o.until.is_none_or(|u| f.time <= u)
}

fn decorate(mut f: LogFrame, o: &LogOptions) -> LogFrame {
    if o.timestamps {
        let t = chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(f.time)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut data = format!("{t} ").into_bytes();
        data.extend_from_slice(&f.data);
        f.data = data;
    }
    f
}

/// The rotated files, oldest first, then the current one.
fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    for n in 1.. {
        let p = PathBuf::from(format!("{}.{n}", path.display()));
        if !p.exists() {
            break;
        }
        rotated.push(p);
    }
    rotated.reverse();
    rotated.push(path.to_path_buf());
    rotated
}

/// Reads complete lines from `reader` (a partial last line is left for later).
fn read_lines(reader: &mut BufReader<File>, out: &mut Vec<LogFrame>) -> std::io::Result<()> {
    let mut buf = String::new();
    loop {
        buf.clear();
        let pos = reader.stream_position()?;
        let n = reader.read_line(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if !buf.ends_with('\n') {
            reader.seek(SeekFrom::Start(pos))?;
            return Ok(());
        }
        if let Some(f) = parse(buf.trim_end()) {
            out.push(f);
        }
    }
}

/// The logged lines of a container and, with `follow`, the lines still to come.
pub fn logs(
    core: &Arc<Core>,
    ns: &str,
    input: &str,
    opts: LogOptions,
) -> Result<impl Stream<Item = Result<LogFrame>> + Send + 'static> {
    let rec = core.berth.store.resolve(ns, input)?;
    let slot = core.berth.slot(ns, &rec);
    let path = rec.log_path.clone();
    let name = rec.name.clone();
    Ok(async_stream::try_stream! {
        // Everything logged so far, all files but the current one read whole.
        let mut backlog: VecDeque<LogFrame> = VecDeque::new();
        let keep = |q: &mut VecDeque<LogFrame>| {
            if opts.tail >= 0 {
                while q.len() as i64 > opts.tail {
                    q.pop_front();
                }
            }
        };
        let all = files(&path);
        let (current, rotated) = all.split_last().expect("at least the current file");
        for p in rotated {
            if let Ok(f) = File::open(p) {
                let mut frames = Vec::new();
                read_lines(&mut BufReader::new(f), &mut frames)
                    .map_err(|e| Error::io(format!("read the log of {name}"), e))?;
                backlog.extend(frames.into_iter().filter(|f| wanted(f, &opts)));
                keep(&mut backlog);
            }
        }
        let mut reader = match File::open(current) {
            Ok(f) => Some(BufReader::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Err(Error::io(format!("open the log of {name}"), e))?,
        };
        if let Some(r) = reader.as_mut() {
            let mut frames = Vec::new();
            read_lines(r, &mut frames).map_err(|e| Error::io(format!("read the log of {name}"), e))?;
            backlog.extend(frames.into_iter().filter(|f| wanted(f, &opts)));
            keep(&mut backlog);
        }
        for f in backlog.drain(..) {
            yield decorate(f, &opts);
        }
        if !opts.follow {
            return;
        }
        let mut rx = slot.watch.subscribe();
        loop {
            let running = {
                let w = rx.borrow_and_update();
                w.running && !w.removed
            };
            if reader.is_none() {
                reader = File::open(current).ok().map(BufReader::new);
            }
            let mut frames = Vec::new();
            if let Some(r) = reader.as_mut() {
                read_lines(r, &mut frames).map_err(|e| Error::io(format!("read the log of {name}"), e))?;
                // Rotated: finish the old file (done above), then take the new one.
                let inode = r.get_ref().metadata().map(|m| m.ino()).ok();
                let now_inode = std::fs::metadata(current).map(|m| m.ino()).ok();
                if now_inode.is_some() && inode != now_inode {
                    reader = File::open(current).ok().map(BufReader::new);
                    if let Some(r) = reader.as_mut() {
                        read_lines(r, &mut frames)
                            .map_err(|e| Error::io(format!("read the log of {name}"), e))?;
                    }
                }
            }
            let mut past_until = false;
            for f in frames {
                if opts.until.is_some_and(|u| f.time > u) {
                    past_until = true;
                    break;
                }
                if wanted(&f, &opts) {
                    yield decorate(f, &opts);
                }
            }
            if past_until || !running {
                return;
            }
            let _ = tokio::time::timeout(POLL, rx.changed()).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn opts() -> LogOptions {
        LogOptions {
            follow: false,
            tail: -1,
            since: None,
            until: None,
            timestamps: false,
            stdout: true,
            stderr: true,
        }
    }

    #[test]
    fn lines_parse_and_filter() {
        let f =
            parse(r#"{"stream":"stderr","time":"2024-05-01T10:00:00.5Z","log":"oops\n"}"#).unwrap();
        assert!(f.stderr);
        assert_eq!(f.data, b"oops\n");
        assert_eq!(f.time, 1_714_557_600_500_000_000);
        assert!(parse("{not json").is_none());
        let mut o = opts();
        o.stderr = false;
        assert!(!wanted(&f, &o));
        let mut o = opts();
        o.since = Some(f.time + 1);
        assert!(!wanted(&f, &o));
        o.timestamps = true;
        assert_eq!(
            decorate(f, &o).data,
            b"2024-05-01T10:00:00.500000000Z oops\n"
        );
    }

    #[test]
    fn rotated_files_come_first_and_partial_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let line =
            |t: &str| format!("{{\"stream\":\"stdout\",\"time\":\"{t}\",\"log\":\"{t}\\n\"}}\n");
        std::fs::write(
            format!("{}.2", path.display()),
            line("2024-01-01T00:00:01Z"),
        )
        .unwrap();
        std::fs::write(
            format!("{}.1", path.display()),
            line("2024-01-01T00:00:02Z"),
        )
        .unwrap();
        let mut cur = std::fs::File::create(&path).unwrap();
        cur.write_all(line("2024-01-01T00:00:03Z").as_bytes())
            .unwrap();
        cur.write_all(b"{\"stream\":\"stdout\",\"ti").unwrap();
        let all = files(&path);
        assert_eq!(all.len(), 3);
        assert!(all[0].to_string_lossy().ends_with(".2"));
        let mut frames = Vec::new();
        for p in &all {
            read_lines(&mut BufReader::new(File::open(p).unwrap()), &mut frames).unwrap();
        }
        assert_eq!(frames.len(), 3);
        assert!(frames.windows(2).all(|w| w[0].time < w[1].time));
    }
}

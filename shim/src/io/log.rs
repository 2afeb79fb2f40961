//! The json-lines log of a process's output: one line per line of output,
//! `{"stream":"stdout","time":"<RFC 3339, nanoseconds>","log":"text\n"}`, with size-based
//! rotation (`<path>.1`, `<path>.2`, ...) when a maximum size is configured.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Longest partial line kept back waiting for its newline.
const MAX_PARTIAL: usize = 16 * 1024;

/// Rotation settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate once the file reaches this size; `None`: never.
    pub max_size: Option<u64>,
    /// Rotated files kept besides the current one.
    pub max_files: u32,
}

/// Which output stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (and a terminal's output).
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Appends json lines to one file.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
    partial: [Vec<u8>; 2],
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("open log", path, e))
}

/// One json line.
pub fn format_line(stream: Stream, time: &str, text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let log = serde_json::to_string(&*text).unwrap_or_else(|_| "\"\"".into());
    format!(
        "{{\"stream\":\"{}\",\"time\":\"{time}\",\"log\":{log}}}\n",
        stream.name()
    )
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl LogWriter {
    /// Opens (appending) the log at `path`, creating its directory.
    pub fn open(path: &Path, rotation: Rotation) -> Result<LogWriter> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        let file = open(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            rotation,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Logs a chunk of output: complete lines now, a trailing partial line once its
    /// newline comes (or it grows too long, or [`LogWriter::flush_partial`]).
    pub fn write(&mut self, stream: Stream, data: &[u8]) {
        let idx = stream as usize;
        let mut rest = data;
        let time = now();
        let mut out = String::new();
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let (line, tail) = rest.split_at(nl + 1);
            if self.partial[idx].is_empty() {
                out.push_str(&format_line(stream, &time, line));
            } else {
                let mut full = std::mem::take(&mut self.partial[idx]);
                full.extend_from_slice(line);
                out.push_str(&format_line(stream, &time, &full));
            }
            rest = tail;
        }
        self.partial[idx].extend_from_slice(rest);
        if self.partial[idx].len() >= MAX_PARTIAL {
            let full = std::mem::take(&mut self.partial[idx]);
            out.push_str(&format_line(stream, &time, &full));
        }
        self.append(out.as_bytes());
    }

    /// Logs what is left of a partial line (at the end of a stream).
    pub fn flush_partial(&mut self, stream: Stream) {
        let full = std::mem::take(&mut self.partial[stream as usize]);
        if !full.is_empty() {
            let line = format_line(stream, &now(), &full);
            self.append(line.as_bytes());
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some(max) = self.rotation.max_size
            && self.size > 0
            && self.size + bytes.len() as u64 > max
        {
            self.rotate();
        }
        match self.file.write_all(bytes) {
            Ok(()) => self.size += bytes.len() as u64,
            Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "log write failed"),
        }
    }

    fn rotate(&mut self) {
        let name = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        if self.rotation.max_files == 0 {
            let _ = self.file.set_len(0);
        } else {
            let _ = std::fs::remove_file(name(self.rotation.max_files));
            for i in (1..self.rotation.max_files).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            let _ = std::fs::rename(&self.path, name(1));
            match open(&self.path) {
                Ok(f) => self.file = f,
                Err(e) => tracing::warn!(error = %e, "log rotation failed"),
            }
        }
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        let l = format_line(
            Stream::Stderr,
            "2024-01-01T00:00:00.000000001Z",
            b"a \"q\"\n",
        );
        assert_eq!(
            l,
            "{\"stream\":\"stderr\",\"time\":\"2024-01-01T00:00:00.000000001Z\",\"log\":\"a \\\"q\\\"\\n\"}\n"
        );
    }

    #[test]
    fn lines_are_split_and_partials_joined() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/log.json");
        let mut w = LogWriter::open(&path, Rotation::default()).unwrap();
        w.write(Stream::Stdout, b"one\ntw");
        w.write(Stream::Stdout, b"o\nthree");
        w.flush_partial(Stream::Stdout);
        let text = std::fs::read_to_string(&path).unwrap();
        let logs: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["log"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(logs, ["one\n", "two\n", "three"]);
    }

    #[test]
    fn rotation_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut w = LogWriter::open(
            &path,
            Rotation {
                max_size: Some(100),
                max_files: 2,
            },
        )
        .unwrap();
        for _ in 0..10 {
            w.write(Stream::Stdout, b"0123456789\n");
        }
        assert!(path.exists());
        assert!(dir.path().join("log.json.1").exists());
        assert!(dir.path().join("log.json.2").exists());
        assert!(!dir.path().join("log.json.3").exists());
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
    }
}

//! The json-lines log of a process's output, in docker's json-file format, with
//! docker's size-based rotation; and [`LogSet`], which lets processes that name the same
//! file share one writer (an exec logging into its container's log).
//!
//! One entry per line of output:
//! `{"log":"text\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`.
//! An entry's text is at most [`MAX_ENTRY`] bytes: a longer line is cut into several
//! entries (cut on a UTF-8 character boundary), and only the last one ends with `\n`.
//! A partial line is held back until its newline, until it reaches [`MAX_ENTRY`], or
//! until its stream ends. Invalid UTF-8 is replaced by U+FFFD.
//!
//! Rotation: before an entry would make `<path>` exceed `max_size`, `<path>.{n-1}` is
//! removed, `<path>.{i}` becomes `<path>.{i+1}`, `<path>` becomes `<path>.1` and a new
//! `<path>` is started, so that at most `max_files` files exist (`<path>` the newest,
//! `<path>.{max_files-1}` the oldest). With `max_files` 0 or 1 `<path>` is truncated
//! instead. Entries never straddle two files.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

use crate::error::{Error, Result};

/// Longest text of one log entry (docker's json-file splits at 16 KiB too).
pub const MAX_ENTRY: usize = 16 * 1024;

/// Rotation settings (docker's json-file `max-size` and `max-file`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate before the file would exceed this size; 0: never.
    pub max_size: u64,
    /// Files kept at most, the current one included; 0 counts as 1.
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
    inode: u64,
    rotation: Rotation,
}

fn open(path: &Path, truncate: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).mode(0o640).custom_flags(libc::O_CLOEXEC);
    if truncate {
        o.write(true).truncate(true);
    } else {
        o.append(true);
    }
    let f = o.open(path).map_err(|e| Error::io("open log", path, e))?;
    if truncate {
        // Reopen appending: writes then always go to the end, even after truncation.
        drop(f);
        return open(path, false);
    }
    Ok(f)
}

/// Appends one json entry (with its newline) to `out`.
pub fn format_entry(out: &mut String, stream: Stream, time: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    out.push_str("{\"log\":");
    match serde_json::to_string(&*text) {
        Ok(s) => out.push_str(&s),
        Err(_) => out.push_str("\"\""),
    }
    out.push_str(",\"stream\":\"");
    out.push_str(stream.name());
    out.push_str("\",\"time\":\"");
    out.push_str(time);
    out.push_str("\"}\n");
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Moves a cut at `at` in `buf` back to a UTF-8 character boundary: when one of the
/// last three bytes before `at` starts a character that does not end by `at`, the cut
/// goes before it. Bytes that are not UTF-8 leave the cut where it is.
fn char_boundary(buf: &[u8], at: usize) -> usize {
    for back in 1..=at.min(3) {
        let b = buf[at - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let len = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if len > back { at - back } else { at };
    }
    at
}

/// Calls `emit` for each entry that `buf` completes: whole lines, and pieces of
/// [`MAX_ENTRY`] bytes of longer ones. Returns how many bytes were consumed; the rest is
/// a partial line shorter than [`MAX_ENTRY`].
fn split_entries(buf: &[u8], mut emit: impl FnMut(&[u8])) -> usize {
    let mut start = 0;
    while start < buf.len() {
        let window = &buf[start..buf.len().min(start + MAX_ENTRY)];
        if let Some(nl) = window.iter().position(|b| *b == b'\n') {
            emit(&window[..=nl]);
            start += nl + 1;
        } else if window.len() == MAX_ENTRY {
            let cut = char_boundary(buf, start + MAX_ENTRY);
            emit(&buf[start..cut]);
            start = cut;
        } else {
            break;
        }
    }
    start
}

impl LogWriter {
    /// Opens (appending) the log at `path`, creating its directory.
    pub fn open(path: &Path, rotation: Rotation) -> Result<LogWriter> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        let file = open(path, false)?;
        let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size: meta.len(),
            inode: meta.ino(),
            rotation,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current file's inode and size (whole entries only).
    pub fn position(&self) -> (u64, u64) {
        (self.inode, self.size)
    }

    /// Logs a chunk of `stream`: the entries it completes now; what remains of a line
    /// stays in `partial` (the stream's own buffer, kept by the caller).
    pub fn write(&mut self, stream: Stream, partial: &mut Vec<u8>, data: &[u8]) {
        let time = now();
        let mut entries: Vec<String> = Vec::new();
        let mut push = |text: &[u8]| {
            let mut e = String::with_capacity(text.len() + 80);
            format_entry(&mut e, stream, &time, text);
            entries.push(e);
        };
        if partial.is_empty() {
            let used = split_entries(data, &mut push);
            partial.extend_from_slice(&data[used..]);
        } else {
            partial.extend_from_slice(data);
            let used = split_entries(partial, &mut push);
            partial.drain(..used);
        }
        if partial.capacity() > 2 * MAX_ENTRY && partial.len() < MAX_ENTRY / 4 {
            partial.shrink_to(MAX_ENTRY);
        }
        self.append(&entries);
    }

    /// Logs what is left of a partial line (at the end of its stream).
    pub fn flush_partial(&mut self, stream: Stream, partial: &mut Vec<u8>) {
        if partial.is_empty() {
            return;
        }
        let mut e = String::new();
        format_entry(&mut e, stream, &now(), partial);
        partial.clear();
        partial.shrink_to_fit();
        self.append(&[e]);
    }

    /// Writes entries, rotating between two of them when the next would overflow.
    fn append(&mut self, entries: &[String]) {
        let max = self.rotation.max_size;
        let mut out = String::new();
        for e in entries {
            let used = self.size + out.len() as u64;
            if max > 0 && used > 0 && used + e.len() as u64 > max {
                self.write_out(&out);
                out.clear();
                self.rotate();
            }
            out.push_str(e);
        }
        self.write_out(&out);
    }

    fn write_out(&mut self, out: &str) {
        if out.is_empty() {
            return;
        }
        match self.file.write_all(out.as_bytes()) {
            Ok(()) => self.size += out.len() as u64,
            Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "log write failed"),
        }
    }

    fn rotate(&mut self) {
        let files = self.rotation.max_files.max(1);
        let name = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        if files == 1 {
            if let Err(e) = self.file.set_len(0) {
                tracing::warn!(path = %self.path.display(), error = %e, "log truncation failed");
            }
            self.size = 0;
            return;
        }
        let _ = std::fs::remove_file(name(files - 1));
        for i in (1..files - 1).rev() {
            let _ = std::fs::rename(name(i), name(i + 1));
        }
        if let Err(e) = std::fs::rename(&self.path, name(1)) {
            tracing::warn!(path = %self.path.display(), error = %e, "log rotation failed");
            return;
        }
        match open(&self.path, true) {
            Ok(f) => {
                self.inode = f.metadata().map(|m| m.ino()).unwrap_or(0);
                self.file = f;
                self.size = 0;
            }
            Err(e) => tracing::warn!(error = %e, "log rotation failed"),
        }
    }
}

/// The shim's open logs by path, so that processes naming the same file share one
/// writer (one rotation state). A writer closes when its last process is deleted.
#[derive(Default)]
pub struct LogSet {
    open: HashMap<PathBuf, Weak<RefCell<LogWriter>>>,
}

impl LogSet {
    /// The writer of `path`: the open one, or a new one with `rotation`.
    pub fn get(&mut self, path: &Path, rotation: Rotation) -> Result<Rc<RefCell<LogWriter>>> {
        self.open.retain(|_, w| w.strong_count() > 0);
        if let Some(w) = self.open.get(path).and_then(Weak::upgrade) {
            return Ok(w);
        }
        let w = Rc::new(RefCell::new(LogWriter::open(path, rotation)?));
        self.open.insert(path.to_path_buf(), Rc::downgrade(&w));
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn texts(path: &Path) -> Vec<String> {
        entries(path)
            .iter()
            .map(|v| v["log"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn entry_format_is_dockers() {
        let mut l = String::new();
        format_entry(
            &mut l,
            Stream::Stderr,
            "2024-01-01T00:00:00.000000001Z",
            b"a \"q\"\n",
        );
        assert_eq!(
            l,
            "{\"log\":\"a \\\"q\\\"\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-01T00:00:00.000000001Z\"}\n"
        );
    }

    #[test]
    fn lines_are_split_and_partials_joined() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/log.json");
        let mut w = LogWriter::open(&path, Rotation::default()).unwrap();
        let mut p = Vec::new();
        w.write(Stream::Stdout, &mut p, b"one\ntw");
        w.write(Stream::Stdout, &mut p, b"o\nthree");
        assert_eq!(p, b"three");
        w.flush_partial(Stream::Stdout, &mut p);
        assert_eq!(texts(&path), ["one\n", "two\n", "three"]);
        let (_, size) = w.position();
        assert_eq!(size, std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn long_lines_are_cut_at_16k_on_char_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut w = LogWriter::open(&path, Rotation::default()).unwrap();
        let mut p = Vec::new();
        // 'é' is two bytes: MAX_ENTRY - 1 bytes of 'a' then 'é' straddles the cut.
        let mut line = vec![b'a'; MAX_ENTRY - 1];
        line.extend_from_slice("é".as_bytes());
        line.extend_from_slice(&[b'b'; 100]);
        line.push(b'\n');
        for chunk in line.chunks(1000) {
            w.write(Stream::Stdout, &mut p, chunk);
        }
        assert!(p.is_empty());
        let t = texts(&path);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].len(), MAX_ENTRY - 1);
        assert!(!t[0].ends_with('\n'));
        assert!(t[1].starts_with('é') && t[1].ends_with("b\n"));
        assert_eq!(format!("{}{}", t[0], t[1]).as_bytes(), line.as_slice());
        // Exactly MAX_ENTRY bytes with the newline: one entry.
        let mut exact = vec![b'c'; MAX_ENTRY - 1];
        exact.push(b'\n');
        w.write(Stream::Stderr, &mut p, &exact);
        assert_eq!(texts(&path).len(), 3);
    }

    #[test]
    fn rotation_keeps_max_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut w = LogWriter::open(
            &path,
            Rotation {
                max_size: 200,
                max_files: 3,
            },
        )
        .unwrap();
        let mut p = Vec::new();
        let mut all = String::new();
        for i in 0..40 {
            let line = format!("line {i:03}\n");
            all.push_str(&line);
            w.write(Stream::Stdout, &mut p, line.as_bytes());
        }
        assert!(!dir.path().join("log.json.3").exists());
        let mut kept = String::new();
        for f in ["log.json.2", "log.json.1", "log.json"] {
            let f = dir.path().join(f);
            assert!(std::fs::metadata(&f).unwrap().len() <= 200);
            kept.push_str(&texts(&f).concat());
        }
        // The kept files hold the newest lines, in order, without gaps.
        assert!(all.ends_with(&kept), "{kept}");
        assert!(kept.starts_with("line "));
    }

    #[test]
    fn one_file_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut w = LogWriter::open(
            &path,
            Rotation {
                max_size: 150,
                max_files: 1,
            },
        )
        .unwrap();
        let mut p = Vec::new();
        for i in 0..10 {
            w.write(Stream::Stdout, &mut p, format!("{i}\n").as_bytes());
        }
        assert!(!dir.path().join("log.json.1").exists());
        let t = texts(&path);
        assert_eq!(t.last().unwrap(), "9\n");
        assert!(std::fs::metadata(&path).unwrap().len() <= 150);
    }

    #[test]
    fn log_set_shares_writers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut set = LogSet::default();
        let a = set.get(&path, Rotation::default()).unwrap();
        let b = set.get(&path, Rotation::default()).unwrap();
        assert!(Rc::ptr_eq(&a, &b));
        drop((a, b));
        let c = set.get(&path, Rotation::default()).unwrap();
        assert_eq!(Rc::strong_count(&c), 1);
    }
}

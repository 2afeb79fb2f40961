//! Deferred deletion of removed snapshot directories: a removed snapshot's directory is
//! renamed to `snapshots/trash-*` at once (its record is already gone) and one background
//! thread deletes the files, so `remove` does not wait for the unlinks. The thread exists
//! only while there is work; what a crash leaves in the trash is deleted when the store
//! opens again (and by cleanup).

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// The queue of directories to delete and the state of the thread deleting them.
#[derive(Default)]
pub(crate) struct Reaper {
    state: Arc<(Mutex<State>, Condvar)>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<PathBuf>,
    /// Every queued or in-progress path (cleanup leaves them to the reaper).
    owned: HashSet<PathBuf>,
    running: bool,
}

impl Reaper {
    /// Queues `path` (a directory or file) for deletion and makes sure a thread is on it.
    pub fn push(&self, path: PathBuf) {
        let (lock, _) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        st.owned.insert(path.clone());
        st.queue.push_back(path);
        if st.running {
            return;
        }
        st.running = true;
        let state = self.state.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot-trash".into())
            .spawn(move || drain(&state));
        if let Err(e) = spawned {
            // No thread: delete here instead, synchronously.
            tracing::warn!(error = %e, "start the snapshot trash thread; deleting inline");
            st.running = false;
            let paths: Vec<PathBuf> = st.queue.drain(..).collect();
            st.owned.clear();
            drop(st);
            for p in paths {
                delete(&p);
            }
        }
    }

    /// True while `path` is queued or being deleted.
    pub fn owns(&self, path: &Path) -> bool {
        let (lock, _) = &*self.state;
        lock.lock()
            .unwrap_or_else(|e| e.into_inner())
            .owned
            .contains(path)
    }

    /// Blocks until everything queued so far is deleted.
    pub fn wait_idle(&self) {
        let (lock, idle) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        while st.running {
            st = idle.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn drain(state: &(Mutex<State>, Condvar)) {
    let (lock, idle) = state;
    loop {
        let next = {
            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
            match st.queue.front().cloned() {
                Some(p) => p,
                None => {
                    st.running = false;
                    idle.notify_all();
                    return;
                }
            }
        };
        delete(&next);
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        st.queue.pop_front();
        st.owned.remove(&next);
    }
}

/// Deletes a trash entry; failures are logged (cleanup retries them).
fn delete(path: &Path) {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    if let Err(e) = removed
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "delete a removed snapshot directory; cleanup will retry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_in_the_background_and_goes_idle() {
        let tmp = tempfile::tempdir().unwrap();
        let reaper = Reaper::default();
        let mut paths = Vec::new();
        for i in 0..20 {
            let d = tmp.path().join(format!("trash-{i}"));
            std::fs::create_dir_all(d.join("fs/a/b")).unwrap();
            std::fs::write(d.join("fs/a/b/file"), b"x").unwrap();
            reaper.push(d.clone());
            paths.push(d);
        }
        reaper.wait_idle();
        for p in &paths {
            assert!(!p.exists(), "{} deleted", p.display());
            assert!(!reaper.owns(p));
        }
        // A second batch starts a new thread.
        let d = tmp.path().join("trash-again");
        std::fs::create_dir_all(&d).unwrap();
        reaper.push(d.clone());
        reaper.wait_idle();
        assert!(!d.exists());
    }
}

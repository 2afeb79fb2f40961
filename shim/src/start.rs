//! `berth-shim start`: fork a daemon that detaches (new session, child subreaper, no
//! inherited descriptors, stdio on /dev/null and `<bundle>/shim.log`) and serves the
//! socket; print its pid once it listens. The daemon is not berthd's child, so it
//! outlives berthd.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, bail};

use crate::ShimArgs;
use crate::sys::fd;
use crate::sys::process::{self, Forked};

/// Runs `start`.
pub fn start(args: &ShimArgs, socket: &Path) -> anyhow::Result<()> {
    let (r, w) = fd::pipe().context("create readiness pipe")?;
    match process::fork().context("fork shim")? {
        Forked::Child => {
            drop(r);
            let code = match daemon(args, socket, w) {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "shim failed");
                    1
                }
            };
            process::exit_now(code);
        }
        Forked::Parent(pid) => {
            drop(w);
            let mut answer = String::new();
            std::fs::File::from(r)
                .read_to_string(&mut answer)
                .context("read readiness")?;
            if answer == "ok" {
                println!("{pid}");
                Ok(())
            } else if answer.is_empty() {
                bail!(
                    "shim exited before listening; see {}",
                    args.bundle.join("shim.log").display()
                )
            } else {
                bail!("{}", answer.trim_start_matches("error: "))
            }
        }
    }
}

fn daemon(args: &ShimArgs, socket: &Path, ready: OwnedFd) -> anyhow::Result<()> {
    let fail = |ready: &OwnedFd, e: &anyhow::Error| {
        let _ = fd::write_all(ready.as_fd(), format!("error: {e:#}").as_bytes());
    };
    let setup = || -> anyhow::Result<()> {
        process::setsid().context("setsid")?;
        process::set_child_subreaper().context("become child subreaper")?;
        fd::close_from_except(3, &[ready.as_raw_fd()]);
        let null = fd::dev_null().context("open /dev/null")?;
        let log_path = args.bundle.join("shim.log");
        let log = fd::open(&log_path, false, true, libc::O_CREAT | libc::O_APPEND)
            .with_context(|| format!("open {}", log_path.display()))?;
        fd::redirect_stdio(null.as_fd(), log.as_fd()).context("redirect stdio")?;
        Ok(())
    };
    if let Err(e) = setup() {
        fail(&ready, &e);
        return Err(e);
    }
    crate::observability::init(&args.log_level);
    if !crate::sealed_exe::running_sealed() {
        tracing::info!(
            "not running from a sealed copy of berth-shim: start shims through \
             berth_shim::sealed_exe so that containers cannot reach the binary"
        );
    }
    // `serve` reports readiness, or its failure before it, on `ready` and closes it.
    crate::run::serve(args, socket, Some(ready))
}

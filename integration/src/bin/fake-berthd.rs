//! A stand-in daemon for the harness's own tests only: it takes berthd's flags, answers
//! the containerd Version RPC on `--address` (version `fake-berthd`) and nothing else,
//! and removes its socket on SIGTERM. Environment knobs make it misbehave on purpose:
//! `FAKE_BERTHD_DELAY_MS` (listen late), `FAKE_BERTHD_EXIT` (exit at once with that code),
//! `FAKE_BERTHD_STRAY=1` (leave a detached shell with a child behind, like a shim and its
//! container; the shell's PID goes to `<state>/stray.pid`), `FAKE_BERTHD_MOUNT=1` (mount a tmpfs at `<state>/mnt`).
//! berth's real tests use the real berthd.

use std::path::PathBuf;
use std::time::Duration;

use berth_api::containerd::services::version::v1::VersionResponse;
use berth_api::containerd::services::version::v1::version_server::{Version, VersionServer};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

struct Fake;

#[tonic::async_trait]
impl Version for Fake {
    async fn version(&self, _: Request<()>) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: "fake-berthd".into(),
            revision: "0".into(),
        }))
    }
}

fn flag(args: &[String], name: &str) -> Option<PathBuf> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let address =
        flag(&args, "--address").ok_or_else(|| anyhow::anyhow!("--address is required"))?;
    let state = flag(&args, "--state").ok_or_else(|| anyhow::anyhow!("--state is required"))?;
    let root = flag(&args, "--root").ok_or_else(|| anyhow::anyhow!("--root is required"))?;
    eprintln!(
        "fake-berthd: started pid={} root={} state={} address={}",
        std::process::id(),
        root.display(),
        state.display(),
        address.display()
    );
    if let Some(code) = env("FAKE_BERTHD_EXIT") {
        eprintln!("fake-berthd: told to exit with {code}");
        std::process::exit(code.parse().unwrap_or(1));
    }
    if let Some(ms) = env("FAKE_BERTHD_DELAY_MS") {
        tokio::time::sleep(Duration::from_millis(ms.parse()?)).await;
    }
    if env("FAKE_BERTHD_STRAY").is_some() {
        use std::os::unix::process::CommandExt;
        let marker = state.join("stray");
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 1000; true", "fake-shim"])
            .arg(&marker)
            .current_dir(&state)
            .process_group(0)
            .spawn()?;
        std::fs::write(state.join("stray.pid"), child.id().to_string())?;
    }
    if env("FAKE_BERTHD_MOUNT").is_some() {
        let mnt = state.join("mnt");
        std::fs::create_dir_all(&mnt)?;
        nix::mount::mount(
            Some("tmpfs"),
            &mnt,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )?;
    }
    let _ = std::fs::remove_file(&address);
    let listener = UnixListener::bind(&address)?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tonic::transport::Server::builder()
        .add_service(VersionServer::new(Fake))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
            term.recv().await;
        })
        .await?;
    std::fs::remove_file(&address)?;
    eprintln!("fake-berthd: stopped on SIGTERM");
    Ok(())
}

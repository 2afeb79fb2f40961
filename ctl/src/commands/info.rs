//! `berthctl info`.

use berth_api::berth::v1::{InfoRequest, system_client::SystemClient};

use crate::global::{Format, GlobalOptions};
use crate::output::time_text;

pub async fn run(g: &GlobalOptions) -> anyhow::Result<()> {
    let i = SystemClient::new(g.channel().await?)
        .info(InfoRequest {})
        .await?
        .into_inner();
    if g.format == Format::Json {
        let v = serde_json::json!({
            "version": i.version, "revision": i.revision, "server_uuid": i.server_uuid,
            "root": i.root, "state": i.state, "address": i.address, "pid": i.pid,
            "started_at": time_text(i.started_at.as_ref()), "kernel": i.kernel, "os": i.os,
            "arch": i.arch, "cpus": i.cpus, "memory_bytes": i.memory_bytes,
            "cgroup_version": i.cgroup_version, "default_snapshotter": i.default_snapshotter,
            "namespaces": i.namespaces, "images": i.images, "containers": i.containers,
            "containers_running": i.containers_running, "containers_paused": i.containers_paused,
            "containers_stopped": i.containers_stopped,
            "storage_driver": i.storage_driver, "logging_driver": i.logging_driver,
            "cgroup_driver": i.cgroup_driver, "runtimes": i.runtimes,
            "default_runtime": i.default_runtime, "volumes": i.volumes,
            "networks": i.networks, "log_dir": i.log_dir,
        });
        return crate::output::print_json(&v);
    }
    println!("Server Version:      {} ({})", i.version, i.revision);
    println!("Server UUID:         {}", i.server_uuid);
    println!("Containers:          {}", i.containers);
    println!(" Running:            {}", i.containers_running);
    println!(" Paused:             {}", i.containers_paused);
    println!(" Stopped:            {}", i.containers_stopped);
    println!("Images:              {}", i.images);
    println!("Namespaces:          {}", i.namespaces.join(", "));
    println!("Volumes:             {}", i.volumes);
    println!("Networks:            {}", i.networks);
    println!("Snapshotter:         {}", i.default_snapshotter);
    println!("Storage Driver:      {}", i.storage_driver);
    println!("Logging Driver:      {}", i.logging_driver);
    println!("Cgroup Driver:       {}", i.cgroup_driver);
    println!("Runtimes:            {}", i.runtimes.join(" "));
    println!("Default Runtime:     {}", i.default_runtime);
    println!("Cgroup Version:      {}", i.cgroup_version);
    println!("Kernel Version:      {}", i.kernel);
    println!("Operating System:    {}", i.os);
    println!("Architecture:        {}", i.arch);
    println!("CPUs:                {}", i.cpus);
    println!(
        "Total Memory:        {:.2} GiB",
        i.memory_bytes as f64 / (1u64 << 30) as f64
    );
    println!("Root Dir:            {}", i.root);
    println!("State Dir:           {}", i.state);
    println!("Log Dir:             {}", i.log_dir);
    println!("API Socket:          {}", i.address);
    println!("Daemon PID:          {}", i.pid);
    println!("Started:             {}", time_text(i.started_at.as_ref()));
    Ok(())
}

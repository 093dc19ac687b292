//! A throwaway Redis that answers reads and refuses every write: a replica of a master that does
//! not exist (`--replicaof` a closed port). `GET` answers from its (empty) data set, `SET` gets
//! `READONLY`, which is how a store that fails the write looks to the gateway. The process is
//! killed and its dir removed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::redis_cluster::free_port;
use super::redis_sentinel::wait_pong;

/// A running read-only Redis
pub struct ReadOnlyRedis {
    port: u16,
    child: Child,
    dir: PathBuf,
}

impl ReadOnlyRedis {
    /// Starts it and waits until it answers
    pub async fn start() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("wsv2-redis-ro-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (port, no_master) = (free_port(), free_port());
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--replicaof", "127.0.0.1", &no_master.to_string()])
            .args(["--dir", &dir.to_string_lossy()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (is it installed?)");
        let redis = Self { port, child, dir };
        wait_pong(port).await;
        redis
    }

    /// `redis://` of this server
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for ReadOnlyRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

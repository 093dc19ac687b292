//! A throwaway local Redis Sentinel setup: a master, one replica of it and one sentinel
//! monitoring the pair as `wsv2`, on free ports in a temp dir. Every wait is a bounded poll of
//! what the processes say, never a fixed sleep. The processes are killed and the dir removed on
//! drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use super::store_chain::Bindings;

use super::redis_cluster::{cli, free_port};

/// The master name the sentinel monitors
pub const MASTER_NAME: &str = "wsv2";

/// How long a process may take to answer, or the sentinel to see a change, before the test fails
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running master, replica and sentinel (the master's process is `children[0]`)
pub struct RedisSentinel {
    /// The data nodes' ports: the first starts as master, the second as its replica
    nodes: [u16; 2],
    sentinel: u16,
    children: Vec<Child>,
    dir: PathBuf,
}

impl RedisSentinel {
    /// Starts the three processes and waits until the sentinel knows the replica (so a
    /// failover has somewhere to go)
    pub async fn start() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "wsv2-redis-sentinel-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut setup = Self {
            nodes: [free_port(), free_port()],
            sentinel: free_port(),
            children: Vec::new(),
            dir,
        };
        let [master, replica] = setup.nodes;
        setup.spawn_node(master, None);
        setup.spawn_node(replica, Some(master));
        setup.spawn_sentinel();
        for port in [master, replica, setup.sentinel] {
            wait_pong(port).await;
        }
        setup.wait_replica_known().await;
        setup
    }

    /// `redis+sentinel://` naming the sentinel and the master name
    pub fn url(&self) -> String {
        format!("redis+sentinel://127.0.0.1:{}/{MASTER_NAME}", self.sentinel)
    }

    fn spawn_node(&mut self, port: u16, replica_of: Option<u16>) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args(["--dbfilename", &format!("dump-{port}.rdb")])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
        if let Some(master) = replica_of {
            command.args(["--replicaof", "127.0.0.1", &master.to_string()]);
        }
        self.children.push(spawn(&mut command));
    }

    fn spawn_sentinel(&mut self) {
        let config = self.dir.join("sentinel.conf");
        // A sentinel rewrites its own config file, so it gets one of its own.
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 1\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 10000\n",
            port = self.sentinel,
            dir = self.dir.to_string_lossy(),
            master = self.nodes[0],
        );
        std::fs::write(&config, text).expect("sentinel config");
        let mut command = Command::new("redis-server");
        command.arg(&config).arg("--sentinel");
        self.children.push(spawn(&mut command));
    }

    /// Polls `SENTINEL REPLICAS` until the replica is listed, linked and healthy
    async fn wait_replica_known(&self) {
        let deadline = Instant::now() + READY_WITHIN;
        let replica = self.nodes[1].to_string();
        loop {
            let out = self
                .ask_sentinel(&["sentinel", "replicas", MASTER_NAME])
                .await;
            let healthy = out.as_deref().is_some_and(|text| {
                text.contains(&replica)
                    && !text.contains("s_down")
                    && !text.contains("disconnected")
            });
            if healthy {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinel never saw the replica: {out:?}"
            );
            tokio::task::yield_now().await;
        }
    }

    /// The port of the data node the sentinel names master now
    pub async fn master_port(&self) -> u16 {
        let out = self
            .ask_sentinel(&["sentinel", "get-master-addr-by-name", MASTER_NAME])
            .await
            .expect("sentinel answers");
        out.lines()
            .nth(1)
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("no master address in {out:?}"))
    }

    /// Crashes the master (SIGKILL) once every write so far reached the replica (`WAIT`), and
    /// waits until the sentinel has promoted the replica and it says so
    pub async fn crash_master(&mut self) {
        let [old, new] = self.nodes;
        let acked = cli(vec![
            "-p".into(),
            old.to_string(),
            "wait".into(),
            "1".into(),
            "5000".into(),
        ])
        .await
        .expect("WAIT on the master");
        assert_eq!(acked.trim(), "1", "the replica did not ack the writes");
        let mut master = self.children.remove(0);
        let _ = master.kill();
        let _ = master.wait();
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let role = cli(vec!["-p".into(), new.to_string(), "role".into()]).await;
            let promoted = role.is_some_and(|r| r.starts_with("master"));
            if promoted && self.master_port().await == new {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinel never promoted the replica"
            );
            tokio::task::yield_now().await;
        }
    }

    async fn ask_sentinel(&self, args: &[&str]) -> Option<String> {
        let mut all = vec!["-p".to_owned(), self.sentinel.to_string()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        cli(all).await
    }
}

fn spawn(command: &mut Command) -> Child {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (is it installed?)")
}

pub(crate) async fn wait_pong(port: u16) {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        let got = cli(vec!["-p".into(), port.to_string(), "ping".into()]).await;
        if got.is_some_and(|out| out.contains("PONG")) {
            return;
        }
        assert!(Instant::now() < deadline, "redis {port} never answered");
        tokio::task::yield_now().await;
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bindings for RedisSentinel {
    /// Waits (at most 3 s) until the response binding of `id` is on the current master (the
    /// gateway answers while its SET is in flight); whether it came
    async fn binding_written(&self, id: &str) -> bool {
        let key = wsv2_core::store::StoreKey::response(id.as_bytes());
        let port = self.master_port().await;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let got = cli(vec![
                "-p".into(),
                port.to_string(),
                "get".into(),
                key.as_str().into(),
            ])
            .await;
            if got.is_some_and(|value| !value.trim().is_empty()) {
                return true;
            }
            tokio::task::yield_now().await;
        }
        false
    }
}

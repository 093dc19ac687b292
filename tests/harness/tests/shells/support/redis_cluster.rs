//! A throwaway local Redis Cluster: three masters (`redis-server --cluster-enabled yes`) on free
//! ports in a temp dir, joined with `redis-cli --cluster create`. Every wait is a bounded poll
//! of what the nodes say, never a fixed sleep. The processes are killed and the dir removed on
//! drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use super::store_chain::Bindings;

/// How long a node may take to answer, or the cluster to agree, before the test fails
const READY_WITHIN: Duration = Duration::from_secs(15);

/// A running 3-master cluster
pub struct RedisCluster {
    ports: Vec<u16>,
    nodes: Vec<Option<Child>>,
    dir: PathBuf,
}

/// A port free for the node and for its cluster bus (port + 10000)
pub(crate) fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        if port > 55_000 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// `redis-cli ARGS…` off the async runtime (the gateway's tasks may share its thread)
pub(crate) async fn cli(args: Vec<String>) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("redis-cli")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .await
    .expect("redis-cli task")
}

impl RedisCluster {
    /// Starts three nodes, joins them and waits for `cluster_state:ok` on every node
    pub async fn start() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("wsv2-redis-cluster-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut cluster = Self {
            ports: Vec::new(),
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            let port = free_port();
            cluster.ports.push(port);
            cluster.nodes.push(None);
        }
        for node in 0..3 {
            cluster.spawn(node);
        }
        for node in 0..3 {
            cluster.wait_pong(node).await;
        }
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(str::to_owned));
        cli(create).await.expect("redis-cli --cluster create");
        cluster.wait_ok().await;
        cluster
    }

    /// `redis+cluster://` naming every node as a seed
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The node URLs, for a test's own cluster client
    pub fn node_urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    fn spawn(&mut self, node: usize) {
        let port = self.ports[node];
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            // A downed master is noticed within a second, not the default 15.
            .args(["--cluster-node-timeout", "1000"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (is it installed?)");
        self.nodes[node] = Some(child);
    }

    /// Kills node `node` at once (SIGKILL: a crash, not a clean shutdown)
    pub fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `node` again on its port with its saved cluster config, and waits until the
    /// cluster says `ok` everywhere
    pub async fn restart(&mut self, node: usize) {
        self.spawn(node);
        self.wait_pong(node).await;
        self.wait_ok().await;
    }

    async fn wait_pong(&self, node: usize) {
        let deadline = Instant::now() + READY_WITHIN;
        let port = self.ports[node].to_string();
        loop {
            let got = cli(vec!["-p".into(), port.clone(), "ping".into()]).await;
            if got.is_some_and(|out| out.contains("PONG")) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis node {port} never answered"
            );
            tokio::task::yield_now().await;
        }
    }

    /// Polls every node's `CLUSTER INFO` until all say `cluster_state:ok`
    pub async fn wait_ok(&self) {
        let deadline = Instant::now() + READY_WITHIN;
        for port in &self.ports {
            loop {
                let args = vec![
                    "-p".into(),
                    port.to_string(),
                    "cluster".into(),
                    "info".into(),
                ];
                let got = cli(args).await;
                if got.is_some_and(|out| out.contains("cluster_state:ok")) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "redis cluster never reached cluster_state:ok on {port}"
                );
                tokio::task::yield_now().await;
            }
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.kill(node);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RedisCluster {
    /// The node whose master holds `key` (the others answer `MOVED`)
    pub async fn owner_of(&self, key: &str) -> usize {
        for (node, url) in self.node_urls().iter().enumerate() {
            let client = redis::Client::open(url.as_str()).expect("node url");
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                continue;
            };
            let got: redis::RedisResult<Option<String>> =
                redis::cmd("GET").arg(key).query_async(&mut conn).await;
            if got.is_ok() {
                return node;
            }
        }
        panic!("no node holds the slot of {key}");
    }
}

impl Bindings for RedisCluster {
    /// Waits (at most 3 s) until the response binding of `id` is in the cluster (the gateway
    /// answers while its SET is in flight); whether it came
    async fn binding_written(&self, id: &str) -> bool {
        let key = wsv2_core::store::StoreKey::response(id.as_bytes());
        let client = redis::cluster::ClusterClient::new(self.node_urls()).expect("cluster");
        let mut conn = client.get_async_connection().await.expect("cluster conn");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let value: redis::RedisResult<Option<String>> = redis::cmd("GET")
                .arg(key.as_str())
                .query_async(&mut conn)
                .await;
            if matches!(value, Ok(Some(_))) {
                return true;
            }
            tokio::task::yield_now().await;
        }
        false
    }
}

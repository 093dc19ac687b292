//! The Redis backend of the state store: runs the core's store commands, each under
//! `store.store_op_timeout`.
//!
//! The core decides everything else — keys, TTLs, which failures are misses, the breaker —
//! so this file only speaks Redis: `GET`, `SET key value PX ttl`, `DEL`, `PEXPIRE`. The
//! connection is made on first use (a gateway starts even when Redis is down) and
//! `redis::aio::ConnectionManager` reconnects after failures.
//!
//! A `redis+cluster://host:port[,host:port…]` URL names a Redis Cluster: the commands then go
//! through redis-rs's cluster connection, which routes each one to the master of its key's slot
//! and follows `MOVED`/`ASK` and topology changes. Every command here touches exactly one key,
//! so none ever spans slots; keep it so (a command that must touch several keys would need hash
//! tags, and a tag shared by a whole group would put that group in one slot). The op timeout and
//! the core's breaker see a cluster exactly as they see one server.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use tokio::sync::OnceCell;
use wsv2_core::store::{CommandKind, StoreCommand, StoreFailure};

use crate::runtime::{Rt, timeout};

/// A Redis connection shared by the control task's store commands
pub(crate) struct RedisStore {
    target: Target,
    op_timeout: Duration,
    rt: Rt,
}

/// One server or a cluster, each with its connection made on first use
enum Target {
    Single {
        client: redis::Client,
        manager: OnceCell<ConnectionManager>,
    },
    Cluster {
        client: Box<ClusterClient>,
        connection: OnceCell<ClusterConnection>,
    },
}

impl RedisStore {
    /// A store for `url` (`redis://host:port[/db]`, or `redis+cluster://host:port[,host:port…]`
    /// for a cluster); nothing is connected yet
    pub(crate) fn new(rt: Rt, url: &str, op_timeout: Duration) -> Result<Self, redis::RedisError> {
        let target = match wsv2_core::file_config::redis_cluster_seeds(url) {
            None => Target::Single {
                client: redis::Client::open(url)?,
                manager: OnceCell::new(),
            },
            Some(Err(why)) => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    why,
                )));
            }
            Some(Ok(seeds)) => Target::Cluster {
                // One retry, as for one server: the op timeout and the breaker bound the rest.
                client: Box::new(
                    ClusterClient::builder(seeds)
                        .connection_timeout(op_timeout)
                        .response_timeout(op_timeout)
                        .retries(1)
                        .build()?,
                ),
                connection: OnceCell::new(),
            },
        };
        Ok(Self {
            target,
            op_timeout,
            rt,
        })
    }

    /// The runtime its commands run on
    pub(crate) fn rt(&self) -> &Rt {
        &self.rt
    }

    /// Runs one command; every failure is reported, never panics, never outlives `op_timeout`
    pub(crate) async fn execute(&self, cmd: &StoreCommand) -> Result<Option<String>, StoreFailure> {
        match timeout(&self.rt, self.op_timeout, self.run(cmd)).await {
            Ok(result) => result,
            Err(_) => Err(StoreFailure::TimedOut),
        }
    }

    /// Connects now, so the first binding written after start does not also pay the connect
    /// (a failure is left to the first command, which retries)
    pub(crate) async fn warm_up(&self) {
        let connect = async {
            match &self.target {
                Target::Single { .. } => self.single().await.map(drop),
                Target::Cluster { .. } => self.cluster().await.map(drop),
            }
        };
        let _ = timeout(&self.rt, self.op_timeout, connect).await;
    }

    async fn run(&self, cmd: &StoreCommand) -> Result<Option<String>, StoreFailure> {
        match &self.target {
            Target::Single { .. } => run_on(&mut self.single().await?, cmd).await,
            Target::Cluster { .. } => run_on(&mut self.cluster().await?, cmd).await,
        }
    }

    async fn single(&self) -> Result<ConnectionManager, StoreFailure> {
        let Target::Single { client, manager } = &self.target else {
            return Err(StoreFailure::Rejected);
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.op_timeout))
            .set_response_timeout(Some(self.op_timeout))
            .set_number_of_retries(1);
        manager
            .get_or_try_init(|| client.get_connection_manager_with_config(config))
            .await
            .cloned()
            .map_err(|_| StoreFailure::Unreachable)
    }

    async fn cluster(&self) -> Result<ClusterConnection, StoreFailure> {
        let Target::Cluster { client, connection } = &self.target else {
            return Err(StoreFailure::Rejected);
        };
        connection
            .get_or_try_init(|| client.get_async_connection())
            .await
            .cloned()
            .map_err(|_| StoreFailure::Unreachable)
    }
}

/// One command on `conn`: a single key, so a cluster routes it to one slot's master
async fn run_on<C: ConnectionLike>(
    conn: &mut C,
    cmd: &StoreCommand,
) -> Result<Option<String>, StoreFailure> {
    let key = cmd.kind.key().as_str();
    let result: redis::RedisResult<Option<String>> = match &cmd.kind {
        CommandKind::Get { .. } => redis::cmd("GET").arg(key).query_async(&mut *conn).await,
        CommandKind::Set { value, ttl, .. } => redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(millis(*ttl))
            .query_async::<()>(&mut *conn)
            .await
            .map(|()| None),
        CommandKind::Delete { .. } => redis::cmd("DEL")
            .arg(key)
            .query_async::<i64>(&mut *conn)
            .await
            .map(|_| None),
        CommandKind::Expire { ttl, .. } => redis::cmd("PEXPIRE")
            .arg(key)
            .arg(millis(*ttl))
            .query_async::<i64>(&mut *conn)
            .await
            .map(|_| None),
    };
    result.map_err(|e| {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
        {
            StoreFailure::Unreachable
        } else {
            StoreFailure::Rejected
        }
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::net::TcpListener;
    use wsv2_core::store::{OpId, StoreCommand};

    use super::*;

    fn redis_url() -> String {
        std::env::var("WSV2_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
    }

    /// A key in a group of its own, so parallel tests and runs never share state
    fn key(tag: &str) -> wsv2_core::store::StoreKey {
        let group = format!("test-{}-{tag}", std::process::id());
        let id = format!("sess_{:?}", Instant::now());
        wsv2_core::store::StoreKey::session(&group, id.as_bytes())
    }

    fn cmd(op: u64, kind: CommandKind) -> StoreCommand {
        StoreCommand { op: OpId(op), kind }
    }

    #[tokio::test]
    async fn set_get_expire_delete_against_the_real_redis() {
        let store =
            RedisStore::new(crate::test_rt(), &redis_url(), Duration::from_secs(3)).expect("url");
        let key = key("roundtrip");
        let ttl = Duration::from_secs(60);
        let set = CommandKind::Set {
            key: key.clone(),
            value: "7".to_owned(),
            ttl,
        };
        assert_eq!(store.execute(&cmd(1, set)).await, Ok(None));
        assert_eq!(
            store
                .execute(&cmd(2, CommandKind::Get { key: key.clone() }))
                .await,
            Ok(Some("7".to_owned()))
        );
        assert_eq!(
            store
                .execute(&cmd(
                    3,
                    CommandKind::Expire {
                        key: key.clone(),
                        ttl
                    }
                ))
                .await,
            Ok(None)
        );
        assert_eq!(
            store
                .execute(&cmd(4, CommandKind::Delete { key: key.clone() }))
                .await,
            Ok(None)
        );
        assert_eq!(
            store.execute(&cmd(5, CommandKind::Get { key })).await,
            Ok(None),
            "deleted"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let store = RedisStore::new(
            crate::test_rt(),
            &format!("redis://127.0.0.1:{port}"),
            Duration::from_secs(3),
        )
        .expect("url");
        let got = store
            .execute(&cmd(1, CommandKind::Get { key: key("closed") }))
            .await;
        assert!(
            matches!(got, Err(StoreFailure::Unreachable | StoreFailure::TimedOut)),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out_at_the_op_timeout() {
        // Accepts connections and never answers: the per-command bound must fire.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let store = RedisStore::new(
            crate::test_rt(),
            &format!("redis://127.0.0.1:{port}"),
            Duration::from_millis(200),
        )
        .expect("url");
        let got = store
            .execute(&cmd(1, CommandKind::Get { key: key("silent") }))
            .await;
        assert!(
            matches!(got, Err(StoreFailure::TimedOut | StoreFailure::Unreachable)),
            "{got:?}"
        );
        hold.abort();
    }
}

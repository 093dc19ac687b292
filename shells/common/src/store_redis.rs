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
//!
//! A `redis+sentinel://host:port[,host:port…]/master[/db]` URL names a master found through
//! Redis Sentinel. The sentinels are asked for the master's address on first use, and again
//! after a command meets what a failover looks like from the client's side: the master
//! unreachable or silent past the op timeout, or a `READONLY` answer from a master that was
//! demoted to replica. The ops that meet the same stale connection share one lookup.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{IntoConnectionInfo, RedisError, RedisResult};
use tokio::sync::OnceCell;
use wsv2_core::file_config::SentinelTarget;
use wsv2_core::store::{RequestKind, StoreFailure, StoreRequest};

use crate::runtime::{Rt, timeout};

/// A Redis connection shared by the control task's store commands
pub(crate) struct RedisStore {
    target: Target,
    op_timeout: Duration,
    rt: Rt,
}

/// One server, a cluster or a master behind sentinels, each with its connection made on first
/// use
enum Target {
    Single {
        client: redis::Client,
        manager: OnceCell<ConnectionManager>,
    },
    Cluster {
        client: Box<ClusterClient>,
        connection: OnceCell<ClusterConnection>,
    },
    Sentinel {
        target: SentinelTarget,
        /// The master's credentials and database
        node: SentinelNodeConnectionInfo,
        /// The connection to the master as last found. Replaced by an empty cell, never
        /// mutated, when the master may have moved; ops clone it out (the lock is never held
        /// across an await), and those that find it empty share one lookup.
        master: Mutex<Arc<OnceCell<ConnectionManager>>>,
    },
}

impl RedisStore {
    /// A store for `url` (`redis://host:port[/db]`, `redis+cluster://host:port[,host:port…]` for
    /// a cluster, `redis+sentinel://host:port[,host:port…]/master[/db]` for a master behind
    /// sentinels); nothing is connected yet
    pub(crate) fn new(rt: Rt, url: &str, op_timeout: Duration) -> Result<Self, redis::RedisError> {
        let invalid = |why| RedisError::from((redis::ErrorKind::InvalidClientConfig, why));
        let cluster = wsv2_core::file_config::redis_cluster_seeds(url);
        let sentinel = wsv2_core::file_config::redis_sentinel(url);
        let target = match (cluster, sentinel) {
            (Some(Err(why)), _) | (_, Some(Err(why))) => return Err(invalid(why)),
            (None, Some(Ok(target))) => {
                let settings = target.node_settings_url().into_connection_info()?;
                Target::Sentinel {
                    node: SentinelNodeConnectionInfo::default()
                        .set_redis_connection_info(settings.redis_settings().clone()),
                    target,
                    master: Mutex::new(Arc::new(OnceCell::new())),
                }
            }
            (None, None) => Target::Single {
                client: redis::Client::open(url)?,
                manager: OnceCell::new(),
            },
            (Some(Ok(seeds)), _) => Target::Cluster {
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
    pub(crate) async fn execute(&self, cmd: &StoreRequest) -> Result<Option<String>, StoreFailure> {
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
                Target::Sentinel { .. } => self.sentinel_master().await.map(drop),
            }
        };
        let _ = timeout(&self.rt, self.op_timeout, connect).await;
    }

    async fn run(&self, cmd: &StoreRequest) -> Result<Option<String>, StoreFailure> {
        let result = match &self.target {
            Target::Single { .. } => run_on(&mut self.single().await?, cmd).await,
            Target::Cluster { .. } => run_on(&mut self.cluster().await?, cmd).await,
            Target::Sentinel { master, .. } => {
                let (cell, mut manager) = self.sentinel_master().await?;
                // Forgets the master unless the command ends without a failover's signs; also
                // when the op timeout drops it unfinished (a master that went silent).
                let mut suspect = ForgetOnDrop {
                    master,
                    cell: Some(cell),
                };
                let result = run_on(&mut manager, cmd).await;
                if !result.as_ref().is_err_and(master_may_have_moved) {
                    suspect.cell = None;
                }
                result
            }
        };
        result.map_err(|e| failure(&e))
    }

    /// One retry, as for a cluster: the op timeout and the breaker bound the rest
    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.op_timeout))
            .set_response_timeout(Some(self.op_timeout))
            .set_number_of_retries(1)
    }

    async fn single(&self) -> Result<ConnectionManager, StoreFailure> {
        let Target::Single { client, manager } = &self.target else {
            return Err(StoreFailure::Rejected);
        };
        manager
            .get_or_try_init(|| client.get_connection_manager_with_config(self.manager_config()))
            .await
            .cloned()
            .map_err(|_| StoreFailure::Unreachable)
    }

    /// The master's connection and the cell it came from, asking the sentinels when the cell
    /// is empty
    async fn sentinel_master(
        &self,
    ) -> Result<(Arc<OnceCell<ConnectionManager>>, ConnectionManager), StoreFailure> {
        let Target::Sentinel {
            target,
            node,
            master,
        } = &self.target
        else {
            return Err(StoreFailure::Rejected);
        };
        let cell = Arc::clone(&master.lock().unwrap_or_else(PoisonError::into_inner));
        let manager = cell
            .get_or_try_init(|| async {
                let mut sentinels = Sentinel::build(target.sentinels.clone())?;
                let client = sentinels
                    .async_master_for(&target.master, Some(node))
                    .await?;
                client
                    .get_connection_manager_with_config(self.manager_config())
                    .await
            })
            .await
            .cloned();
        match manager {
            Ok(manager) => Ok((cell, manager)),
            Err(_) => Err(StoreFailure::Unreachable),
        }
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

/// Whether `error` is what a master failover looks like from a client: the master gone, or a
/// write refused by a master demoted to replica
fn master_may_have_moved(error: &RedisError) -> bool {
    failure(error) == StoreFailure::Unreachable
        || error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

/// On drop, empties the sentinel target's master cell if it still holds `cell`, so the next op
/// asks the sentinels again (a cell another op already replaced is left alone)
struct ForgetOnDrop<'a> {
    master: &'a Mutex<Arc<OnceCell<ConnectionManager>>>,
    cell: Option<Arc<OnceCell<ConnectionManager>>>,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        let Some(stale) = self.cell.take() else {
            return;
        };
        let mut current = self.master.lock().unwrap_or_else(PoisonError::into_inner);
        if Arc::ptr_eq(&current, &stale) {
            *current = Arc::new(OnceCell::new());
        }
    }
}

/// The store's view of a Redis error: the server unreachable, or the command refused
fn failure(error: &RedisError) -> StoreFailure {
    if error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
    {
        StoreFailure::Unreachable
    } else {
        StoreFailure::Rejected
    }
}

/// One command on `conn`: a single key, so a cluster routes it to one slot's master
async fn run_on<C: ConnectionLike>(
    conn: &mut C,
    cmd: &StoreRequest,
) -> RedisResult<Option<String>> {
    let key = cmd.kind.key().as_str();
    match &cmd.kind {
        RequestKind::Get { .. } => redis::cmd("GET").arg(key).query_async(&mut *conn).await,
        RequestKind::Set { value, ttl, .. } => redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(millis(*ttl))
            .query_async::<()>(&mut *conn)
            .await
            .map(|()| None),
        RequestKind::Delete { .. } => redis::cmd("DEL")
            .arg(key)
            .query_async::<i64>(&mut *conn)
            .await
            .map(|_| None),
        RequestKind::Expire { ttl, .. } => redis::cmd("PEXPIRE")
            .arg(key)
            .arg(millis(*ttl))
            .query_async::<i64>(&mut *conn)
            .await
            .map(|_| None),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::net::TcpListener;
    use wsv2_core::store::{OpId, StoreRequest};

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

    fn cmd(op: u64, kind: RequestKind) -> StoreRequest {
        StoreRequest { op: OpId(op), kind }
    }

    #[tokio::test]
    async fn set_get_expire_delete_against_the_real_redis() {
        let store =
            RedisStore::new(crate::test_rt(), &redis_url(), Duration::from_secs(3)).expect("url");
        let key = key("roundtrip");
        let ttl = Duration::from_secs(60);
        let set = RequestKind::Set {
            key: key.clone(),
            value: "7".to_owned(),
            ttl,
        };
        assert_eq!(store.execute(&cmd(1, set)).await, Ok(None));
        assert_eq!(
            store
                .execute(&cmd(2, RequestKind::Get { key: key.clone() }))
                .await,
            Ok(Some("7".to_owned()))
        );
        assert_eq!(
            store
                .execute(&cmd(
                    3,
                    RequestKind::Expire {
                        key: key.clone(),
                        ttl
                    }
                ))
                .await,
            Ok(None)
        );
        assert_eq!(
            store
                .execute(&cmd(4, RequestKind::Delete { key: key.clone() }))
                .await,
            Ok(None)
        );
        assert_eq!(
            store.execute(&cmd(5, RequestKind::Get { key })).await,
            Ok(None),
            "deleted"
        );
    }

    #[test]
    fn a_lost_master_or_a_readonly_answer_sends_the_next_op_to_the_sentinels() {
        use redis::{ErrorKind, ServerErrorKind};
        let readonly = RedisError::from((ErrorKind::Server(ServerErrorKind::ReadOnly), "READONLY"));
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let refused_command =
            RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "ERR"));
        assert!(master_may_have_moved(&readonly));
        assert!(master_may_have_moved(&refused));
        assert!(!master_may_have_moved(&refused_command));
        // A demoted master's READONLY is a refusal for the breaker, not an outage.
        assert_eq!(failure(&readonly), StoreFailure::Rejected);
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
            .execute(&cmd(1, RequestKind::Get { key: key("closed") }))
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
            .execute(&cmd(1, RequestKind::Get { key: key("silent") }))
            .await;
        assert!(
            matches!(got, Err(StoreFailure::TimedOut | StoreFailure::Unreachable)),
            "{got:?}"
        );
        hold.abort();
    }
}

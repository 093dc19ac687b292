//! The two `redis_url` forms beyond one server: a Redis Cluster (`redis+cluster://`) and a
//! master found through Redis Sentinel (`redis+sentinel://`). Pure parsing: the driver connects.

/// The scheme of a Redis Cluster `redis_url`
pub const REDIS_CLUSTER_SCHEME: &str = "redis+cluster://";

/// The seed nodes of a Redis Cluster `redis_url`, each as a `redis://` URL: `None` when `url`
/// does not name a cluster, an error when it names one badly.
///
/// The form is `redis+cluster://[user:password@]host:port[,host:port…]`: one or more seed nodes
/// (the client discovers the rest from them), the credentials written once and used for every
/// node (redis-rs refuses seeds with different credentials).
pub fn redis_cluster_seeds(url: &str) -> Option<Result<Vec<String>, &'static str>> {
    let rest = strip_scheme(url, REDIS_CLUSTER_SCHEME)?;
    let (userinfo, nodes) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    Some(host_ports(nodes, userinfo).map_err(|()| {
        "redis+cluster:// takes comma-separated host:port seed nodes \
         (redis+cluster://[user:password@]host:port[,host:port...])"
    }))
}

/// The scheme of a Redis Sentinel `redis_url`
pub const REDIS_SENTINEL_SCHEME: &str = "redis+sentinel://";

/// A master found through Redis Sentinel: the sentinels to ask and the name they monitor
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelTarget {
    /// Each sentinel as a `redis://host:port` URL (sentinels are asked without credentials)
    pub sentinels: Vec<String>,
    /// The master name the sentinels monitor (`sentinel monitor <name> …`)
    pub master: String,
    /// `user:password@` as written in the URL (percent-encoded), or empty: the data nodes'
    /// credentials
    userinfo: String,
    /// The database number on the master
    pub db: i64,
}

impl SentinelTarget {
    /// A `redis://` URL that carries the data nodes' credentials and database, with the first
    /// sentinel as a placeholder host: for a client library to read those settings from (the
    /// master's address comes from the sentinels at connect time)
    pub fn node_settings_url(&self) -> String {
        let host = self.sentinels[0].trim_start_matches("redis://");
        format!("redis://{}{host}/{}", self.userinfo, self.db)
    }
}

impl std::fmt::Debug for SentinelTarget {
    // The userinfo holds a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelTarget")
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("credentials", &!self.userinfo.is_empty())
            .field("db", &self.db)
            .finish()
    }
}

const SENTINEL_FORM: &str = "redis+sentinel:// takes comma-separated host:port sentinels and the \
     master name (redis+sentinel://[user:password@]host:port[,host:port...]/master[/db])";

/// The sentinels and master name of a Redis Sentinel `redis_url`: `None` when `url` does not
/// name one, an error when it names one badly.
///
/// The form is `redis+sentinel://[user:password@]host:port[,host:port…]/master[/db]`: the
/// sentinels to ask for the current master of `master`; the credentials and database apply to
/// the master (the sentinels are asked without credentials).
pub fn redis_sentinel(url: &str) -> Option<Result<SentinelTarget, &'static str>> {
    let rest = strip_scheme(url, REDIS_SENTINEL_SCHEME)?;
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    let Some((nodes, path)) = rest.split_once('/') else {
        return Some(Err(SENTINEL_FORM));
    };
    let (master, db) = match path.split_once('/') {
        None => (path, Some(0)),
        Some((master, "")) => (master, Some(0)),
        Some((master, db)) => (master, db.parse::<i64>().ok().filter(|db| *db >= 0)),
    };
    let master_ok = !master.is_empty()
        && master
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    let (Some(db), true) = (db, master_ok) else {
        return Some(Err(SENTINEL_FORM));
    };
    let Ok(sentinels) = host_ports(nodes, "") else {
        return Some(Err(SENTINEL_FORM));
    };
    Some(Ok(SentinelTarget {
        sentinels,
        master: master.to_owned(),
        userinfo: userinfo.to_owned(),
        db,
    }))
}

/// What follows `scheme` in `url` (ASCII case-insensitive), or `None` when `url` has another
fn strip_scheme<'u>(url: &'u str, scheme: &str) -> Option<&'u str> {
    // `get`, not indexing: the scheme's length may fall inside a multi-byte character.
    url.get(..scheme.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        .then(|| &url[scheme.len()..])
}

/// `host:port[,host:port…]` as `redis://{userinfo}host:port` URLs, or `Err` on a malformed node
fn host_ports(nodes: &str, userinfo: &str) -> Result<Vec<String>, ()> {
    let mut urls = Vec::new();
    for node in nodes.split(',') {
        let node = node.trim();
        let well_formed = node.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.contains(['/', '@', ' '])
                && port.parse::<u16>().is_ok_and(|p| p != 0)
        });
        if !well_formed {
            return Err(());
        }
        urls.push(format!("redis://{userinfo}{node}"));
    }
    Ok(urls)
}

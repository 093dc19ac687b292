//! Timer helpers shared by the tasks.

use std::time::Instant;

/// Sleeps until `deadline`, or forever when there is none
pub(crate) async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}

//! The scheduler: account choice, cooldowns, retries and failover.

//! # wsv2-core
//!
//! The sans-IO core of the wsv2 gateway (crate doc completed with the session machine).
#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod conn;
pub mod event;
mod ids;
pub mod pool;
pub mod proxy;
pub mod resolver;
pub mod rng;
pub mod scheduler;
pub mod session;
pub mod store;
pub mod timer;

pub use config::Config;
pub use ids::{AccountId, ConnId, Lane, ResponseId, SessionId, StreamId, TurnId};

//! The core's scripted, table and property tests, one test binary.
//!
//! Each subject is a module (`session`, `http`, `control`, `pool`, `scheduler`, `store`, `event`,
//! `config`, `file_config`, `proxy`, ...) of files named after what they cover; test paths read
//! `subject::file::test_name`. What the modules share is in [`support`]: the drivers that step a
//! machine in virtual time and record a trace, and [`assert_trace!`], which compares a trace with
//! its snapshot in the top-level `snapshots/` folder by an explicit name.
//!
//! ```text
//! cargo test -p wsv2-core --test suite                   # the whole suite
//! cargo test -p wsv2-core --test suite session::timers:: # one file
//! ```
//!
//! The allocation-counting tests are a binary of their own (`tests/alloc`): a global allocator is
//! per binary.

#[macro_use]
mod support;

mod config;
mod control;
mod event;
mod file_config;
mod http;
mod metrics_names;
mod pool;
mod proxy;
mod resolver_table;
mod scheduler;
mod session;
mod store;
mod trace_reports;

//! The reliability suite's load side (issue 14, workloads 1–4): sessions that check every event
//! they receive ([`integrity`]), the mixed load ([`load`]), the reconnect storm ([`storm`]), the
//! fault matrix ([`faults`]), the soak ([`soak`]), the probes of the processes under test
//! ([`probe`]), a TCP relay with fault switches ([`relay`]) and `RELIABILITY.md` from the raw
//! JSON ([`report`]; the soak's section in [`soak_report`]). The `wsv2-reliability` binary is
//! the command line; `tests/reliability/run.sh` runs it against both shells.

pub mod faults;
pub mod integrity;
pub mod load;
pub mod misbehave;
pub mod probe;
pub mod relay;
pub mod report;
pub mod session;
pub mod soak;
pub mod soak_report;
pub mod storm;
pub mod svg;

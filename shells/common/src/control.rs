//! The core's control API, re-exported for the tasks that drive it.

pub(crate) use wsv2_core::control::{
    AccountSpec, Control, ControlOutput, DialFailure, UpgradeRefusal,
};

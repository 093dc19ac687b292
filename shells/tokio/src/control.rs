//! The control API the shell drives (re-exported so one line switches its source).

pub(crate) use crate::control_stub::*;

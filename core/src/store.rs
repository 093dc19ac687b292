//! State-store rules: bindings, store commands, the breaker and local copies.

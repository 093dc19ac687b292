//! Per-account pools of upstream connections and the registry of all accounts.

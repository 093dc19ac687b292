mod failover;
mod flow;
mod slot_grants;
mod unread_lease;

mod failover;
mod flow;
mod unread_lease;

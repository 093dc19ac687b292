mod failover;
mod flow;

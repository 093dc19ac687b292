mod failures;
mod props;
mod stall;
mod timers;
mod turns;

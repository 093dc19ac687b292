mod holds;
mod http;
mod props;
mod session;
mod ticks;
mod warm;

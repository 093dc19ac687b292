mod client;
mod errors;
mod props;
mod server;

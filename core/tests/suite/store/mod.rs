mod memory;
mod props;
mod remote;
mod rules;

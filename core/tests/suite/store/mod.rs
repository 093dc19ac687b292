mod memory;
mod props;
mod rules;

mod bound;
mod dials;
mod health;
mod layers;
mod props;
mod retry;
mod slots;

mod errors;
mod turns;

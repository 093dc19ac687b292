mod defaults;
mod serde;
mod validate;

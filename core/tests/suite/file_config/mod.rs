mod env;
mod example;
mod issues;
mod props;
mod report;
mod urls;

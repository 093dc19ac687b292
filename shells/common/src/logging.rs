//! Log output: human-readable text (the default) or one JSON object per line
//! (`--log-format json`), filtered by `RUST_LOG` (default `info`).
//!
//! Sessions and turns are spans (`session{id, group}`, `turn{turn, account, conn, response,
//! lane}`); JSON lines carry them in `span` / `spans`. Frame bodies, prompts and credentials are
//! never logged.

use tracing_subscriber::EnvFilter;

/// How log lines are written
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-11-26T10:00:00Z  INFO session{id=1 group=default}: response ended outcome=completed …`
    #[default]
    Text,
    /// `{"timestamp":…,"level":"INFO","fields":{…},"span":{…},"spans":[…]}`
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format `{other}` (use text or json)")),
        }
    }
}

/// Installs the process's log subscriber (a second call is a no-op)
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_case_insensitively_and_unknown_ones_are_named() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        let err = "yaml".parse::<LogFormat>().unwrap_err();
        assert!(err.contains("yaml"), "{err}");
    }
}

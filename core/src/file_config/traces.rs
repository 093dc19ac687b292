//! Where spans go: `[telemetry]` keys and the standard `OTEL_*` variables, resolved once.
//!
//! Precedence, highest first (the OpenTelemetry SDKs' own order: the environment configures
//! the exporter, the file gives the deployment's defaults):
//!
//! | what | variables | file key |
//! |---|---|---|
//! | off | `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none` | `traces_endpoint = ""` |
//! | URL | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (as is), `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces`) | `traces_endpoint` |
//! | headers | `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS` | — (secrets stay out of the file) |
//! | timeout | `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT` (ms) | `export_timeout` |
//! | service | `OTEL_SERVICE_NAME`, `service.name` in `OTEL_RESOURCE_ATTRIBUTES` | `service_name` |
//! | resource | `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k=v`, percent-encoded values) | — |
//!
//! A malformed variable is an issue with the variable's name as its path (never its value:
//! headers carry credentials).

use std::time::Duration;

use super::ConfigIssue;
use super::authority::{parse_authority, redact_query, split_scheme};
use super::reader::push;
use super::secret::Secret;
use crate::config::TelemetryConfig;

/// Resource attributes taken from `OTEL_RESOURCE_ATTRIBUTES` at most
pub const MAX_RESOURCE_ATTRIBUTES: usize = 32;

/// The resolved trace export: present only when spans are exported
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceExport {
    /// `http` or `https` (`https` trusts the built-in webpki roots)
    pub tls: bool,
    /// Host to connect to (IPv6 without brackets)
    pub host: String,
    /// Port (default 80 / 443)
    pub port: u16,
    /// `Host` header value
    pub host_header: String,
    /// Path and query to POST to
    pub path: String,
    /// Extra request headers (their values are secrets: they never reach a log line)
    pub headers: Vec<(String, Secret)>,
    /// `service.name`
    pub service_name: String,
    /// Other resource attributes (`OTEL_RESOURCE_ATTRIBUTES`, less `service.name`)
    pub resource: Vec<(String, String)>,
    /// Bound on one export request
    pub timeout: Duration,
}

impl TraceExport {
    /// The URL for the startup line and check-config: never credentials (none are allowed in
    /// it), and a query string shown as `?***` (it may carry a key)
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        redact_query(&format!("{scheme}://{}{}", self.host_header, self.path))
    }
}

/// Resolves the export from the file's `[telemetry]` and the `OTEL_*` variables in `env`;
/// `Ok(None)` when spans are not exported
pub fn resolve_trace_export(
    cfg: &TelemetryConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<TraceExport>, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    // The specification: an empty value counts as unset.
    let var = |name: &str| {
        env(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
    // The traces-specific variable first, then the general one.
    let first = |names: [&'static str; 2]| {
        names
            .into_iter()
            .find_map(|name| var(name).map(|v| (name, v)))
    };
    let file_endpoint = cfg.traces_endpoint.trim();
    let endpoint = first([
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ])
    .or_else(|| {
        (!file_endpoint.is_empty()).then(|| ("telemetry.traces_endpoint", file_endpoint.to_owned()))
    });
    if let Some(exporter) = var("OTEL_TRACES_EXPORTER")
        && !matches!(exporter.to_ascii_lowercase().as_str(), "otlp" | "none")
    {
        push(&mut issues, "OTEL_TRACES_EXPORTER", "only otlp or none");
    }
    // The protocol is never echoed: the issue says what is supported instead.
    if first([
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ])
    .is_some_and(|(_, p)| p != "http/protobuf")
    {
        push(
            &mut issues,
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "only http/protobuf is supported",
        );
    }
    let headers = [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ]
    .into_iter()
    .flat_map(|name| var(name).map(|v| (name, v)))
    .fold(
        Vec::new(),
        |mut all: Vec<(String, Secret)>, (name, text)| {
            match parse_pairs(&text) {
                Some(pairs) => {
                    for (k, v) in pairs {
                        // The traces-specific variable (read second) wins per header name.
                        all.retain(|(have, _)| !have.eq_ignore_ascii_case(&k));
                        all.push((k, Secret::new(v)));
                    }
                }
                None => push(
                    &mut issues,
                    name,
                    "expected comma-separated name=value pairs",
                ),
            }
            all
        },
    );
    let timeout = match first([
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]) {
        Some((name, ms)) => match ms.parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                push(
                    &mut issues,
                    name,
                    "expected a positive number of milliseconds",
                );
                cfg.export_timeout
            }
        },
        None => cfg.export_timeout,
    };
    let mut resource = Vec::new();
    let mut service_name = cfg.service_name.clone();
    if let Some(text) = var("OTEL_RESOURCE_ATTRIBUTES") {
        match parse_pairs(&text) {
            Some(pairs) if pairs.len() <= MAX_RESOURCE_ATTRIBUTES => {
                for (k, v) in pairs {
                    if k == "service.name" {
                        service_name = v;
                    } else {
                        resource.push((k, v));
                    }
                }
            }
            too_many_or_bad => {
                let why = match too_many_or_bad {
                    Some(_) => "more than 32 attributes",
                    None => "expected comma-separated key=value pairs",
                };
                push(&mut issues, "OTEL_RESOURCE_ATTRIBUTES", why);
            }
        }
    }
    if let Some(name) = var("OTEL_SERVICE_NAME") {
        service_name = name;
    }
    let target = endpoint.and_then(|(source, url)| {
        // The general variable names a base URL: `/v1/traces` follows it.
        let append = source == "OTEL_EXPORTER_OTLP_ENDPOINT";
        parse_endpoint(&url, append)
            .map_err(|why| push(&mut issues, source, why))
            .ok()
    });
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(target
        .filter(|_| !disabled)
        .map(|(tls, host, port, host_header, path)| TraceExport {
            tls,
            host,
            port,
            host_header,
            path,
            headers,
            service_name,
            resource,
            timeout,
        }))
}

/// `http(s)://host[:port][/path]`; with `append`, `/v1/traces` follows the path (the
/// `OTEL_EXPORTER_OTLP_ENDPOINT` rule). No credentials in the URL: they go in headers.
fn parse_endpoint(url: &str, append: bool) -> Result<(bool, String, u16, String, String), String> {
    let (scheme, rest) = split_scheme(url)?;
    let tls = match scheme.as_str() {
        "http" => false,
        "https" => true,
        _ => return Err("expected an http:// or https:// URL".to_owned()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err("credentials do not belong in the URL; use OTEL_EXPORTER_OTLP_HEADERS".into());
    }
    let parsed = parse_authority(authority)?;
    let port = parsed.port.unwrap_or(if tls { 443 } else { 80 });
    let host_header = match parsed.port {
        Some(p) => format!("{}:{p}", parsed.written),
        None => parsed.written.clone(),
    };
    let path = if append {
        format!("{}/v1/traces", path.trim_end_matches('/'))
    } else if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    };
    Ok((tls, parsed.host, port, host_header, path))
}

/// `k=v,k=v` with percent-encoded values (W3C Baggage-like, as the OTel specification says);
/// `None` when a member has no `=` or an empty key
fn parse_pairs(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for member in text.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let (k, v) = member.split_once('=')?;
        let k = k.trim();
        if k.is_empty() || k.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return None;
        }
        out.push((k.to_owned(), header_safe(v.trim())?));
    }
    Some(out)
}

/// A percent-decoded value that may go in a header (no control characters: CR/LF would split
/// the request)
fn header_safe(text: &str) -> Option<String> {
    super::proxy_url::percent_decode(text).filter(|v| !v.chars().any(char::is_control))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(file: &str, vars: &[(&str, &str)]) -> Result<Option<TraceExport>, Vec<ConfigIssue>> {
        let cfg = TelemetryConfig {
            traces_endpoint: file.to_owned(),
            ..TelemetryConfig::default()
        };
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        resolve_trace_export(&cfg, &env)
    }

    #[test]
    fn off_unless_an_endpoint_is_named() {
        assert_eq!(resolve("", &[]), Ok(None));
        let t = resolve("http://127.0.0.1:4318/v1/traces", &[])
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 4318, "/v1/traces")
        );
        assert_eq!(t.service_name, "wsv2-gateway");
        assert_eq!(t.timeout, Duration::from_secs(10));
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let t = resolve(
            "http://file:4318/v1/traces",
            &[
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "https://collector.example/otlp/",
                ),
                ("OTEL_SERVICE_NAME", "edge"),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment=prod,service.name=x,team=a%20b",
                ),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "authorization=Bearer%20s3cret,x-a=1",
                ),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-A=2"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500"),
            ],
        )
        .unwrap()
        .unwrap();
        assert!(t.tls);
        assert_eq!(t.url(), "https://collector.example/otlp/v1/traces");
        assert_eq!(t.service_name, "edge", "OTEL_SERVICE_NAME wins");
        assert_eq!(
            t.resource,
            [
                ("deployment.environment".into(), "prod".into()),
                ("team".into(), "a b".into())
            ]
        );
        let headers: Vec<_> = t
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(headers, [("authorization", "Bearer s3cret"), ("X-A", "2")]);
        assert!(!format!("{t:?}").contains("s3cret"), "headers never print");
        assert_eq!(t.timeout, Duration::from_millis(1500));
        let exact = resolve(
            "",
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://h:1/x")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(exact.path, "/x", "the traces endpoint is used as is");
    }

    #[test]
    fn disabled_by_the_standard_switches() {
        for var in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            assert_eq!(resolve("http://h:4318/v1/traces", &[var]), Ok(None));
        }
    }

    #[test]
    fn malformed_values_are_issues_that_never_echo_them() {
        let issues = resolve(
            "ftp://h/",
            &[
                ("OTEL_EXPORTER_OTLP_HEADERS", "s3cret-without-equals"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
        )
        .unwrap_err();
        let paths: Vec<_> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "OTEL_EXPORTER_OTLP_HEADERS",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "telemetry.traces_endpoint"
            ]
        );
        assert!(!format!("{issues:?}").contains("s3cret"));
        let userinfo = resolve("http://user:pw@h/v1/traces", &[]).unwrap_err();
        assert!(!format!("{userinfo:?}").contains("pw"));
    }
}

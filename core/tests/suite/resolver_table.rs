//! The protocol resolver, row by row: each row asserts transport AND reason, and the whole
//! table is snapshotted as one line per input/output.

use wsv2_core::config::ProtocolConfig;
use wsv2_core::resolver::{AccountProtocol, AuthType, ProtocolReason, Transport, resolve};

/// Global switches in the order `force_http, ws_enabled, api_key_ws_enabled, oauth_ws_enabled`
fn config(force_http: bool, ws: bool, api_key_ws: bool, oauth_ws: bool) -> ProtocolConfig {
    ProtocolConfig {
        force_http,
        ws_enabled: ws,
        api_key_ws_enabled: api_key_ws,
        oauth_ws_enabled: oauth_ws,
    }
}

fn account(auth: &str, force_http: bool) -> Option<AccountProtocol> {
    Some(AccountProtocol {
        auth_type: AuthType::parse(auth),
        force_http,
    })
}

struct Row {
    rule: &'static str,
    account: Option<AccountProtocol>,
    config: ProtocolConfig,
    reason: ProtocolReason,
}

fn row(
    rule: &'static str,
    account: Option<AccountProtocol>,
    config: ProtocolConfig,
    reason: ProtocolReason,
) -> Row {
    Row {
        rule,
        account,
        config,
        reason,
    }
}

fn rows() -> Vec<Row> {
    use ProtocolReason as R;
    let on = || config(false, true, true, true);
    vec![
        row("no account", None, on(), R::NoAccount),
        row(
            "no account beats every switch",
            None,
            config(true, false, false, false),
            R::NoAccount,
        ),
        row(
            "account force_http",
            account("api_key", true),
            on(),
            R::AccountForceHttp,
        ),
        row(
            "account force_http beats global force_http",
            account("oauth", true),
            config(true, false, false, false),
            R::AccountForceHttp,
        ),
        row(
            "account force_http beats unknown auth type",
            account("bedrock", true),
            on(),
            R::AccountForceHttp,
        ),
        row(
            "global force_http",
            account("api_key", false),
            config(true, true, true, true),
            R::GlobalForceHttp,
        ),
        row(
            "global force_http beats ws disabled",
            account("oauth", false),
            config(true, false, true, true),
            R::GlobalForceHttp,
        ),
        row(
            "global force_http beats unknown auth type",
            account("bedrock", false),
            config(true, true, true, true),
            R::GlobalForceHttp,
        ),
        row(
            "ws disabled globally",
            account("api_key", false),
            config(false, false, true, true),
            R::WsDisabled,
        ),
        row(
            "ws disabled globally beats unknown auth type",
            account("upstream", false),
            config(false, false, true, true),
            R::WsDisabled,
        ),
        row(
            "api_key account, api_key ws disabled",
            account("api_key", false),
            config(false, true, false, true),
            R::ApiKeyWsDisabled,
        ),
        row(
            "oauth switch does not affect api_key",
            account("api_key", false),
            config(false, true, true, false),
            R::WsV2,
        ),
        row(
            "oauth account, oauth ws disabled",
            account("oauth", false),
            config(false, true, true, false),
            R::OAuthWsDisabled,
        ),
        row(
            "api_key switch does not affect oauth",
            account("oauth", false),
            config(false, true, false, true),
            R::WsV2,
        ),
        row(
            "unknown auth type, every switch on",
            account("bedrock", false),
            on(),
            R::UnknownAuthType,
        ),
        row(
            "unknown auth type never reaches per-type switches",
            account("upstream", false),
            config(false, true, false, false),
            R::UnknownAuthType,
        ),
        row(
            "auth type is case-sensitive (API_KEY)",
            account("API_KEY", false),
            on(),
            R::UnknownAuthType,
        ),
        row(
            "empty auth type is unknown",
            account("", false),
            on(),
            R::UnknownAuthType,
        ),
        row(
            "api_key account, everything on",
            account("api_key", false),
            on(),
            R::WsV2,
        ),
        row(
            "oauth account, everything on",
            account("oauth", false),
            on(),
            R::WsV2,
        ),
    ]
}

fn expected_transport(reason: ProtocolReason) -> Transport {
    if reason == ProtocolReason::WsV2 {
        Transport::WsV2
    } else {
        Transport::Http
    }
}

#[test]
fn resolver_table_first_match_wins_row_by_row() {
    let mut trace = String::new();
    for row in rows() {
        let decision = resolve(row.account.as_ref(), &row.config);
        assert_eq!(decision.reason, row.reason, "rule: {}", row.rule);
        assert_eq!(
            decision.transport,
            expected_transport(row.reason),
            "rule: {}",
            row.rule
        );
        let account = row.account.as_ref().map_or("-".to_owned(), |a| {
            format!(
                "{}{}",
                a.auth_type,
                if a.force_http { "+force_http" } else { "" }
            )
        });
        let c = &row.config;
        trace.push_str(&format!(
            "{:<52} account={:<18} force_http={:<5} ws={:<5} api_key_ws={:<5} oauth_ws={:<5} => {}\n",
            row.rule,
            account,
            c.force_http,
            c.ws_enabled,
            c.api_key_ws_enabled,
            c.oauth_ws_enabled,
            decision,
        ));
    }
    // The name keeps the module prefix insta gave it when this file was its own test binary.
    assert_trace!("resolver_table__resolver_table_first_match_wins", trace);
}

#[test]
fn resolver_table_covers_every_reason() {
    let rows = rows();
    for reason in ProtocolReason::ALL {
        assert!(
            rows.iter().any(|r| r.reason == reason),
            "no row for {reason}"
        );
    }
}

#[test]
fn resolver_default_config_gives_ws_to_known_auth_types_only() {
    let config = ProtocolConfig::default();
    for (auth, transport) in [
        ("api_key", Transport::WsV2),
        ("oauth", Transport::WsV2),
        ("vertex", Transport::Http),
    ] {
        let account = AccountProtocol {
            auth_type: AuthType::parse(auth),
            force_http: false,
        };
        assert_eq!(
            resolve(Some(&account), &config).transport,
            transport,
            "{auth}"
        );
    }
}

#[test]
fn resolver_auth_type_parse_round_trips_and_codes_are_distinct() {
    assert_eq!(AuthType::parse("api_key"), AuthType::ApiKey);
    assert_eq!(AuthType::parse("oauth"), AuthType::OAuth);
    assert_eq!(
        AuthType::parse("bedrock"),
        AuthType::Other("bedrock".to_owned())
    );
    for s in ["api_key", "oauth", "bedrock"] {
        assert_eq!(AuthType::parse(s).as_str(), s);
    }
    let codes: std::collections::HashSet<_> =
        ProtocolReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(codes.len(), ProtocolReason::ALL.len());
}

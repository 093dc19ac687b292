//! The protocol resolver: which accounts speak WebSocket to upstream.
//!
//! A pure function of the account's protocol settings and the global [`ProtocolConfig`]. The
//! rules are checked in a fixed order and the **first match wins**:
//!
//! | # | Condition                                   | Transport | Reason                 |
//! |---|---------------------------------------------|-----------|------------------------|
//! | 1 | no account                                  | HTTP      | `no_account`           |
//! | 2 | the account's `force_http`                  | HTTP      | `account_force_http`   |
//! | 3 | `protocol.force_http`                       | HTTP      | `global_force_http`    |
//! | 4 | `!protocol.ws_enabled`                      | HTTP      | `ws_disabled`          |
//! | 5 | `api_key` account, `!api_key_ws_enabled`    | HTTP      | `api_key_ws_disabled`  |
//! | 6 | `oauth` account, `!oauth_ws_enabled`        | HTTP      | `oauth_ws_disabled`    |
//! | 7 | any other auth type                         | HTTP      | `unknown_auth_type`    |
//! | 8 | otherwise                                   | WS v2     | `ws_v2`                |
//!
//! Rule 7 is decided before any per-type WebSocket switch could apply, so an account of an
//! unknown type can never reach WebSocket mode through a switch meant for another type (the
//! prior art's fix #6, kept as a rule here).
//!
//! The shell resolves every account once at registration (and on reload) and hands the
//! [`Transport`] to the scheduler, which schedules WebSocket sessions only on WS accounts.

use std::fmt;

use crate::config::ProtocolConfig;

/// How an account authenticates upstream, from the account's `auth_type` key
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// `"api_key"`: a platform API key
    ApiKey,
    /// `"oauth"`: a ChatGPT OAuth token
    OAuth,
    /// Anything else, kept verbatim for logs; always resolves to HTTP
    Other(String),
}

impl AuthType {
    /// Parses the configuration value; anything but `"api_key"` / `"oauth"` is [`AuthType::Other`]
    pub fn parse(value: &str) -> Self {
        match value {
            "api_key" => Self::ApiKey,
            "oauth" => Self::OAuth,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The configuration spelling
    pub fn as_str(&self) -> &str {
        match self {
            Self::ApiKey => "api_key",
            Self::OAuth => "oauth",
            Self::Other(other) => other,
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol-relevant part of one account's configuration
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountProtocol {
    /// How the account authenticates
    pub auth_type: AuthType,
    /// The account's own rollback switch: send its traffic over HTTP
    pub force_http: bool,
}

/// The upstream transport an account is used with
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// HTTP + SSE to upstream
    Http,
    /// Responses WebSocket mode (v2) to upstream
    WsV2,
}

impl Transport {
    /// Lower-case name for logs and snapshots
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::WsV2 => "ws_v2",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which rule decided the transport (one per row of the module's table)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolReason {
    /// Rule 1: there is no account
    NoAccount,
    /// Rule 2: the account forces HTTP
    AccountForceHttp,
    /// Rule 3: the configuration forces HTTP for every account
    GlobalForceHttp,
    /// Rule 4: WebSocket mode is switched off globally
    WsDisabled,
    /// Rule 5: WebSocket mode is switched off for `api_key` accounts
    ApiKeyWsDisabled,
    /// Rule 6: WebSocket mode is switched off for `oauth` accounts
    OAuthWsDisabled,
    /// Rule 7: the auth type is neither `api_key` nor `oauth`
    UnknownAuthType,
    /// Rule 8: nothing forbids WebSocket mode
    WsV2,
}

impl ProtocolReason {
    /// Every reason, in rule order
    pub const ALL: [Self; 8] = [
        Self::NoAccount,
        Self::AccountForceHttp,
        Self::GlobalForceHttp,
        Self::WsDisabled,
        Self::ApiKeyWsDisabled,
        Self::OAuthWsDisabled,
        Self::UnknownAuthType,
        Self::WsV2,
    ];

    /// Stable snake-case code for logs and metrics labels
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoAccount => "no_account",
            Self::AccountForceHttp => "account_force_http",
            Self::GlobalForceHttp => "global_force_http",
            Self::WsDisabled => "ws_disabled",
            Self::ApiKeyWsDisabled => "api_key_ws_disabled",
            Self::OAuthWsDisabled => "oauth_ws_disabled",
            Self::UnknownAuthType => "unknown_auth_type",
            Self::WsV2 => "ws_v2",
        }
    }

    /// The transport this reason implies
    pub fn transport(self) -> Transport {
        match self {
            Self::WsV2 => Transport::WsV2,
            _ => Transport::Http,
        }
    }
}

impl fmt::Display for ProtocolReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The resolver's answer: a transport and the rule that chose it
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtocolDecision {
    /// The transport to use with upstream
    pub transport: Transport,
    /// The rule that decided it
    pub reason: ProtocolReason,
}

impl fmt::Display for ProtocolDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.transport, self.reason)
    }
}

/// Resolves the transport of `account` under `config`; first matching rule wins
#[must_use]
pub fn resolve(account: Option<&AccountProtocol>, config: &ProtocolConfig) -> ProtocolDecision {
    let reason = resolve_reason(account, config);
    ProtocolDecision {
        transport: reason.transport(),
        reason,
    }
}

fn resolve_reason(account: Option<&AccountProtocol>, config: &ProtocolConfig) -> ProtocolReason {
    let Some(account) = account else {
        return ProtocolReason::NoAccount;
    };
    if account.force_http {
        return ProtocolReason::AccountForceHttp;
    }
    if config.force_http {
        return ProtocolReason::GlobalForceHttp;
    }
    if !config.ws_enabled {
        return ProtocolReason::WsDisabled;
    }
    match account.auth_type {
        AuthType::ApiKey if !config.api_key_ws_enabled => ProtocolReason::ApiKeyWsDisabled,
        AuthType::OAuth if !config.oauth_ws_enabled => ProtocolReason::OAuthWsDisabled,
        AuthType::ApiKey | AuthType::OAuth => ProtocolReason::WsV2,
        // Decided here, before any switch: an unknown type never inherits WebSocket mode.
        AuthType::Other(_) => ProtocolReason::UnknownAuthType,
    }
}

//! Upstream URL normalization (one table, both transports) and proxy URL parsing into the
//! core's handshake machines.

use wsv2_core::file_config::{ProxyHandshake, ProxyKind, ProxyUrl, UpstreamUrl};
use wsv2_core::proxy::ProxyAuth;

#[test]
fn upstream_urls_normalize_to_a_ws_and_an_http_form() {
    // written, WebSocket URL, HTTP URL, host, port
    let table = [
        (
            "wss://api.openai.com/v1/responses",
            "wss://api.openai.com/v1/responses",
            "https://api.openai.com/v1/responses",
            "api.openai.com",
            443,
        ),
        (
            "https://api.openai.com/v1/responses",
            "wss://api.openai.com/v1/responses",
            "https://api.openai.com/v1/responses",
            "api.openai.com",
            443,
        ),
        (
            "http://127.0.0.1:9000/v1/responses",
            "ws://127.0.0.1:9000/v1/responses",
            "http://127.0.0.1:9000/v1/responses",
            "127.0.0.1",
            9000,
        ),
        (
            "ws://127.0.0.1:9000/v1/responses/",
            "ws://127.0.0.1:9000/v1/responses",
            "http://127.0.0.1:9000/v1/responses",
            "127.0.0.1",
            9000,
        ),
        (
            "https://api.openai.com/v1",
            "wss://api.openai.com/v1/responses",
            "https://api.openai.com/v1/responses",
            "api.openai.com",
            443,
        ),
        (
            "https://api.openai.com/v1/",
            "wss://api.openai.com/v1/responses",
            "https://api.openai.com/v1/responses",
            "api.openai.com",
            443,
        ),
        (
            "HTTPS://Chatgpt.com/backend-api/codex",
            "wss://chatgpt.com/backend-api/codex/responses",
            "https://chatgpt.com/backend-api/codex/responses",
            "chatgpt.com",
            443,
        ),
        (
            "http://localhost:8080",
            "ws://localhost:8080/responses",
            "http://localhost:8080/responses",
            "localhost",
            8080,
        ),
        (
            "wss://[::1]:8443/v1?api-version=2026-01-01",
            "wss://[::1]:8443/v1/responses?api-version=2026-01-01",
            "https://[::1]:8443/v1/responses?api-version=2026-01-01",
            "::1",
            8443,
        ),
    ];
    for (written, ws, http, host, port) in table {
        let url = UpstreamUrl::parse(written).unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(url.ws_url(), ws, "{written}");
        assert_eq!(url.http_url(), http, "{written}");
        assert_eq!((url.host(), url.port()), (host, port), "{written}");
        assert_eq!(url.is_tls(), ws.starts_with("wss"), "{written}");
        assert_eq!(
            url.to_string(),
            ws.split_once("?")
                .map_or(ws.to_owned(), |(b, _)| format!("{b}?***"))
        );
    }
}

#[test]
fn host_header_and_request_target_come_from_the_normalized_url() {
    let url = UpstreamUrl::parse("https://api.openai.com/v1").unwrap();
    assert_eq!(url.host_header(), "api.openai.com");
    assert_eq!(url.path_and_query(), "/v1/responses");
    let url = UpstreamUrl::parse("ws://127.0.0.1:9000/v1/responses").unwrap();
    assert_eq!(url.host_header(), "127.0.0.1:9000");
}

#[test]
fn upstream_urls_that_cannot_work_are_refused_without_echoing_them() {
    for (written, expected) in [
        ("api.openai.com/v1", "not a URL"),
        ("ftp://example.com/v1", "unsupported scheme `ftp`"),
        (
            "wss://user:sk-secret@example.com/v1",
            "credentials in the URL",
        ),
        ("wss://example.com/v1#frag", "fragment"),
        ("wss:///v1", "no host"),
        ("wss://example.com:0/v1", "port"),
        ("wss://exa mple.com/v1", "bad character"),
    ] {
        let error = UpstreamUrl::parse(written).expect_err(written);
        assert!(error.contains(expected), "{written}: {error}");
        assert!(!error.contains("sk-secret"), "{written}: {error}");
    }
}

#[test]
fn proxy_urls_parse_into_kind_host_port_and_credentials() {
    let p = ProxyUrl::parse("socks5://127.0.0.1:1080").unwrap();
    assert_eq!(
        (p.kind(), p.host(), p.port(), p.auth()),
        (ProxyKind::Socks5, "127.0.0.1", 1080, None)
    );
    let p = ProxyUrl::parse("socks5h://proxy.local:1080/").unwrap();
    assert_eq!(p.kind(), ProxyKind::Socks5);
    let p = ProxyUrl::parse("http://user:p%40ss@10.0.0.1:3128").unwrap();
    assert_eq!(
        (p.kind(), p.host(), p.port()),
        (ProxyKind::HttpConnect, "10.0.0.1", 3128)
    );
    assert_eq!(
        p.auth(),
        Some(&ProxyAuth::new("user", "p@ss")),
        "percent-decoded"
    );
    let p = ProxyUrl::parse("http://[::1]:3128").unwrap();
    assert_eq!(p.host(), "::1");
    assert_eq!(p.to_string(), "http://[::1]:3128");
}

#[test]
fn proxy_passwords_never_print() {
    let p = ProxyUrl::parse("http://user:hunter2@10.0.0.1:3128").unwrap();
    assert_eq!(p.to_string(), "http://user:***@10.0.0.1:3128");
    assert!(!format!("{p:?}").contains("hunter2"));
}

#[test]
fn bad_proxy_urls_are_refused_with_a_reason() {
    for (written, expected) in [
        (
            "socks4://127.0.0.1:1080",
            "unsupported proxy scheme `socks4`",
        ),
        ("https://127.0.0.1:3128", "unsupported proxy scheme `https`"),
        ("socks5://127.0.0.1", "needs a port"),
        ("http://127.0.0.1:3128/path", "no path"),
        ("http://:pw@127.0.0.1:3128", "empty user name"),
        ("http://u:%zz@127.0.0.1:3128", "percent-encoding"),
        ("127.0.0.1:1080", "not a URL"),
    ] {
        let error = ProxyUrl::parse(written).expect_err(written);
        assert!(error.contains(expected), "{written}: {error}");
    }
}

#[test]
fn a_proxy_url_builds_the_matching_handshake() {
    let http = ProxyUrl::parse("http://u:pw@127.0.0.1:3128").unwrap();
    let ProxyHandshake::HttpConnect(mut connect) = http.handshake("api.openai.com", 443).unwrap()
    else {
        panic!("an http:// proxy speaks CONNECT");
    };
    let request = connect.poll_transmit().expect("the CONNECT request");
    let request = std::str::from_utf8(&request).unwrap();
    assert!(
        request.starts_with("CONNECT api.openai.com:443 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains("Proxy-Authorization: Basic dTpwdw==\r\n"),
        "{request}"
    );

    let socks = ProxyUrl::parse("socks5://127.0.0.1:1080").unwrap();
    let ProxyHandshake::Socks5(mut socks) = socks.handshake("api.openai.com", 443).unwrap() else {
        panic!("a socks5:// proxy speaks SOCKS5");
    };
    assert_eq!(
        &socks.poll_transmit().expect("greeting")[..],
        [5, 1, 0],
        "no-auth greeting"
    );
}

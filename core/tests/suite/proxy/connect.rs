//! HTTP CONNECT handshake: request bytes, short reads, the header bound and every refusal.

use crate::support::proxy::{assert_split_invariant, run, snapshot, text, untimed};
use wsv2_core::proxy::{HttpConnect, MAX_RESPONSE_HEADER, Progress, ProxyAuth, ProxyError};

fn connect(auth: bool) -> HttpConnect {
    let auth = auth.then(|| ProxyAuth::new("Aladdin", "open sesame"));
    HttpConnect::new("api.openai.com", 443, auth.as_ref()).expect("valid target")
}

#[test]
fn proxy_connect_with_basic_auth_tunnels_and_keeps_leftover() {
    let mut trace = untimed();
    let response: &[u8] = b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n\x16\x03\x01";
    let outcome = run(&mut connect(true), &[response], text, &mut trace);
    assert_eq!(
        outcome.written,
        b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\
          Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
    );
    assert_eq!(
        outcome.end,
        Ok(bytes::Bytes::from_static(b"\x16\x03\x01")),
        "tunnel bytes kept"
    );

    trace.note("without auth, IPv6 target, HTTP/1.0 reply");
    let mut hs = HttpConnect::new("::1", 8443, None).expect("valid target");
    let outcome = run(&mut hs, &[b"HTTP/1.0 200 OK\r\n\r\n"], text, &mut trace);
    assert_eq!(
        outcome.written,
        b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n"
    );
    assert_eq!(outcome.end, Ok(bytes::Bytes::new()));
    assert!(hs.is_done());
    snapshot(
        "proxy_connect_with_basic_auth_tunnels_and_keeps_leftover",
        &trace,
    );
}

#[test]
fn proxy_connect_short_reads_at_every_boundary() {
    let ok: &[u8] = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\nTLS";
    let outcome = assert_split_invariant(|| connect(true), ok);
    assert_eq!(outcome.end, Ok(bytes::Bytes::from_static(b"TLS")));
    let refused: &[u8] =
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n";
    let outcome = assert_split_invariant(|| connect(false), refused);
    assert!(matches!(
        outcome.end,
        Err(ProxyError::HttpRefused { status: 407, .. })
    ));
    let bare_lf: &[u8] = b"HTTP/1.1 200 OK\n\nx";
    let outcome = assert_split_invariant(|| connect(false), bare_lf);
    assert_eq!(
        outcome.end,
        Ok(bytes::Bytes::from_static(b"x")),
        "bare LF line ends are accepted"
    );
}

#[test]
fn proxy_connect_refusals_name_status_reason_and_hint() {
    let cases: [(&[u8], u16, &str); 4] = [
        (
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
            407,
            "proxy authentication required",
        ),
        (
            b"HTTP/1.1 403 Forbidden\r\n\r\n",
            403,
            "forbids this destination",
        ),
        (
            b"HTTP/1.1 502 Bad Gateway\r\n\r\n",
            502,
            "could not reach the upstream host",
        ),
        (
            b"HTTP/1.1 429 Too Many Requests\r\n\r\n",
            429,
            "429 Too Many Requests",
        ),
    ];
    let mut trace = untimed();
    for (response, status, message) in cases {
        let outcome = run(&mut connect(false), &[response], text, &mut trace);
        let error = outcome.end.expect_err("refused");
        assert!(matches!(&error, ProxyError::HttpRefused { status: s, .. } if *s == status));
        assert!(error.to_string().contains(message), "{error}");
        assert!(error.to_string().contains(&status.to_string()), "{error}");
    }
    snapshot("proxy_connect_refusals_name_status_reason_and_hint", &trace);
}

#[test]
fn proxy_connect_malformed_status_lines_are_errors() {
    let lines: [&[u8]; 6] = [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 abc Nope\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 200OK\r\n\r\n",
        b"HTTP/1.1 20\r\n\r\n",
        b"\r\n\r\n",
    ];
    for line in lines {
        let mut hs = connect(false);
        let _ = hs.poll_transmit();
        let error = hs.handle_input(line).expect_err("malformed");
        assert!(
            matches!(error, ProxyError::MalformedStatusLine { .. }),
            "{line:?}: {error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("HTTP proxy sent a malformed status line")
        );
        assert_eq!(
            hs.handle_input(b"more"),
            Err(error),
            "a failed handshake stays failed"
        );
    }
}

#[test]
fn proxy_connect_bounds_the_response_header() {
    let mut hs = connect(false);
    let _ = hs.poll_transmit();
    let mut header = b"HTTP/1.1 200 OK\r\n".to_vec();
    let filler = format!("X-Pad: {}\r\n", "a".repeat(100));
    while header.len() + filler.len() <= MAX_RESPONSE_HEADER {
        header.extend_from_slice(filler.as_bytes());
    }
    assert_eq!(
        hs.handle_input(&header),
        Ok(Progress::NeedMore),
        "still under the bound"
    );
    let error = hs
        .handle_input(filler.as_bytes())
        .expect_err("over the bound");
    assert_eq!(error, ProxyError::ResponseHeaderTooLarge { limit: 8192 });
    assert_eq!(
        error.to_string(),
        "HTTP proxy response header exceeds 8192 bytes"
    );

    // A header of exactly the bound passes, even with tunnel bytes beyond it.
    let mut hs = connect(false);
    let mut exact = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
    exact.resize(MAX_RESPONSE_HEADER - 4, b'a');
    exact.extend_from_slice(b"\r\n\r\n");
    exact.extend_from_slice(&[0u8; 100]);
    let Ok(Progress::Done { leftover }) = hs.handle_input(&exact) else {
        panic!("accepted")
    };
    assert_eq!(leftover.len(), 100);
}

#[test]
fn proxy_connect_rejects_bad_targets_and_credentials_and_reports_eof() {
    for host in ["", "exa mple.com", "a\r\nb", "user@host", "[]"] {
        let error = HttpConnect::new(host, 443, None).expect_err(host);
        assert!(
            matches!(error, ProxyError::InvalidTarget { .. }),
            "{host:?}"
        );
    }
    let error = HttpConnect::new("h", 1, Some(&ProxyAuth::new("a:b", "c"))).expect_err("colon");
    assert!(matches!(error, ProxyError::InvalidCredentials { .. }));
    let mut hs = connect(false);
    let _ = hs.poll_transmit();
    assert_eq!(hs.handle_input(b"HTTP/1.1 200"), Ok(Progress::NeedMore));
    let eof = hs.handle_eof();
    assert_eq!(
        eof.to_string(),
        "proxy closed the connection while waiting for the CONNECT response"
    );
    assert_eq!(hs.handle_input(b" OK\r\n\r\n"), Err(eof));
    assert_eq!(
        format!("{:?}", ProxyAuth::new("user", "hunter2")),
        "ProxyAuth(<redacted>)"
    );
}

//! SOCKS5 handshake: methods, RFC 1929 auth, address types, short reads and every refusal.

use crate::support::proxy::{assert_split_invariant, hex, run, snapshot, untimed};
use bytes::Bytes;
use wsv2_core::proxy::{Progress, ProxyAuth, ProxyError, Socks5, socks5_reply_name};

fn creds() -> ProxyAuth {
    ProxyAuth::new("user", "pass")
}

/// Method choice 0x00, then a success reply bound to 10.0.0.1:1080
const NO_AUTH_OK: &[u8] = &[0x05, 0x00, 0x05, 0x00, 0x00, 0x01, 10, 0, 0, 1, 0x04, 0x38];

/// Method choice 0x02, auth success, then a success reply bound to a domain
const PASSWORD_OK: &[u8] = &[
    0x05, 0x02, 0x01, 0x00, 0x05, 0x00, 0x00, 0x03, 5, b'p', b'r', b'o', b'x', b'y', 0x00, 0x50,
];

/// Success reply bound to an IPv6 address
fn v6_reply() -> Vec<u8> {
    let mut reply = vec![0x05, 0x00, 0x05, 0x00, 0x00, 0x04];
    reply.extend_from_slice(
        &[0x20, 0x01, 0x0d, 0xb8]
            .iter()
            .chain(&[0u8; 11])
            .chain(&[1])
            .copied()
            .collect::<Vec<_>>(),
    );
    reply.extend_from_slice(&[0x01, 0xbb]);
    reply
}

#[test]
fn proxy_socks5_no_auth_domain_and_password_ipv4_and_ipv6_targets() {
    let mut trace = untimed();
    trace.note("no auth, domain target");
    let mut hs = Socks5::new("api.openai.com", 443, None).expect("target");
    let mut response = NO_AUTH_OK.to_vec();
    response.extend_from_slice(b"\x16\x03");
    let outcome = run(&mut hs, &[&response[..2], &response[2..]], hex, &mut trace);
    let mut expected = vec![0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 14];
    expected.extend_from_slice(b"api.openai.com");
    expected.extend_from_slice(&[0x01, 0xbb]);
    assert_eq!(outcome.written, expected);
    assert_eq!(outcome.end, Ok(Bytes::from_static(b"\x16\x03")));
    assert!(hs.is_done());

    trace.note("username/password, IPv4 target");
    let mut hs = Socks5::new("192.0.2.7", 8443, Some(&creds())).expect("target");
    let outcome = run(
        &mut hs,
        &[&PASSWORD_OK[..2], &PASSWORD_OK[2..4], &PASSWORD_OK[4..]],
        hex,
        &mut trace,
    );
    let expected: &[u8] = &[
        0x05, 0x02, 0x00, 0x02, // greeting: no-auth or username/password
        0x01, 4, b'u', b's', b'e', b'r', 4, b'p', b'a', b's', b's', // RFC 1929
        0x05, 0x01, 0x00, 0x01, 192, 0, 2, 7, 0x20, 0xfb, // CONNECT 192.0.2.7:8443
    ];
    assert_eq!(outcome.written, expected);
    assert_eq!(outcome.end, Ok(Bytes::new()));

    trace.note("no auth, bracketed IPv6 target, IPv6 bound address");
    let mut hs = Socks5::new("[2001:db8::1]", 443, None).expect("target");
    let reply = v6_reply();
    let outcome = run(&mut hs, &[&reply[..2], &reply[2..]], hex, &mut trace);
    assert_eq!(&outcome.written[3..7], &[0x05, 0x01, 0x00, 0x04]);
    assert_eq!(outcome.written.len(), 3 + 4 + 16 + 2);
    assert_eq!(outcome.end, Ok(Bytes::new()));
    snapshot(
        "proxy_socks5_no_auth_domain_and_password_ipv4_and_ipv6_targets",
        &trace,
    );
}

#[test]
fn proxy_socks5_short_reads_at_every_boundary() {
    let mut with_tail = PASSWORD_OK.to_vec();
    with_tail.extend_from_slice(b"tls");
    let outcome = assert_split_invariant(
        || Socks5::new("host", 443, Some(&creds())).expect("t"),
        &with_tail,
    );
    assert_eq!(outcome.end, Ok(Bytes::from_static(b"tls")));
    assert_split_invariant(|| Socks5::new("host", 443, None).expect("t"), NO_AUTH_OK);
    assert_split_invariant(|| Socks5::new("::1", 443, None).expect("t"), &v6_reply());
    let refused: &[u8] = &[0x05, 0x00, 0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    let outcome = assert_split_invariant(|| Socks5::new("host", 443, None).expect("t"), refused);
    assert_eq!(outcome.end, Err(ProxyError::Socks5Refused { code: 5 }));
    let auth_failed: &[u8] = &[0x05, 0x02, 0x01, 0x01];
    let outcome = assert_split_invariant(
        || Socks5::new("host", 443, Some(&creds())).expect("t"),
        auth_failed,
    );
    assert_eq!(outcome.end, Err(ProxyError::Socks5AuthFailed { status: 1 }));
}

#[test]
fn proxy_socks5_every_refusal_has_a_clear_error() {
    let mut trace = untimed();
    let mut case = |title: &str, auth: bool, response: &[u8]| -> ProxyError {
        trace.note(title);
        let auth = auth.then(creds);
        let mut hs = Socks5::new("host", 443, auth.as_ref()).expect("target");
        let outcome = run(&mut hs, &[response], hex, &mut trace);
        outcome.end.expect_err(title)
    };
    let e = case("no acceptable method, no credentials", false, &[0x05, 0xff]);
    assert_eq!(
        e,
        ProxyError::Socks5NoAcceptableAuth {
            offered_password: false
        }
    );
    assert!(e.to_string().contains("requires a username and password"));
    let e = case(
        "no acceptable method, with credentials",
        true,
        &[0x05, 0xff],
    );
    assert_eq!(
        e,
        ProxyError::Socks5NoAcceptableAuth {
            offered_password: true
        }
    );
    let e = case("password chosen but not offered", false, &[0x05, 0x02]);
    assert_eq!(e, ProxyError::Socks5UnexpectedMethod { method: 2 });
    let e = case("GSSAPI chosen", true, &[0x05, 0x01]);
    assert_eq!(e, ProxyError::Socks5UnexpectedMethod { method: 1 });
    let e = case("auth failure", true, &[0x05, 0x02, 0x01, 0x01]);
    assert_eq!(
        e.to_string(),
        "SOCKS5 proxy rejected the username/password (status 0x01)"
    );
    let e = case(
        "bad version in method choice (SOCKS4 proxy)",
        false,
        &[0x04, 0x00],
    );
    assert_eq!(
        e,
        ProxyError::Socks5BadVersion {
            stage: "method choice",
            expected: 5,
            got: 4
        }
    );
    let e = case("bad version in auth reply", true, &[0x05, 0x02, 0x05, 0x00]);
    assert_eq!(
        e,
        ProxyError::Socks5BadVersion {
            stage: "authentication reply",
            expected: 1,
            got: 5
        }
    );
    let e = case(
        "bad version in CONNECT reply",
        false,
        &[0x05, 0x00, 0x00, 0x00],
    );
    assert_eq!(
        e,
        ProxyError::Socks5BadVersion {
            stage: "CONNECT reply",
            expected: 5,
            got: 0
        }
    );
    let e = case(
        "unsupported ATYP",
        false,
        &[0x05, 0x00, 0x05, 0x00, 0x00, 0x07],
    );
    assert_eq!(e, ProxyError::Socks5UnsupportedAddressType { atyp: 7 });
    for code in 1..=9u8 {
        let e = case(&format!("REP {code}"), false, &[0x05, 0x00, 0x05, code]);
        assert_eq!(e, ProxyError::Socks5Refused { code });
        assert!(e.to_string().contains(socks5_reply_name(code)), "{e}");
    }
    snapshot("proxy_socks5_every_refusal_has_a_clear_error", &trace);
}

#[test]
fn proxy_socks5_reply_names_follow_rfc1928() {
    let names = [
        "succeeded",
        "general SOCKS server failure",
        "connection not allowed by ruleset",
        "network unreachable",
        "host unreachable",
        "connection refused",
        "TTL expired",
        "command not supported",
        "address type not supported",
    ];
    for (code, name) in names.iter().enumerate() {
        assert_eq!(socks5_reply_name(code as u8), *name);
    }
    assert_eq!(socks5_reply_name(200), "unassigned reply code");
    assert_eq!(
        ProxyError::Socks5Refused { code: 2 }.to_string(),
        "SOCKS5 proxy refused CONNECT: connection not allowed by ruleset (reply code 2)"
    );
}

#[test]
fn proxy_socks5_rejects_bad_targets_and_credentials_and_reports_eof() {
    let long = "a".repeat(256);
    assert!(matches!(
        Socks5::new(&long, 1, None),
        Err(ProxyError::InvalidTarget { .. })
    ));
    assert!(Socks5::new(&"a".repeat(255), 1, None).is_ok());
    assert!(matches!(
        Socks5::new("", 1, None),
        Err(ProxyError::InvalidTarget { .. })
    ));
    for (user, pass) in [("", "p"), ("u", ""), (long.as_str(), "p")] {
        let result = Socks5::new("h", 1, Some(&ProxyAuth::new(user, pass)));
        assert!(
            matches!(result, Err(ProxyError::InvalidCredentials { .. })),
            "{user:?}/{pass:?}"
        );
    }
    let stages = [
        (&[][..], "waiting for the SOCKS5 method choice"),
        (
            &[0x05, 0x02][..],
            "waiting for the SOCKS5 authentication result",
        ),
        (
            &[0x05, 0x02, 0x01, 0x00, 0x05][..],
            "waiting for the SOCKS5 CONNECT reply",
        ),
    ];
    for (input, stage) in stages {
        let mut hs = Socks5::new("h", 1, Some(&creds())).expect("target");
        assert_eq!(hs.handle_input(input), Ok(Progress::NeedMore));
        let eof = hs.handle_eof();
        assert_eq!(eof, ProxyError::ClosedDuringHandshake { stage });
        assert_eq!(hs.handle_input(&[0x00]), Err(eof));
    }
}

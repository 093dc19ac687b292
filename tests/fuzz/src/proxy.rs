//! Proxy handshake replies: the outcome (tunnel up with the same leftover bytes, or the same
//! refusal) must not depend on how the proxy's reply is split across reads, and no error may
//! carry the proxy password.

use wsv2_core::proxy::{HttpConnect, Progress, ProxyAuth, ProxyError, Socks5};

use crate::input::Input;

const PASSWORD: &str = "pw-PLANTED-proxy-secret";

/// What a handshake made of a whole reply
#[derive(Debug, PartialEq)]
enum Outcome {
    NeedMore,
    /// The tunnel is up; every byte the proxy sent after its reply, in order
    Tunnel(Vec<u8>),
    Refused(ProxyError),
}

trait Handshake {
    fn transmit(&mut self) -> Option<bytes::Bytes>;
    fn input(&mut self, data: &[u8]) -> Result<Progress, ProxyError>;
}

impl Handshake for HttpConnect {
    fn transmit(&mut self) -> Option<bytes::Bytes> {
        self.poll_transmit()
    }
    fn input(&mut self, data: &[u8]) -> Result<Progress, ProxyError> {
        self.handle_input(data)
    }
}

impl Handshake for Socks5 {
    fn transmit(&mut self) -> Option<bytes::Bytes> {
        self.poll_transmit()
    }
    fn input(&mut self, data: &[u8]) -> Result<Progress, ProxyError> {
        self.handle_input(data)
    }
}

/// Feeds `reply` in pieces of the given sizes (cycled); returns the outcome
///
/// What the handshake writes may differ between splits (a proxy that answers a request before
/// it was sent is refused before the request goes out), so only the outcome is compared.
fn drive(mut handshake: impl Handshake, reply: &[u8], sizes: &[usize]) -> Outcome {
    let mut outcome = Outcome::NeedMore;
    let mut rest = reply;
    let mut i = 0;
    while handshake.transmit().is_some() {}
    while !rest.is_empty() {
        let size = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        let (piece, tail) = rest.split_at(size);
        rest = tail;
        match (handshake.input(piece), &mut outcome) {
            (Err(e), _) => {
                let text = e.to_string();
                assert!(
                    !text.contains(PASSWORD),
                    "an error quotes the password: {text}"
                );
                assert!(
                    handshake.transmit().is_none(),
                    "nothing more goes to a proxy that refused"
                );
                return Outcome::Refused(e);
            }
            (Ok(Progress::Done { leftover }), Outcome::Tunnel(bytes)) => {
                bytes.extend_from_slice(&leftover)
            }
            (Ok(Progress::Done { leftover }), _) => outcome = Outcome::Tunnel(leftover.to_vec()),
            (Ok(Progress::NeedMore), Outcome::Tunnel(_)) => panic!("NeedMore after Done"),
            (Ok(Progress::NeedMore), _) => {}
        }
        while handshake.transmit().is_some() {}
    }
    outcome
}

pub(crate) fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let sizes: Vec<usize> = input
        .take(4)
        .iter()
        .map(|b| usize::from(*b % 16) + 1)
        .collect();
    let sizes = if sizes.is_empty() { vec![1] } else { sizes };
    let reply = input.rest();
    let auth = (mode & 2 != 0).then(|| ProxyAuth::new("user", PASSWORD));
    let host = if mode & 4 != 0 {
        "2001:db8::1"
    } else {
        "api.example.com"
    };
    if mode & 1 == 0 {
        compare(
            || HttpConnect::new(host, 443, auth.as_ref()).expect("a valid target"),
            reply,
            &sizes,
        );
    } else {
        compare(
            || Socks5::new(host, 443, auth.as_ref()).expect("a valid target"),
            reply,
            &sizes,
        );
    }
}

/// The outcome of `reply` whole, split at `sizes`, and byte by byte must agree
fn compare<H: Handshake>(make: impl Fn() -> H, reply: &[u8], sizes: &[usize]) {
    let whole = drive(make(), reply, &[usize::MAX]);
    assert_eq!(
        whole,
        drive(make(), reply, sizes),
        "the split changed the outcome"
    );
    assert_eq!(
        whole,
        drive(make(), reply, &[1]),
        "byte-by-byte input changed the outcome"
    );
}

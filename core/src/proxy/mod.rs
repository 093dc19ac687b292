//! HTTP CONNECT and SOCKS5 client handshakes as byte-level state machines.

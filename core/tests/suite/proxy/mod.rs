mod connect;
mod socks5;

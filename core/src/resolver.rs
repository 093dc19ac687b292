//! The protocol resolver: which accounts speak WebSocket to upstream.

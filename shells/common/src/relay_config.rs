//! tungstenite settings shared by both hops.

use async_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Read and write buffer of each socket: small, because a relay moves frames through at once
/// (tungstenite's 128 KiB defaults would cost ~256 KiB per socket). An event is a few hundred
/// bytes; tungstenite zeroes up to this much before every read, and an idle socket keeps it.
pub(crate) const SOCKET_BUFFER: usize = 4 * 1024;

/// The WebSocket settings of both hops: one message limit (`upstream.max_message_size`), small
/// buffers, and a write buffer bounded to one largest message plus its framing
pub(crate) fn ws_config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER)
        .max_write_buffer_size(max_message_size + 2 * SOCKET_BUFFER)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
}

/// A socket half whose empty read and write buffers can be let go while its connection idles
/// (the patched `async-tungstenite`, `patches/async-tungstenite/PROPOSAL.md`): an idle
/// session then holds no tungstenite buffer on either hop, and the next frame allocates one.
pub(crate) trait ReleaseBuffers {
    /// Frees the socket's read and write buffers if they hold no data
    fn release_buffers(&self);
}

impl<S> ReleaseBuffers for async_tungstenite::WebSocketSender<S> {
    fn release_buffers(&self) {
        // The inherent method (the patched async-tungstenite), which paths resolve first.
        Self::release_buffers(self);
    }
}

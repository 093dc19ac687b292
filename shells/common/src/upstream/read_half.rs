//! Where a leased conn's socket read half lives between its reader and the task holding the
//! conn, and what one read of it means to either.
//!
//! The read half goes through the conn's own slot, not through a message: a holder that lets
//! go of the conn before it took the read half leaves it where the reader (and through it the
//! next holder) finds it, so a holder that stopped polling (its client not reading) cannot keep
//! a conn it no longer holds from being read.

use std::pin::Pin;
use std::sync::Mutex;

use async_tungstenite::tungstenite::{Error as WsError, Message, error::CapacityError};
use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::Notify;
use wsv2_core::event::Utf8;
use wsv2_core::turn::UpstreamInput;

/// A conn socket's read half, boxed once per conn: the reader and the holders' tasks pass it
/// between them
pub(crate) type UpstreamStream = Pin<Box<dyn Stream<Item = Result<Message, WsError>> + Send>>;

/// One conn's read-half slot, shared by its reader and its holders
#[derive(Default)]
pub(crate) struct ReadHalfSlot {
    /// Taken for a moment at each lend, take and give-back (per lease, never per frame)
    state: Mutex<Slot>,
    /// Wakes the reader when a holder let go of the conn (the read half may be back) or read
    /// the socket's end
    returned: Notify,
}

impl std::fmt::Debug for ReadHalfSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadHalfSlot")
    }
}

#[derive(Default)]
enum Slot {
    /// The read half is being read (by the reader or a holder)
    #[default]
    Empty,
    /// Put here by the reader for the holder it told, or by a holder that let go
    Here(UpstreamStream),
    /// A holder read the socket's end (`too_big`: a message over the limit, which it reported)
    Ended { too_big: bool },
}

/// What the reader finds in the slot after a holder's wake-up
pub(crate) enum Returned {
    /// The read half: read it for the pool, or lend it on
    Stream(UpstreamStream),
    /// The conn ends (`too_big`: already reported to the holder)
    Ended { too_big: bool },
    /// Still at a holder
    NotYet,
}

impl ReadHalfSlot {
    fn with<R>(&self, f: impl FnOnce(&mut Slot) -> R) -> R {
        // A panic while the lock is held leaves a valid `Slot`: poisoning is ignored.
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The reader lends the read half: it waits here for the holder it tells
    pub(crate) fn lend(&self, stream: UpstreamStream) {
        self.with(|slot| *slot = Slot::Here(stream));
    }

    /// A holder takes the read half it was told about (`None`: not here, e.g. still held by
    /// the conn's previous holder, which gives it back when it lets go)
    pub(crate) fn take(&self) -> Option<UpstreamStream> {
        self.with(|slot| match std::mem::take(slot) {
            Slot::Here(stream) => Some(stream),
            other => {
                *slot = other;
                None
            }
        })
    }

    /// A holder lets go of the conn: the read half it read, if it took it, goes back, and the
    /// reader looks
    pub(crate) fn give_back(&self, stream: Option<UpstreamStream>) {
        if let Some(stream) = stream {
            self.with(|slot| *slot = Slot::Here(stream));
        }
        self.returned.notify_one();
    }

    /// A holder read the socket's end: the reader ends the conn
    pub(crate) fn ended(&self, too_big: bool) {
        self.with(|slot| *slot = Slot::Ended { too_big });
        self.returned.notify_one();
    }

    /// The reader's wait while the read half is out (cancel-safe: a wake-up that comes while
    /// nobody waits is kept for the next wait)
    pub(crate) async fn returned(&self) -> Returned {
        self.returned.notified().await;
        self.with(|slot| match std::mem::take(slot) {
            Slot::Here(stream) => Returned::Stream(stream),
            Slot::Ended { too_big } => Returned::Ended { too_big },
            Slot::Empty => Returned::NotYet,
        })
    }
}

/// What one read of a conn's socket means, to the reader and to a holder alike
pub(crate) enum Read {
    /// A report for the holder
    Input(UpstreamInput),
    /// Nothing to report (a ping, answered by tungstenite; a close: EOF follows)
    Nothing,
    /// A message over the limit: the conn ends after [`UpstreamInput::TooBig`]
    TooBig,
    /// EOF or an error: the conn ends
    End,
}

impl Read {
    /// What `msg`, the next item of a conn socket's read half, means
    pub(crate) fn of(msg: Option<Result<Message, WsError>>) -> Self {
        match msg {
            Some(Ok(Message::Text(text))) => {
                Self::Input(UpstreamInput::Frame(Bytes::from(text), Utf8::Validated))
            }
            // The protocol is text only; a binary frame is garbage the core must see.
            Some(Ok(Message::Binary(bytes))) => {
                Self::Input(UpstreamInput::Frame(bytes, Utf8::Unchecked))
            }
            Some(Ok(Message::Pong(_))) => Self::Input(UpstreamInput::Pong),
            Some(Ok(_)) => Self::Nothing,
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => Self::TooBig,
            Some(Err(_)) | None => Self::End,
        }
    }
}

//! Reading structured choices out of fuzz bytes.

/// A cursor over fuzz input; every read succeeds (zeros once the bytes run out), so any input
/// decodes to some scenario and the fuzzer's mutations map to small changes in it
pub(crate) struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(crate) fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// A number below `n` (`n > 0`)
    pub(crate) fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    pub(crate) fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A length-prefixed chunk: one byte of length, or `0xff` then two bytes (up to 64 KiB)
    pub(crate) fn chunk(&mut self) -> &'a [u8] {
        let len = match self.byte() {
            0xff => usize::from(u16::from_le_bytes([self.byte(), self.byte()])),
            n => usize::from(n),
        };
        self.take(len)
    }

    /// Up to `len` bytes
    pub(crate) fn take(&mut self, len: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(len).min(self.data.len());
        self.pos = self.pos.saturating_add(len);
        &self.data[start..end]
    }

    /// Everything left
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        self.pos = self.data.len();
        &self.data[start..]
    }

    /// One of `items`
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

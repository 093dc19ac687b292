//! An enum-indexed table of deadlines, one per machine (quinn's `TimerTable`).
//!
//! A machine names its timers with a small `Copy` enum, stores one `Option<Instant>` per
//! variant, answers `poll_timeout()` with the earliest, and on `handle_timeout(now)` fires the
//! expired ones. Spurious or early `handle_timeout` calls fire nothing.

use std::time::Instant;

/// A machine's timer names; `index` must be below `N` of the table that holds them
pub trait TimerName: Copy + 'static {
    /// Every timer, in the order `expired` reports them
    const ALL: &'static [Self];
    /// Position of this timer in the table
    fn index(self) -> usize;
}

/// One optional deadline per timer name
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerTable<const N: usize> {
    deadlines: [Option<Instant>; N],
}

impl<const N: usize> Default for TimerTable<N> {
    fn default() -> Self {
        Self {
            deadlines: [None; N],
        }
    }
}

impl<const N: usize> TimerTable<N> {
    /// Arms `timer` for `at`, replacing any earlier deadline
    pub fn set<T: TimerName>(&mut self, timer: T, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Disarms `timer`
    pub fn stop<T: TimerName>(&mut self, timer: T) {
        self.deadlines[timer.index()] = None;
    }

    /// Disarms every timer
    pub fn stop_all(&mut self) {
        self.deadlines = [None; N];
    }

    /// The deadline of `timer`, if armed
    pub fn get<T: TimerName>(&self, timer: T) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// Whether `timer` is armed and its deadline is at or before `now`
    pub fn is_expired<T: TimerName>(&self, timer: T, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }

    /// The earliest armed deadline
    pub fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The earliest of the armed deadlines and `others` (those of the conns a machine holds)
    pub fn next_timeout_with(
        &self,
        others: impl IntoIterator<Item = Option<Instant>>,
    ) -> Option<Instant> {
        others
            .into_iter()
            .flatten()
            .chain(self.next_timeout())
            .min()
    }

    /// Disarms and returns the first expired timer, in `T::ALL` order
    pub fn take_expired<T: TimerName>(&mut self, now: Instant) -> Option<T> {
        let timer = T::ALL.iter().copied().find(|t| self.is_expired(*t, now))?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum T {
        A,
        B,
    }

    impl TimerName for T {
        const ALL: &'static [Self] = &[Self::A, Self::B];
        fn index(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn earliest_deadline_and_expiry() {
        let t0 = Instant::now();
        let mut table = TimerTable::<2>::default();
        assert_eq!(table.next_timeout(), None);
        table.set(T::B, t0 + Duration::from_secs(2));
        table.set(T::A, t0 + Duration::from_secs(5));
        assert_eq!(table.next_timeout(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(table.take_expired::<T>(t0 + Duration::from_secs(1)), None);
        assert_eq!(
            table.take_expired::<T>(t0 + Duration::from_secs(2)),
            Some(T::B)
        );
        assert_eq!(table.take_expired::<T>(t0 + Duration::from_secs(2)), None);
        assert_eq!(table.next_timeout(), Some(t0 + Duration::from_secs(5)));
        table.stop_all();
        assert_eq!(table.next_timeout(), None);
    }
}

//! hyper's timer on the shell's [`Runtime`](crate::runtime::Runtime): hyper enforces
//! `header_read_timeout` only when it has a timer, and this one works on every shell.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::runtime::{AsyncTimer, Rt};

/// A [`hyper::rt::Timer`] made of the runtime's timers and clock
#[derive(Clone, Debug)]
pub(crate) struct HyperTimer(pub(crate) Rt);

/// One runtime timer as a hyper `Sleep`
struct HyperSleep(Pin<Box<dyn AsyncTimer>>);

impl Future for HyperSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll_elapsed(cx)
    }
}

impl hyper::rt::Sleep for HyperSleep {}

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.0.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(self.0.timer(deadline)))
    }

    fn now(&self) -> Instant {
        self.0.now()
    }

    /// Re-arms the same timer (hyper resets its header timer once per request)
    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<HyperSleep>() {
            Some(mut ours) => ours.0.as_mut().reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    #[tokio::test(start_paused = true)]
    async fn a_reset_sleep_fires_at_its_new_deadline() {
        let timer = HyperTimer(crate::test_rt());
        let start = timer.now();
        let mut sleep = timer.sleep(Duration::from_secs(10));
        timer.reset(&mut sleep, start + Duration::from_secs(1));
        sleep.await;
        assert_eq!(timer.now() - start, Duration::from_secs(1));
    }
}

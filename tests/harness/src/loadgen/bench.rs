//! Benchmark extras of a load run: warm-up rounds, bounded session concurrency, idle holding,
//! spread source addresses, and the CPU time and resident memory of the processes behind each
//! target, read from `/proc` around every round (Linux only; elsewhere the samples are absent).

use std::net::Ipv4Addr;

use serde::Serialize;

use crate::Failure;

/// What a benchmark run adds to a [`LoadConfig`](super::LoadConfig); all off by default.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchOptions {
    /// Rounds run before the measured ones and left out of the summaries (warm pools, caches).
    pub warmup_rounds: usize,
    /// At most this many sessions of a target run at once (`None` = all of them).
    pub session_concurrency: Option<usize>,
    /// Keep every WebSocket open after its turns; once all sessions of the target are idle,
    /// sample the watched processes' memory, then close them all.
    pub hold_idle: bool,
    /// Spread client sockets over this many source addresses 127.0.0.1, 127.0.0.2, … (0 = let
    /// the OS pick), so tens of thousands of sockets do not run out of ephemeral ports.
    pub source_addrs: u32,
    /// Processes whose CPU time and memory are sampled around each round of a target.
    pub watch: Vec<Watch>,
    /// The command line that produced the run, for the report.
    pub command: Vec<String>,
}

/// The processes behind one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Watch {
    /// Target name.
    pub target: String,
    /// Process ids (e.g. an nginx master and its worker).
    pub pids: Vec<u32>,
}

impl BenchOptions {
    /// Adds one `NAME=PID` to the watch list.
    pub fn watch_pid(&mut self, spec: &str) -> Result<(), Failure> {
        let (name, pid) = spec
            .split_once('=')
            .ok_or_else(|| Failure::new(format!("--watch-pid {spec:?}: expected NAME=PID")))?;
        let pid: u32 = pid
            .parse()
            .map_err(|_| Failure::new(format!("--watch-pid {spec:?}: bad PID")))?;
        match self.watch.iter_mut().find(|w| w.target == name) {
            Some(w) => w.pids.push(pid),
            None => self.watch.push(Watch {
                target: name.to_owned(),
                pids: vec![pid],
            }),
        }
        Ok(())
    }

    /// The watched pids of a target (empty when none).
    pub fn pids_of(&self, target: &str) -> &[u32] {
        self.watch
            .iter()
            .find(|w| w.target == target)
            .map_or(&[], |w| &w.pids)
    }

    /// The source address of session `n` (`None` when not spreading).
    pub fn source_of(&self, n: u64) -> Option<Ipv4Addr> {
        (self.source_addrs > 0).then(|| {
            let k = (n % u64::from(self.source_addrs)) as u32;
            Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 1)) + k)
        })
    }
}

/// Kernel clock ticks per second for `/proc/PID/stat` times (USER_HZ, 100 on every Linux ABI).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU time (user + system) and resident memory of a set of processes at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// utime + stime summed over the processes, seconds. The kernel may account these by
    /// sampling at each timer tick (CONFIG_TICK_CPU_ACCOUNTING), which is coarse for short bursts.
    pub cpu_secs: f64,
    /// On-CPU time measured by the scheduler (`/proc/PID/task/*/schedstat`), summed over the
    /// processes' live threads, seconds: exact, but blind to threads that already exited.
    pub sched_secs: f64,
    /// VmRSS summed over the processes, KiB.
    pub rss_kib: u64,
}

impl ProcSample {
    /// Reads every pid; `None` when there are none or one cannot be read.
    pub fn read(pids: &[u32]) -> Option<Self> {
        if pids.is_empty() {
            return None;
        }
        let mut total = Self::default();
        for &pid in pids {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            total.cpu_secs += cpu_secs_of_stat(&stat)?;
            total.rss_kib += rss_kib_of_status(&status)?;
            total.sched_secs += sched_secs_of(pid);
        }
        Some(total)
    }
}

/// utime + stime of one `/proc/PID/stat` line, seconds. The command name may hold spaces and
/// parentheses, so fields are counted after its last `)`.
fn cpu_secs_of_stat(stat: &str) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

/// The scheduler's on-CPU ns of every live thread of `pid`, in seconds (0 without schedstat).
fn sched_secs_of(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ns: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

fn rss_kib_of_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the watched processes of a target did over one round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProcUsage {
    /// CPU seconds spent during the round (utime + stime).
    pub cpu_secs: f64,
    /// CPU µs per event relayed (warm-up turns included, as the processes relayed those too).
    pub cpu_us_per_event: f64,
    /// On-CPU seconds by the scheduler's clock (schedstat).
    pub sched_secs: f64,
    /// On-CPU µs per event relayed by the scheduler's clock.
    pub sched_us_per_event: f64,
    /// CPU seconds (schedstat when available) per wall second of the round (1.0 = one core busy
    /// throughout).
    pub busy: f64,
    /// Resident memory when the round started, KiB.
    pub rss_before_kib: u64,
    /// Resident memory with every session idle (hold mode) or at the end, KiB.
    pub rss_after_kib: u64,
    /// (after − before) / sessions, KiB (hold mode only, otherwise 0).
    pub rss_per_session_kib: f64,
}

impl ProcUsage {
    /// The usage between two samples.
    pub fn between(
        before: ProcSample,
        after: ProcSample,
        events: u64,
        wall_secs: f64,
        idle_sessions: Option<usize>,
    ) -> Self {
        let cpu_secs = (after.cpu_secs - before.cpu_secs).max(0.0);
        let sched_secs = (after.sched_secs - before.sched_secs).max(0.0);
        let per = |x: f64, n: f64| if n > 0.0 { x / n } else { 0.0 };
        Self {
            cpu_secs,
            cpu_us_per_event: per(cpu_secs * 1e6, events as f64),
            sched_secs,
            sched_us_per_event: per(sched_secs * 1e6, events as f64),
            busy: per(
                if sched_secs > 0.0 {
                    sched_secs
                } else {
                    cpu_secs
                },
                wall_secs,
            ),
            rss_before_kib: before.rss_kib,
            rss_after_kib: after.rss_kib,
            rss_per_session_kib: idle_sessions.map_or(0.0, |n| {
                per(after.rss_kib as f64 - before.rss_kib as f64, n as f64)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_are_read_after_the_last_parenthesis() {
        let stat = "4242 (we(ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0";
        assert_eq!(cpu_secs_of_stat(stat), Some(3.0));
        assert_eq!(cpu_secs_of_stat("garbage"), None);
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\n";
        assert_eq!(rss_kib_of_status(status), Some(1234));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = ProcSample::read(&[std::process::id()]).expect("own /proc entry");
        assert!(me.rss_kib > 0);
        assert!(me.sched_secs >= 0.0);
        assert_eq!(ProcSample::read(&[]), None);
    }

    #[test]
    fn watch_specs_group_by_target_and_sources_spread() {
        let mut o = BenchOptions::default();
        o.watch_pid("nginx=10").unwrap();
        o.watch_pid("nginx=11").unwrap();
        o.watch_pid("gw=12").unwrap();
        assert_eq!(o.pids_of("nginx"), &[10, 11]);
        assert_eq!(o.pids_of("other"), &[] as &[u32]);
        assert!(o.watch_pid("nopid").is_err());
        assert_eq!(o.source_of(0), None);
        o.source_addrs = 3;
        assert_eq!(o.source_of(0), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(o.source_of(4), Some(Ipv4Addr::new(127, 0, 0, 2)));
    }

    #[test]
    fn usage_divides_by_events_wall_and_sessions() {
        let before = ProcSample {
            cpu_secs: 1.0,
            sched_secs: 1.0,
            rss_kib: 1000,
        };
        let after = ProcSample {
            cpu_secs: 1.5,
            sched_secs: 1.2,
            rss_kib: 3000,
        };
        let u = ProcUsage::between(before, after, 100_000, 2.0, Some(100));
        assert!((u.cpu_us_per_event - 5.0).abs() < 1e-9);
        assert!((u.sched_us_per_event - 2.0).abs() < 1e-9);
        assert!((u.busy - 0.1).abs() < 1e-9);
        assert!((u.rss_per_session_kib - 20.0).abs() < 1e-9);
        assert_eq!(
            ProcUsage::between(after, after, 0, 0.0, None).cpu_us_per_event,
            0.0
        );
    }
}

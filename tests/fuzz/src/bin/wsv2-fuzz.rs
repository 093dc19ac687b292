//! `wsv2-fuzz`: the fuzz targets without an instrumented build.
//!
//! ```text
//! wsv2-fuzz smoke [--seconds N] [--seed S] [TARGET...]   mutate each target's corpus for N s
//! wsv2-fuzz replay TARGET FILE...                        run inputs (e.g. a libFuzzer crash)
//! ```
//!
//! `smoke` is what CI runs (through `tests/fuzz/run.sh --smoke`): a blind mutator (bit flips,
//! byte edits, JSON and HTTP tokens, splices between corpus entries) over the committed corpus,
//! with no coverage feedback. The committed corpus carries the coverage the libFuzzer runs
//! found, so the mutations start at that frontier. A broken invariant is written to
//! `target/fuzz-smoke/<target>/crash-<hash>` and fails the run; replay it with `replay`. The
//! figures of the run go to `target/fuzz-smoke/summary.json`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use wsv2_fuzz::Target;

/// Inputs grow no longer than this (libFuzzer's `-max_len` in `run.sh` is the same)
const MAX_LEN: usize = 4096;

/// Tokens worth inserting: JSON syntax and escapes, protocol names, HTTP and SOCKS framing
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\\u",
    b"\\ud83d\\ude00",
    b"\\ud800",
    b"1e999",
    b"-0.5e+10",
    b"null",
    b"true",
    b"\"type\":",
    b"\"response\":{",
    b"\"model\":",
    b"\"stream_id\":",
    b"\"retry-after\":\"1e300\"",
    b"response.completed",
    b"response.created",
    b"error",
    b"\r\n",
    b"\r\n\r\n",
    b"\n\n",
    b"HTTP/1.1 ",
    b"200",
    b"[[accounts]]\n",
    b"token = \"",
    b"\xff",
    b"\xc3\xa9",
    b"\xe2\x80\xa8",
    b"\x00",
];

/// xorshift64*: enough randomness for mutations, reproducible from a seed
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to eight stacked mutations of `data`, possibly splicing in part of `other`
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..=rng.below(8) {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = [0, 0x7f, 0x80, 0xff, b'"', b'\\', rng.next() as u8][rng.below(7)];
            }
            2 => {
                let i = rng.below(len + 1);
                data.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                data.drain(start..end);
            }
            4 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(32)).min(len);
                let piece = data[start..end].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, piece);
            }
            5 if !other.is_empty() => {
                let start = rng.below(other.len());
                let end = (start + 1 + rng.below(64)).min(other.len());
                let at = rng.below(len + 1);
                data.splice(at..at, other[start..end].iter().copied());
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                data.splice(at..at, token.iter().copied());
            }
        }
    }
    data.truncate(MAX_LEN);
}

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_inputs(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Runs one input; `Err` with the panic message when an invariant broke
fn attempt(target: Target, data: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| target.run(data))).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic".to_owned())
    })
}

/// Mutates `target`'s corpus for `budget`; returns the executions and whether it held
fn smoke(target: Target, budget: Duration, seed: u64) -> (u64, bool) {
    let mut corpus = read_inputs(&fuzz_dir().join("corpus").join(target.name()));
    corpus.extend(read_inputs(
        &fuzz_dir().join("regressions").join(target.name()),
    ));
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut rng = Rng(seed ^ (target as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let started = Instant::now();
    let mut execs = 0u64;
    let mut i = 0;
    loop {
        // The corpus itself first, then mutations until the budget is spent.
        let input = if i < corpus.len() {
            corpus[i].clone()
        } else {
            let mut data = corpus[rng.below(corpus.len())].clone();
            let other = &corpus[rng.below(corpus.len())];
            mutate(&mut rng, &mut data, other);
            data
        };
        i += 1;
        execs += 1;
        if let Err(message) = attempt(target, &input) {
            let path = save_crash(target, &input);
            eprintln!(
                "{}: invariant broken: {message}\n  input saved to {}\n  replay: cargo run -p wsv2-fuzz --bin wsv2-fuzz -- replay {} {}",
                target.name(),
                path.display(),
                target.name(),
                path.display()
            );
            return (execs, false);
        }
        if i >= corpus.len() && started.elapsed() >= budget {
            return (execs, true);
        }
    }
}

fn save_crash(target: Target, data: &[u8]) -> PathBuf {
    let dir = fuzz_dir()
        .join("../../target/fuzz-smoke")
        .join(target.name());
    let _ = std::fs::create_dir_all(&dir);
    // FNV-1a: a stable name, so the same crash is saved once.
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("crash-{hash:016x}"));
    let _ = std::fs::write(&path, data);
    path
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: wsv2-fuzz smoke [--seconds N] [--seed S] [TARGET...]\n       wsv2-fuzz replay TARGET FILE...\ntargets: {}",
        Target::ALL.map(Target::name).join(" ")
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("smoke") => {
            let (mut seconds, mut seed) = (5u64, None);
            let mut targets = Vec::new();
            let mut rest = args[1..].iter();
            while let Some(arg) = rest.next() {
                match arg.as_str() {
                    "--seconds" => match rest.next().and_then(|s| s.parse().ok()) {
                        Some(n) => seconds = n,
                        None => return usage(),
                    },
                    "--seed" => match rest.next().and_then(|s| s.parse().ok()) {
                        Some(n) => seed = Some(n),
                        None => return usage(),
                    },
                    name => match Target::from_name(name) {
                        Some(t) => targets.push(t),
                        None => return usage(),
                    },
                }
            }
            if targets.is_empty() {
                targets = Target::ALL.to_vec();
            }
            // A fresh seed each run explores more; it is printed so a failure can be rerun.
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
            println!(
                "wsv2-fuzz smoke: seed {seed}, {seconds} s per target (blind mutation of the corpus)"
            );
            let mut failed = 0;
            let mut summary = Vec::new();
            for target in targets {
                let (execs, held) = smoke(target, Duration::from_secs(seconds), seed);
                println!(
                    "  {:<8} {execs:>9} execs  {}",
                    target.name(),
                    if held { "ok" } else { "INVARIANT BROKEN" }
                );
                summary.push(format!(
                    r#"{{"target":"{}","seconds":{seconds},"execs":{execs},"held":{held}}}"#,
                    target.name()
                ));
                failed += usize::from(!held);
            }
            // For the reliability report: one object per target.
            let out = fuzz_dir().join("../../target/fuzz-smoke");
            let _ = std::fs::create_dir_all(&out);
            let _ = std::fs::write(
                out.join("summary.json"),
                format!(r#"{{"seed":{seed},"targets":[{}]}}"#, summary.join(",")),
            );
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some("replay") if args.len() >= 3 => {
            let Some(target) = Target::from_name(&args[1]) else {
                return usage();
            };
            let mut failed = false;
            for file in &args[2..] {
                let data = match std::fs::read(file) {
                    Ok(data) => data,
                    Err(e) => {
                        eprintln!("{file}: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                match attempt(target, &data) {
                    Ok(()) => println!("{file}: ok"),
                    Err(message) => {
                        println!("{file}: invariant broken: {message}");
                        failed = true;
                    }
                }
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => usage(),
    }
}

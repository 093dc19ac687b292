//! Replays the committed corpus and every recorded crash through its target.
//!
//! `corpus/<target>/` holds the seeds and the inputs libFuzzer found interesting (minimized);
//! `regressions/<target>/` holds every input that once broke an invariant, named after the
//! defect. Each must pass on every build.

use std::path::Path;

use wsv2_fuzz::Target;

fn replay(target: Target, folder: &str) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(folder)
        .join(target.name());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("a readable entry").path())
        .collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).expect("a readable corpus file");
        let outcome = std::panic::catch_unwind(|| target.run(&data));
        assert!(
            outcome.is_ok(),
            "{} broke an invariant of `{}`",
            file.display(),
            target.name()
        );
    }
    files.len()
}

macro_rules! corpus_tests {
    ($($name:ident => $target:expr),* $(,)?) => {$(
        #[test]
        fn $name() {
            let seeds = replay($target, "corpus");
            assert!(seeds > 0, "the `{}` corpus is committed", $target.name());
            replay($target, "regressions");
        }
    )*};
}

corpus_tests! {
    events_corpus => Target::Events,
    session_corpus => Target::Session,
    http_corpus => Target::Http,
    sse_corpus => Target::Sse,
    config_corpus => Target::Config,
    proxy_corpus => Target::Proxy,
}

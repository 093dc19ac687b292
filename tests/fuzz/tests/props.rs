//! Every fuzz target over arbitrary bytes (proptest), in the ordinary test build: a stable,
//! uninstrumented complement to the coverage-guided runs of `run.sh`.

use proptest::prelude::*;
use wsv2_fuzz::Target;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn events_hold_on_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        Target::Events.run(&data);
    }

    #[test]
    fn events_hold_on_json_like_bytes(data in "[{}\\[\\]\",:0-9a-z\\\\ .eE+-]{0,200}") {
        Target::Events.run(data.as_bytes());
    }

    #[test]
    fn session_holds_on_any_script(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        Target::Session.run(&data);
    }

    #[test]
    fn http_holds_on_any_script(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        Target::Http.run(&data);
    }

    #[test]
    fn sse_holds_on_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        Target::Sse.run(&data);
    }

    #[test]
    fn config_holds_on_toml_like_text(data in "[\\[\\]a-z_=\"'. 0-9\n{},#:/@-]{0,300}") {
        Target::Config.run(data.as_bytes());
    }

    #[test]
    fn proxy_holds_on_any_reply(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        Target::Proxy.run(&data);
    }
}

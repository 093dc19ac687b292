//! Properties of reading a file: unknown keys are reported exactly (none missed, none invented)
//! wherever they sit, and URL normalization is a fixed point.

use std::collections::BTreeSet;

use proptest::prelude::*;
use wsv2_core::file_config::{GatewayConfig, UpstreamUrl};

/// Where an unknown key can be put: top level, a core section, a client key or an account
#[derive(Clone, Debug)]
enum Place {
    Top,
    Section(&'static str),
    ClientKey(usize),
    Account(usize),
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        Just(Place::Top),
        prop::sample::select(vec![
            "upstream",
            "session",
            "pool",
            "scheduler",
            "store",
            "protocol"
        ])
        .prop_map(Place::Section),
        (0usize..2).prop_map(Place::ClientKey),
        (0usize..3).prop_map(Place::Account),
    ]
}

/// A key no table knows: every generated name starts with `zz`
fn unknown_key() -> impl Strategy<Value = String> {
    "zz[a-z_]{0,8}"
}

/// A valid file of two client keys and three accounts, with `extra` keys inserted
fn file_with(extra: &[(Place, String)]) -> (String, BTreeSet<String>) {
    let mut root: toml::Table = toml::from_str(
        "[[client_keys]]\nkey = \"a\"\n[[client_keys]]\nkey = \"b\"\n\
         [[accounts]]\nid = 1\nname = \"a\"\ntoken = \"t\"\n\
         [[accounts]]\nid = 2\nname = \"b\"\ntoken = \"t\"\n\
         [[accounts]]\nid = 3\nname = \"c\"\ntoken = \"t\"\n",
    )
    .expect("base parses");
    let mut expected = BTreeSet::new();
    for (place, key) in extra {
        let value = toml::Value::Integer(1);
        let path = match place {
            Place::Top => {
                root.insert(key.clone(), value);
                key.clone()
            }
            Place::Section(section) => {
                let table = root
                    .entry((*section).to_owned())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                table.as_table_mut().unwrap().insert(key.clone(), value);
                format!("{section}.{key}")
            }
            Place::ClientKey(i) | Place::Account(i) => {
                let array = if matches!(place, Place::ClientKey(_)) {
                    "client_keys"
                } else {
                    "accounts"
                };
                let entry = &mut root[array].as_array_mut().unwrap()[*i];
                entry.as_table_mut().unwrap().insert(key.clone(), value);
                format!("{array}[{i}].{key}")
            }
        };
        expected.insert(path);
    }
    (toml::to_string(&root).expect("serializes"), expected)
}

proptest! {
    #![proptest_config(crate::support::proptest_config())]

    #[test]
    fn every_unknown_key_is_reported_once_and_nothing_else(
        extra in prop::collection::vec((place(), unknown_key()), 1..8)
    ) {
        let (text, expected) = file_with(&extra);
        let issues = GatewayConfig::from_toml_str(&text, &|_| None).expect_err("unknown keys");
        let reported: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        let unique: BTreeSet<String> = reported.iter().map(|p| (*p).to_owned()).collect();
        prop_assert_eq!(unique.len(), reported.len(), "a key was reported twice: {:?}", reported);
        prop_assert_eq!(unique, expected);
        prop_assert!(issues.iter().all(|i| i.message.starts_with("unknown key")));
    }

    #[test]
    fn url_normalization_is_a_fixed_point(
        tls in any::<bool>(),
        host in "[a-z]{1,8}(\\.[a-z]{1,8}){0,2}",
        port in proptest::option::of(1u16..),
        path in prop::collection::vec("[a-z0-9-]{1,6}", 0..4),
        responses in any::<bool>(),
        slash in any::<bool>(),
    ) {
        let scheme = if tls { "https" } else { "ws" };
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let mut path: String = path.iter().map(|s| format!("/{s}")).collect();
        if responses { path.push_str("/responses"); }
        if slash { path.push('/'); }
        let url = UpstreamUrl::parse(&format!("{scheme}://{host}{port}{path}")).expect("valid");
        prop_assert!(url.ws_url().ends_with("/responses"));
        let again = UpstreamUrl::parse(url.ws_url()).expect("normalized parses");
        prop_assert_eq!(&again, &url);
        let from_http = UpstreamUrl::parse(url.http_url()).expect("http form parses");
        prop_assert_eq!(&from_http, &url);
        prop_assert_eq!(url.is_tls(), tls);
    }
}

//! Label values clients choose, kept to a bounded set.
//!
//! A client names the model of each response; used as a label as it came, 20,000 made-up names
//! would be 20,000 permanent series (a counter never goes away). [`ModelLabels`] gives each name
//! its label:
//!
//! ```text
//!   raw name ──sanitize──▶ name ──configured (a model_map key)?──yes──▶ name
//!                                          │ no
//!                                          ▼
//!                          learned already?──yes──▶ name
//!                                          │ no
//!                                          ▼
//!          seen in ≥ model_label_min_responses responses
//!          and fewer than max_model_labels learned?──yes──▶ learn it ──▶ name
//!                                          │ no
//!                                          ▼
//!                                       "other"
//! ```
//!
//! Counting responses per name needs memory per name, so the counts are kept for a bounded set of
//! candidates (four per learnable place, at least 16): a name not among them replaces the
//! candidate seen least (the oldest of those on a tie) and starts from one. A stream of one-off
//! names therefore only ever churns count-1 candidates, while a name clients use climbs to the
//! threshold and is learned (during such a flood, a name must come back before as many other
//! names as there are candidates have arrived). Learned names stay for the life of the process (their series
//! exist). Everything here is bounded by the configuration, whatever clients send.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::config::TelemetryConfig;

/// The label of every name that has none of its own
pub const OTHER: &str = "other";

/// Longest label value, in bytes; longer names are cut
pub const MAX_LABEL_LEN: usize = 64;

/// `raw` as a label value: ASCII letters, digits and `. _ - : / @ +` kept, every other byte
/// (control characters, NUL, quotes, backslashes, any non-ASCII such as U+2028) becomes `_`, cut
/// to [`MAX_LABEL_LEN`]; `None` when nothing is left
pub fn sanitize(raw: &[u8]) -> Option<String> {
    let raw = &raw[..raw.len().min(MAX_LABEL_LEN)];
    if raw.is_empty() {
        return None;
    }
    let label = raw
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"._-:/@+".contains(&b) {
                b as char
            } else {
                '_'
            }
        })
        .collect();
    Some(label)
}

/// One candidate's count and when it was last replaced (for the tie-break)
#[derive(Clone, Copy, Debug)]
struct Seen {
    responses: u64,
    since: u64,
}

/// The `model` label of each response: a bounded set of names, the rest [`OTHER`]
#[derive(Clone, Debug)]
pub struct ModelLabels {
    configured: HashSet<String>,
    learned: HashSet<String>,
    candidates: HashMap<String, Seen>,
    max_learned: usize,
    max_candidates: usize,
    min_responses: u64,
    arrivals: u64,
}

impl ModelLabels {
    /// Labels under `cfg`, with `configured` (the accounts' `model_map` keys) always their own
    pub fn new<'a>(cfg: &TelemetryConfig, configured: impl IntoIterator<Item = &'a str>) -> Self {
        let mut labels = Self {
            configured: HashSet::new(),
            learned: HashSet::new(),
            candidates: HashMap::new(),
            max_learned: cfg.max_model_labels,
            max_candidates: (cfg.max_model_labels * 4).max(16),
            min_responses: cfg.model_label_min_responses.max(1),
            arrivals: 0,
        };
        labels.set_configured(configured);
        labels
    }

    /// Replaces the configured names (after a reload); learned names stay
    pub fn set_configured<'a>(&mut self, configured: impl IntoIterator<Item = &'a str>) {
        self.configured = configured
            .into_iter()
            .filter_map(|name| sanitize(name.as_bytes()))
            .collect();
    }

    /// Names with a label of their own now (configured and learned), for tests and reports
    pub fn len(&self) -> usize {
        self.configured.union(&self.learned).count()
    }

    /// Whether no name has a label of its own
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label of one response for the client's model `raw` (absent: [`OTHER`]); counts the
    /// response towards the name's own label
    pub fn label(&mut self, raw: Option<&[u8]>) -> &str {
        let Some(name) = raw.and_then(sanitize) else {
            return OTHER;
        };
        if self.configured.contains(&name) || self.learned.contains(&name) {
            return self.own(name);
        }
        if self.learned.len() >= self.max_learned {
            return OTHER;
        }
        self.arrivals += 1;
        let responses = match self.candidates.get_mut(&name) {
            Some(seen) => {
                seen.responses += 1;
                seen.responses
            }
            None => {
                if self.candidates.len() >= self.max_candidates {
                    self.evict_least_seen();
                }
                let seen = Seen {
                    responses: 1,
                    since: self.arrivals,
                };
                self.candidates.insert(name.clone(), seen);
                1
            }
        };
        if responses < self.min_responses {
            return OTHER;
        }
        self.candidates.remove(&name);
        self.learned.insert(name.clone());
        if self.learned.len() >= self.max_learned {
            // Every place is taken: counting candidates serves no purpose any more.
            self.candidates = HashMap::new();
        }
        self.own(name)
    }

    /// `name` as stored in one of the sets (so the answer borrows `self`, not a temporary)
    fn own(&self, name: String) -> &str {
        self.configured
            .get(&name)
            .or_else(|| self.learned.get(&name))
            .map_or(OTHER, String::as_str)
    }

    /// Drops the candidate seen in the fewest responses, the one counted longest ago on a tie
    fn evict_least_seen(&mut self) {
        let least = self
            .candidates
            .iter()
            .min_by_key(|(_, seen)| (seen.responses, seen.since))
            .map(|(name, _)| name.clone());
        if let Some(name) = least {
            self.candidates.remove(&name);
        }
    }
}

/// The labels of one response's usage: the client key's name, the account's and the model's
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageLabels {
    /// The client key's configured name, or [`OTHER`] past the series cap
    pub key: Arc<str>,
    /// The model's label ([`ModelLabels`]), or [`OTHER`] past the series cap
    pub model: Arc<str>,
}

/// The (key, account, model) combinations of the token counter, capped at
/// `telemetry.max_usage_series`: a response of a new combination beyond the cap counts under
/// `client="other", model="other"` of its account, so the counter never has more than
/// `4 × (max_usage_series + accounts)` series (four token kinds)
#[derive(Clone, Debug)]
pub struct UsageSeries {
    models: ModelLabels,
    seen: HashSet<(Arc<str>, Arc<str>, Arc<str>)>,
    max: usize,
}

impl UsageSeries {
    /// Series under `cfg`, with `configured` models labelled from their first response
    pub fn new<'a>(cfg: &TelemetryConfig, configured: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            models: ModelLabels::new(cfg, configured),
            seen: HashSet::new(),
            max: cfg.max_usage_series,
        }
    }

    /// The model labels (to replace the configured names after a reload)
    pub fn models_mut(&mut self) -> &mut ModelLabels {
        &mut self.models
    }

    /// The labels of one response of client key `key` on `account` for the client's `model`
    pub fn labels(
        &mut self,
        key: &Arc<str>,
        account: &Arc<str>,
        model: Option<&[u8]>,
    ) -> UsageLabels {
        let model: Arc<str> = Arc::from(self.models.label(model));
        let combination = (key.clone(), account.clone(), model);
        if self.seen.contains(&combination) || self.seen.len() < self.max {
            let (key, _, model) = combination.clone();
            self.seen.insert(combination);
            return UsageLabels { key, model };
        }
        UsageLabels {
            key: Arc::from(OTHER),
            model: Arc::from(OTHER),
        }
    }

    /// Combinations with series of their own
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no combination has been counted yet
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max: usize, min: u64) -> TelemetryConfig {
        TelemetryConfig {
            max_model_labels: max,
            model_label_min_responses: min,
            ..TelemetryConfig::default()
        }
    }

    #[test]
    fn usage_series_keep_combinations_apart_up_to_the_cap_then_fold_into_other() {
        let cfg = TelemetryConfig {
            max_usage_series: 3,
            ..TelemetryConfig::default()
        };
        let mut series = UsageSeries::new(&cfg, ["gpt-5", "o3"]);
        let (alice, bob, main): (Arc<str>, Arc<str>, Arc<str>) =
            (Arc::from("alice"), Arc::from("bob"), Arc::from("main"));
        let label = |series: &mut UsageSeries, key: &Arc<str>, model: &[u8]| {
            let l = series.labels(key, &main, Some(model));
            (l.key.to_string(), l.model.to_string())
        };
        assert_eq!(
            label(&mut series, &alice, b"gpt-5"),
            ("alice".into(), "gpt-5".into())
        );
        assert_eq!(
            label(&mut series, &alice, b"o3"),
            ("alice".into(), "o3".into())
        );
        assert_eq!(
            label(&mut series, &bob, b"gpt-5"),
            ("bob".into(), "gpt-5".into())
        );
        assert_eq!(series.len(), 3);
        assert_eq!(
            label(&mut series, &bob, b"o3"),
            (OTHER.into(), OTHER.into()),
            "a fourth combination is past the cap"
        );
        assert_eq!(
            label(&mut series, &alice, b"o3"),
            ("alice".into(), "o3".into()),
            "known combinations keep their series"
        );
        assert_eq!(series.len(), 3);
    }

    #[test]
    fn sanitize_keeps_model_names_and_replaces_everything_else() {
        assert_eq!(sanitize(b"gpt-5.1-codex").as_deref(), Some("gpt-5.1-codex"));
        assert_eq!(
            sanitize(b"org/model:v2@x+y").as_deref(),
            Some("org/model:v2@x+y")
        );
        assert_eq!(sanitize(b"a\0b\"c\\d\ne").as_deref(), Some("a_b_c_d_e"));
        assert_eq!(
            sanitize("x\u{2028}y".as_bytes()).as_deref(),
            Some("x___y"),
            "each byte of a non-ASCII character"
        );
        assert_eq!(sanitize(&[b'm'; 200]).map(|s| s.len()), Some(MAX_LABEL_LEN));
        assert_eq!(sanitize(b""), None);
    }

    #[test]
    fn configured_names_are_labels_from_the_first_response() {
        let mut labels = ModelLabels::new(&cfg(0, 3), ["gpt-5"]);
        assert_eq!(labels.label(Some(b"gpt-5")), "gpt-5");
        assert_eq!(labels.label(Some(b"gpt-4o")), OTHER, "no learnable place");
        assert_eq!(labels.label(None), OTHER);
        labels.set_configured(["gpt-4o"]);
        assert_eq!(labels.label(Some(b"gpt-4o")), "gpt-4o");
        assert_eq!(labels.label(Some(b"gpt-5")), OTHER);
    }

    #[test]
    fn a_name_is_learned_after_enough_responses_and_the_places_run_out() {
        let mut labels = ModelLabels::new(&cfg(2, 3), []);
        for expected in [OTHER, OTHER, "a"] {
            assert_eq!(labels.label(Some(b"a")), expected);
        }
        for _ in 0..2 {
            assert_eq!(labels.label(Some(b"b")), OTHER);
        }
        assert_eq!(labels.label(Some(b"b")), "b");
        for _ in 0..5 {
            assert_eq!(labels.label(Some(b"c")), OTHER, "both places are taken");
        }
        assert_eq!(labels.label(Some(b"a")), "a", "learned names stay");
        assert_eq!(labels.len(), 2);
    }

    #[test]
    fn twenty_thousand_one_off_names_neither_take_places_nor_push_out_a_real_model() {
        let mut labels = ModelLabels::new(&cfg(4, 3), ["gpt-5"]);
        for i in 0..20_000u32 {
            assert_eq!(labels.label(Some(format!("junk-{i}").as_bytes())), OTHER);
            if i % 10 == 0 {
                // A model clients really use, one response in ten between the junk.
                let _ = labels.label(Some(b"o3"));
            }
            assert!(labels.candidates.len() <= labels.max_candidates);
        }
        assert_eq!(labels.label(Some(b"o3")), "o3", "learned despite the flood");
        assert_eq!(labels.len(), 2, "gpt-5 and o3, nothing else");
    }
}

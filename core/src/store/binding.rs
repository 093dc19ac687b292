//! What a binding holds, and who may continue a response: the group rule.
//!
//! A binding's value is `{account}:{group}` (the group as keys render it, e.g. `4:team-a`), so a
//! response's record says which account holds it and which group created it.

use std::fmt;

use super::key::{group_segment, is_plain_group, stable_hash};
use crate::AccountId;
use crate::config::UnknownPreviousResponse;

/// A group, by the stable hash of its rendered name (cheap to copy and compare)
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupTag(u128);

impl GroupTag {
    /// The tag of group `group` (a client key's effective group)
    pub fn of(group: &str) -> Self {
        Self::of_segment(&group_segment(group))
    }

    fn of_segment(segment: &str) -> Self {
        Self(stable_hash(segment.as_bytes()))
    }
}

impl fmt::Debug for GroupTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{:08x}", (self.0 >> 96) as u32)
    }
}

impl fmt::Display for GroupTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A binding as stored: the account it routes to and the group that wrote it
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The bound account
    pub account: AccountId,
    /// The group of the client key whose turn wrote it
    pub group: GroupTag,
}

impl Binding {
    /// The binding `group` writes for `account`
    pub fn new(account: AccountId, group: &str) -> Self {
        Self {
            account,
            group: GroupTag::of(group),
        }
    }

    /// The store value for `account` written by `group`: `{account}:{group}`
    pub fn encode(account: AccountId, group: &str) -> String {
        format!("{}:{}", account.0, group_segment(group))
    }

    /// Reads a store value; `None` for anything [`encode`](Self::encode) cannot have written
    /// (including a bare account id, the value of earlier versions)
    pub fn decode(value: &str) -> Option<Self> {
        let (account, segment) = value.trim().split_once(':')?;
        let account = account.parse::<u64>().ok()?;
        let hashed = segment
            .strip_prefix('~')
            .is_some_and(|hash| hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
        if !hashed && !is_plain_group(segment) {
            return None;
        }
        Some(Self {
            account: AccountId(account),
            group: GroupTag::of_segment(segment),
        })
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.account, self.group)
    }
}

/// Why a continuation is refused
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContinuationRefusal {
    /// The response was created by a key of another group
    OtherGroup,
    /// No record, and `store.unknown_previous_response = "refuse"`
    NoRecord,
}

impl ContinuationRefusal {
    /// Short name for logs (`other_group`, `no_record`)
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OtherGroup => "other_group",
            Self::NoRecord => "no_record",
        }
    }
}

/// What a create naming a `previous_response_id` may do ([`judge_continuation`] decides)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Continuation {
    /// The caller's group created it: continue on this account
    Bound(AccountId),
    /// No record; forwarded as an unbound create (upstream answers for the id)
    Unknown,
    /// Answer `previous_response_not_found`; nothing goes upstream
    Refused(ContinuationRefusal),
}

/// Judges a continuation by `group` of a response whose record is `record`
///
/// ```text
///   record names the caller's group ──▶ Bound(account)       route there (upstream decides)
///   record names another group ───────▶ Refused(OtherGroup)  previous_response_not_found,
///                                                            nothing goes upstream
///   no record (expired, evicted, a restarted memory store, a store outage, never seen)
///        store.unknown_previous_response = "forward" ──▶ Unknown   route as a fresh create
///        store.unknown_previous_response = "refuse"  ──▶ Refused(NoRecord)
/// ```
///
/// A continuation of a response created on the same client socket is never judged: the
/// session knows its own responses and asks for no lookup.
pub fn judge_continuation(
    record: Option<Binding>,
    group: &str,
    unknown: UnknownPreviousResponse,
) -> Continuation {
    match (record, unknown) {
        (Some(record), _) if record.group == GroupTag::of(group) => {
            Continuation::Bound(record.account)
        }
        (Some(_), _) => Continuation::Refused(ContinuationRefusal::OtherGroup),
        (None, UnknownPreviousResponse::Forward) => Continuation::Unknown,
        (None, UnknownPreviousResponse::Refuse) => {
            Continuation::Refused(ContinuationRefusal::NoRecord)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_name_their_group() {
        let value = Binding::encode(AccountId(4), "team-a");
        assert_eq!(value, "4:team-a");
        assert_eq!(
            Binding::decode(&value),
            Some(Binding::new(AccountId(4), "team-a"))
        );
        let odd = Binding::encode(AccountId(7), "a b");
        assert!(odd.starts_with("7:~"), "{odd}");
        assert_eq!(
            Binding::decode(&odd),
            Some(Binding::new(AccountId(7), "a b"))
        );
        for bad in ["4", "", "x:team-a", "4:", "4:a b", "4:~short"] {
            assert_eq!(Binding::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_the_creating_group_continues_and_a_miss_follows_the_setting() {
        use UnknownPreviousResponse::{Forward, Refuse};
        let record = Some(Binding::new(AccountId(2), "team-a"));
        assert_eq!(
            judge_continuation(record, "team-a", Refuse),
            Continuation::Bound(AccountId(2))
        );
        for unknown in [Forward, Refuse] {
            assert_eq!(
                judge_continuation(record, "team-b", unknown),
                Continuation::Refused(ContinuationRefusal::OtherGroup)
            );
        }
        assert_eq!(
            judge_continuation(None, "team-b", Forward),
            Continuation::Unknown
        );
        assert_eq!(
            judge_continuation(None, "team-b", Refuse),
            Continuation::Refused(ContinuationRefusal::NoRecord)
        );
    }
}

//! Presence authorisation: what a presentity's access policy says of one
//! watcher. Pure: the glue (`bridge/authz.rs`) reads the rules, the
//! presentity's block list and the watcher's addresses in the transaction
//! that records the outcome.
//!
//! # How rules combine
//!
//! The rule that decides is the **most specific** one that matches:
//! identity (one address) over domain over anyone. Among matching rules of
//! the same specificity the **most restrictive** wins: block, then
//! polite-block, then confirm, then allow. No rule: the configured
//! `[presence] default_policy`. `confirm` means pending: the presentity is
//! asked.
//!
//! RFC 5025 §3.2.1 combines differently: every matching rule applies and the
//! numerically largest `sub-handling` wins (block 0 < confirm 1 <
//! polite-block 2 < allow 3), so one `allow` for anyone would beat a `block`
//! for one watcher. Issue 14 asks for what users expect of an access list
//! instead: a rule about one person overrides a rule about everyone (that is
//! how the presentity makes exceptions), and between equals a block is never
//! undone by an allow (RFC 4745's "block beats allow" spirit). XCAP
//! documents keep the RFC's syntax; only the combining differs.
//!
//! # The block list is a rule
//!
//! A user's block list (IMPS `BlockEntity`, the contacts' `blocked` flag)
//! and contact lists are the one place those facts live; they are not
//! copied into rules. The decision reads the presentity's list entry for
//! the watcher as an identity rule: blocked → block, listed and not
//! blocked → allow (the proactive flow: whom the presentity listed sees
//! them at once). An explicit identity rule of the same watcher still
//! combines with it by restrictiveness.

use crate::bridge::api::{PresenceRule, SubHandling, WatchDecision, WatcherMatch};

/// An address as rules and watcher rows keep it: scheme lower-case (`sips`
/// as `sip`), URI parameters and headers dropped, the host lower-case; an
/// IMPS UserID (`wv:`) lower-case whole (they are case-insensitive).
/// `None` for something that is not `scheme:rest`.
pub fn normalise_address(address: &str) -> Option<String> {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (scheme, rest) = a.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    if rest.is_empty()
        || scheme.is_empty()
        || !scheme.chars().all(|c| c.is_ascii_alphanumeric())
        || rest.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    Some(match scheme.as_str() {
        "wv" => format!("wv:{}", rest.to_ascii_lowercase()),
        "sip" | "sips" => {
            let rest = rest.split([';', '?']).next().unwrap_or(rest);
            match rest.rsplit_once('@') {
                Some((user, host)) if !user.is_empty() && !host.is_empty() => {
                    format!("sip:{user}@{}", host.to_ascii_lowercase())
                }
                _ => return None,
            }
        }
        _ => match rest.rsplit_once('@') {
            Some((user, host)) => format!("{scheme}:{user}@{}", host.to_ascii_lowercase()),
            None => format!("{scheme}:{rest}"),
        },
    })
}

/// The domain of a normalised address (`example.com` of
/// `sip:harry@example.com`), if it has one.
fn domain_of(address: &str) -> Option<&str> {
    address.rsplit_once('@').map(|(_, d)| d)
}

/// How specific a rule's match is: identity 2, domain 1, anyone 0.
fn specificity(m: &WatcherMatch) -> u8 {
    match m {
        WatcherMatch::Identity(_) => 2,
        WatcherMatch::Domain(_) => 1,
        WatcherMatch::Anyone => 0,
    }
}

/// How restrictive a handling is: block 3, polite-block 2, confirm 1,
/// allow 0 (not RFC 5025's numbers; see the module doc).
fn restrictiveness(h: SubHandling) -> u8 {
    match h {
        SubHandling::Block => 3,
        SubHandling::PoliteBlock => 2,
        SubHandling::Confirm => 1,
        SubHandling::Allow => 0,
    }
}

/// Whether the rule's match covers a watcher known by `watcher` (every
/// address of theirs, normalised: a user with a SIP AOR and an IMPS UserID
/// is matched by a rule naming either).
fn matches(m: &WatcherMatch, watcher: &[String]) -> bool {
    match m {
        WatcherMatch::Identity(a) => normalise_address(a).is_some_and(|a| watcher.contains(&a)),
        WatcherMatch::Domain(d) => watcher
            .iter()
            .any(|w| domain_of(w).is_some_and(|wd| wd.eq_ignore_ascii_case(d.trim()))),
        WatcherMatch::Anyone => true,
    }
}

/// What a presentity's policy needs about one watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSnapshot {
    /// The presentity's rules.
    pub rules: Vec<PresenceRule>,
    /// The watcher in the presentity's lists: `Some(blocked)`, `None` when
    /// not listed.
    pub listed: Option<bool>,
    /// Every address the watcher is known by, normalised.
    pub watcher: Vec<String>,
    /// `[presence] default_policy`.
    pub default: SubHandling,
}

/// The handling the presentity's rules and lists give the watcher, `None`
/// when nothing names them (then the default applies).
pub fn watcher_handling(snap: &WatchSnapshot) -> Option<SubHandling> {
    let listed = snap.listed.map(|blocked| {
        let handling = if blocked {
            SubHandling::Block
        } else {
            SubHandling::Allow
        };
        (2, handling)
    });
    snap.rules
        .iter()
        .filter(|r| matches(&r.watcher, &snap.watcher))
        .map(|r| (specificity(&r.watcher), r.handling))
        .chain(listed)
        .max_by_key(|(s, h)| (*s, restrictiveness(*h)))
        .map(|(_, h)| h)
}

/// The decision on a watch: the handling of [`watcher_handling`], else the
/// default, as a decision (`confirm` is pending).
pub fn decide_watch(snap: &WatchSnapshot) -> WatchDecision {
    decision_of(watcher_handling(snap).unwrap_or(snap.default))
}

/// What a handling means for a watch.
pub fn decision_of(h: SubHandling) -> WatchDecision {
    match h {
        SubHandling::Block => WatchDecision::Block,
        SubHandling::Confirm => WatchDecision::Pending,
        SubHandling::PoliteBlock => WatchDecision::PoliteBlock,
        SubHandling::Allow => WatchDecision::Allow,
    }
}

/// Whether the presentity's rules or block list refuse the watcher's
/// messages too: a block the presentity wrote (a rule or the block list),
/// never the configured default (a default of `block` is about presence, not
/// about every IM from everyone).
pub fn blocks_messages(snap: &WatchSnapshot) -> bool {
    watcher_handling(snap) == Some(SubHandling::Block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, watcher: WatcherMatch, handling: SubHandling) -> PresenceRule {
        PresenceRule {
            id: id.into(),
            watcher,
            handling,
        }
    }

    fn id(a: &str) -> WatcherMatch {
        WatcherMatch::Identity(a.into())
    }

    fn dom(d: &str) -> WatcherMatch {
        WatcherMatch::Domain(d.into())
    }

    fn snap(rules: Vec<PresenceRule>, watcher: &[&str]) -> WatchSnapshot {
        WatchSnapshot {
            rules,
            listed: None,
            watcher: watcher
                .iter()
                .filter_map(|w| normalise_address(w))
                .collect(),
            default: SubHandling::Confirm,
        }
    }

    const HARRY: &str = "sip:harry@example.com";

    #[test]
    fn addresses_are_normalised_for_matching() {
        assert_eq!(
            normalise_address("SIP:Harry@Example.COM;transport=tcp").as_deref(),
            Some("sip:Harry@example.com")
        );
        assert_eq!(
            normalise_address("sips:harry@example.com").as_deref(),
            Some(HARRY)
        );
        assert_eq!(
            normalise_address("<wv:Harry@Example.com>").as_deref(),
            Some("wv:harry@example.com")
        );
        assert_eq!(normalise_address("harry").as_deref(), None);
        assert_eq!(normalise_address("sip:@example.com").as_deref(), None);
        assert_eq!(normalise_address("sip:har ry@x").as_deref(), None);
    }

    #[test]
    fn each_rule_type_decides_alone() {
        for h in [
            SubHandling::Allow,
            SubHandling::Block,
            SubHandling::PoliteBlock,
            SubHandling::Confirm,
        ] {
            let want = decision_of(h);
            for m in [id(HARRY), dom("example.com"), WatcherMatch::Anyone] {
                let s = snap(vec![rule("a", m.clone(), h)], &[HARRY]);
                assert_eq!(decide_watch(&s), want, "{m:?} {h:?}");
            }
        }
        assert_eq!(decision_of(SubHandling::Confirm), WatchDecision::Pending);
    }

    #[test]
    fn rules_about_others_do_not_decide() {
        let s = snap(
            vec![
                rule("a", id("sip:jane@example.com"), SubHandling::Allow),
                rule("b", dom("other.test"), SubHandling::Block),
            ],
            &[HARRY],
        );
        assert_eq!(watcher_handling(&s), None);
        assert_eq!(decide_watch(&s), WatchDecision::Pending, "the default");
        let s = WatchSnapshot {
            default: SubHandling::PoliteBlock,
            ..s
        };
        assert_eq!(decide_watch(&s), WatchDecision::PoliteBlock);
    }

    #[test]
    fn the_most_specific_rule_wins_whatever_it_says() {
        // Anyone blocked, the domain polite-blocked, Harry allowed: Harry sees.
        let rules = vec![
            rule("any", WatcherMatch::Anyone, SubHandling::Block),
            rule("dom", dom("example.com"), SubHandling::PoliteBlock),
            rule("harry", id(HARRY), SubHandling::Allow),
        ];
        assert_eq!(
            decide_watch(&snap(rules.clone(), &[HARRY])),
            WatchDecision::Allow
        );
        // Jane of the same domain: the domain rule.
        assert_eq!(
            decide_watch(&snap(rules.clone(), &["sip:jane@Example.com"])),
            WatchDecision::PoliteBlock
        );
        // Someone elsewhere: anyone.
        assert_eq!(
            decide_watch(&snap(rules, &["sip:x@other.test"])),
            WatchDecision::Block
        );
        // And the other way round: anyone allowed, Harry blocked.
        let rules = vec![
            rule("any", WatcherMatch::Anyone, SubHandling::Allow),
            rule("harry", id(HARRY), SubHandling::Block),
        ];
        assert_eq!(decide_watch(&snap(rules, &[HARRY])), WatchDecision::Block);
    }

    #[test]
    fn between_equals_the_most_restrictive_wins() {
        let order = [
            SubHandling::Block,
            SubHandling::PoliteBlock,
            SubHandling::Confirm,
            SubHandling::Allow,
        ];
        for m in [id(HARRY), dom("example.com"), WatcherMatch::Anyone] {
            for (i, stricter) in order.iter().enumerate() {
                for laxer in &order[i..] {
                    // In either order of the rules.
                    for rules in [
                        vec![
                            rule("a", m.clone(), *stricter),
                            rule("b", m.clone(), *laxer),
                        ],
                        vec![
                            rule("b", m.clone(), *laxer),
                            rule("a", m.clone(), *stricter),
                        ],
                    ] {
                        assert_eq!(
                            watcher_handling(&snap(rules, &[HARRY])),
                            Some(*stricter),
                            "{m:?}: {stricter:?} against {laxer:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn identity_matches_any_address_of_the_watcher_and_ignores_case_of_host() {
        // Harry is one user with a SIP AOR and an IMPS UserID: a rule naming
        // his IMPS id decides his SIP watch.
        let harry = ["sip:harry@example.com", "wv:Harry@example.com"];
        let s = snap(
            vec![rule("a", id("wv:harry@EXAMPLE.com"), SubHandling::Block)],
            &harry,
        );
        assert_eq!(decide_watch(&s), WatchDecision::Block);
        let s = snap(
            vec![rule("a", id("sip:harry@EXAMPLE.COM"), SubHandling::Allow)],
            &harry,
        );
        assert_eq!(decide_watch(&s), WatchDecision::Allow);
        // The user part is case-sensitive in SIP.
        let s = snap(
            vec![rule("a", id("sip:HARRY@example.com"), SubHandling::Allow)],
            &[HARRY],
        );
        assert_eq!(watcher_handling(&s), None);
        // A domain rule by any of the addresses' hosts.
        let s = snap(
            vec![rule("a", dom("EXAMPLE.com"), SubHandling::Allow)],
            &["wv:h@example.com"],
        );
        assert_eq!(decide_watch(&s), WatchDecision::Allow);
    }

    #[test]
    fn the_block_list_is_an_identity_rule() {
        let allow_all = vec![rule("any", WatcherMatch::Anyone, SubHandling::Allow)];
        let blocked = WatchSnapshot {
            listed: Some(true),
            ..snap(allow_all.clone(), &[HARRY])
        };
        assert_eq!(decide_watch(&blocked), WatchDecision::Block);
        assert!(blocks_messages(&blocked));
        // Even an identity allow does not undo the block (same specificity).
        let blocked_but_allowed = WatchSnapshot {
            listed: Some(true),
            ..snap(vec![rule("h", id(HARRY), SubHandling::Allow)], &[HARRY])
        };
        assert_eq!(decide_watch(&blocked_but_allowed), WatchDecision::Block);
        // Listed, not blocked: allowed over a domain block (the proactive flow)…
        let listed = WatchSnapshot {
            listed: Some(false),
            ..snap(
                vec![rule("d", dom("example.com"), SubHandling::Block)],
                &[HARRY],
            )
        };
        assert_eq!(decide_watch(&listed), WatchDecision::Allow);
        // …but an identity rule of theirs still combines by restrictiveness.
        let listed = WatchSnapshot {
            listed: Some(false),
            ..snap(vec![rule("h", id(HARRY), SubHandling::Confirm)], &[HARRY])
        };
        assert_eq!(decide_watch(&listed), WatchDecision::Pending);
    }

    #[test]
    fn only_a_block_the_presentity_wrote_refuses_messages() {
        let s = WatchSnapshot {
            default: SubHandling::Block,
            ..snap(Vec::new(), &[HARRY])
        };
        assert_eq!(decide_watch(&s), WatchDecision::Block);
        assert!(!blocks_messages(&s), "the default is about presence only");
        let s = snap(
            vec![rule("d", dom("example.com"), SubHandling::Block)],
            &[HARRY],
        );
        assert!(blocks_messages(&s));
        let s = snap(
            vec![rule("d", dom("example.com"), SubHandling::PoliteBlock)],
            &[HARRY],
        );
        assert!(!blocks_messages(&s), "polite-block keeps messages");
    }
}

//! Presence publications (RFC 3903): what SIP users PUBLISH of themselves,
//! by entity tag, with their expiry and the caps per user and in total. No
//! I/O; time (Unix seconds) is an argument. A user's presence is their
//! latest publication (open when any is), else their registration.

use std::collections::HashMap;

use crate::presence::Presence;

/// Expires when the PUBLISH has none (RFC 3903 §4: the package's default).
pub(crate) const DEFAULT_EXPIRES: u32 = 3600;
/// Shorter publications are answered 423 with this as `Min-Expires`.
pub(crate) const MIN_EXPIRES: u32 = 60;
/// Longer publications are cut to this.
pub(crate) const MAX_EXPIRES: u32 = 3600;
/// Largest PIDF body taken (a phone's document is well under 2 KiB).
pub(crate) const MAX_BODY: usize = 16 * 1024;
/// Publications one user may hold (one per device).
pub(crate) const MAX_PER_USER: usize = 8;
/// Publications held in total.
pub(crate) const MAX_TOTAL: usize = 10_000;

/// One publication.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Publication {
    aor: String,
    presence: Presence,
    expires_at: u64,
    /// Order of the last change, for "latest".
    seq: u64,
}

/// What a PUBLISH asks, once its headers are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Publish {
    /// A new publication (no `SIP-If-Match`), with its document.
    Initial(Presence),
    /// `SIP-If-Match` with no body: the same document, longer.
    Refresh(String),
    /// `SIP-If-Match` with a new document.
    Modify(String, Presence),
    /// `SIP-If-Match` with `Expires: 0`.
    Remove(String),
}

/// Why a PUBLISH is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PublishError {
    /// 412: no publication of this user has that entity tag.
    #[error("no publication with entity tag {0}")]
    UnknownTag(String),
    /// 403: the user holds as many publications as allowed.
    #[error("at most {0} publications per user")]
    UserFull(usize),
    /// 503: the table is full.
    #[error("too many publications")]
    Full,
}

/// Every live publication, by entity tag.
#[derive(Debug, Clone, Default)]
pub(crate) struct Publications {
    by_tag: HashMap<String, Publication>,
    seq: u64,
}

impl Publications {
    /// Applies `p` for `aor` at `now`, for `expires` seconds (already
    /// bounded by the caller); `new_tag` is the entity tag a kept publication
    /// gets (RFC 3903 §6: a new one at every change). Returns the tag to
    /// answer with (the old one for a removal).
    pub(crate) fn apply(
        &mut self,
        aor: &str,
        p: Publish,
        expires: u32,
        now: u64,
        new_tag: String,
    ) -> Result<String, PublishError> {
        self.seq += 1;
        let expires_at = now + u64::from(expires);
        let presence = match p {
            Publish::Initial(presence) => {
                // Expired ones count until `expire` has told of them.
                if self.by_tag.len() >= MAX_TOTAL {
                    return Err(PublishError::Full);
                }
                let live = |x: &&Publication| x.aor == aor && x.expires_at > now;
                if self.by_tag.values().filter(live).count() >= MAX_PER_USER {
                    return Err(PublishError::UserFull(MAX_PER_USER));
                }
                presence
            }
            Publish::Refresh(tag) => self.take(aor, &tag, now)?.presence,
            Publish::Modify(tag, presence) => {
                self.take(aor, &tag, now)?;
                presence
            }
            Publish::Remove(tag) => {
                self.take(aor, &tag, now)?;
                return Ok(tag);
            }
        };
        self.by_tag.insert(
            new_tag.clone(),
            Publication {
                aor: aor.to_owned(),
                presence,
                expires_at,
                seq: self.seq,
            },
        );
        Ok(new_tag)
    }

    /// Removes the live publication `tag` of `aor` (another user's tag, or
    /// an expired one, is as unknown as a made-up one).
    fn take(&mut self, aor: &str, tag: &str, now: u64) -> Result<Publication, PublishError> {
        match self.by_tag.get(tag) {
            Some(p) if p.aor == aor && p.expires_at > now => self
                .by_tag
                .remove(tag)
                .ok_or_else(|| PublishError::UnknownTag(tag.to_owned())),
            _ => Err(PublishError::UnknownTag(tag.to_owned())),
        }
    }

    /// What `aor` has published, composed: the latest document, open when
    /// any publication is; `None` when nothing is published.
    pub(crate) fn presence(&self, aor: &str) -> Option<Presence> {
        let mine = || self.by_tag.values().filter(|p| p.aor == aor);
        let latest = mine().max_by_key(|p| p.seq)?;
        let mut out = latest.presence.clone();
        out.open = mine().any(|p| p.presence.open);
        Some(out)
    }

    /// Drops publications expired at `now`; returns the users who lost one,
    /// once each.
    pub(crate) fn expire(&mut self, now: u64) -> Vec<String> {
        let mut gone: Vec<String> = Vec::new();
        self.by_tag.retain(|_, p| {
            let keep = p.expires_at > now;
            if !keep && !gone.contains(&p.aor) {
                gone.push(p.aor.clone());
            }
            keep
        });
        gone
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_tag.len()
    }
}

/// The Expires of a PUBLISH: the default when absent, cut to the maximum;
/// `Err(None)` for nonsense (400), `Err(Some(min))` when too short (423).
pub(crate) fn publish_expires(header: Option<&str>) -> Result<u32, Option<u32>> {
    match header.map(str::trim) {
        None => Ok(DEFAULT_EXPIRES),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            let n = v.parse::<u64>().unwrap_or(u64::MAX);
            match n {
                0 => Ok(0),
                n if n < u64::from(MIN_EXPIRES) => Err(Some(MIN_EXPIRES)),
                n => Ok(n.min(u64::from(MAX_EXPIRES)) as u32),
            }
        }
        Some(_) => Err(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> Presence {
        Presence {
            open: true,
            activities: vec!["busy".into()],
            ..Presence::default()
        }
    }

    #[test]
    fn initial_refresh_modify_remove() {
        let mut t = Publications::default();
        let a = "sip:alice@sms.example";
        let tag = t
            .apply(a, Publish::Initial(busy()), 600, 1000, "e1".into())
            .unwrap();
        assert_eq!(tag, "e1");
        assert_eq!(t.presence(a), Some(busy()));
        assert_eq!(t.presence("sip:bob@sms.example"), None);
        // Refresh: a new tag, the same document.
        let tag = t
            .apply(a, Publish::Refresh("e1".into()), 600, 1100, "e2".into())
            .unwrap();
        assert_eq!(tag, "e2");
        assert_eq!(t.presence(a), Some(busy()));
        // The old tag is gone.
        assert_eq!(
            t.apply(a, Publish::Refresh("e1".into()), 600, 1100, "e3".into()),
            Err(PublishError::UnknownTag("e1".into()))
        );
        // Another user cannot touch it.
        assert_eq!(
            t.apply(
                "sip:bob@x",
                Publish::Remove("e2".into()),
                0,
                1100,
                "e4".into()
            ),
            Err(PublishError::UnknownTag("e2".into()))
        );
        let tag = t
            .apply(
                a,
                Publish::Modify("e2".into(), Presence::offline()),
                600,
                1200,
                "e5".into(),
            )
            .unwrap();
        assert_eq!(tag, "e5");
        assert_eq!(t.presence(a), Some(Presence::offline()));
        assert_eq!(
            t.apply(a, Publish::Remove("e5".into()), 0, 1300, "e6".into()),
            Ok("e5".into())
        );
        assert_eq!(t.presence(a), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn several_devices_compose_and_expire() {
        let mut t = Publications::default();
        let a = "sip:alice@sms.example";
        t.apply(a, Publish::Initial(busy()), 100, 1000, "e1".into())
            .unwrap();
        t.apply(
            a,
            Publish::Initial(Presence::offline()),
            200,
            1010,
            "e2".into(),
        )
        .unwrap();
        // The latest document, open because the other device is.
        let p = t.presence(a).unwrap();
        assert!(p.open);
        assert!(p.activities.is_empty());
        assert!(t.expire(1099).is_empty());
        assert_eq!(t.expire(1100), vec![a.to_owned()]);
        assert_eq!(t.presence(a), Some(Presence::offline()));
        assert_eq!(t.expire(1210), vec![a.to_owned()]);
        assert_eq!(t.presence(a), None);
    }

    #[test]
    fn caps_per_user() {
        let mut t = Publications::default();
        for i in 0..MAX_PER_USER {
            t.apply("sip:a@x", Publish::Initial(busy()), 60, 0, format!("t{i}"))
                .unwrap();
        }
        assert_eq!(
            t.apply("sip:a@x", Publish::Initial(busy()), 60, 0, "z".into()),
            Err(PublishError::UserFull(MAX_PER_USER))
        );
        // Someone else still may; expired ones make room.
        t.apply("sip:b@x", Publish::Initial(busy()), 60, 0, "b".into())
            .unwrap();
        t.apply("sip:a@x", Publish::Initial(busy()), 60, 60, "z".into())
            .unwrap();
        assert_eq!(
            t.apply("sip:a@x", Publish::Refresh("t0".into()), 60, 60, "y".into()),
            Err(PublishError::UnknownTag("t0".into()))
        );
        let mut gone = t.expire(60);
        gone.sort();
        assert_eq!(gone, ["sip:a@x", "sip:b@x"]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn expires_values() {
        assert_eq!(publish_expires(None), Ok(3600));
        assert_eq!(publish_expires(Some("0")), Ok(0));
        assert_eq!(publish_expires(Some("59")), Err(Some(60)));
        assert_eq!(publish_expires(Some("60")), Ok(60));
        assert_eq!(publish_expires(Some("99999999999999999999")), Ok(3600));
        assert_eq!(publish_expires(Some("-1")), Err(None));
        assert_eq!(publish_expires(Some("")), Err(None));
    }
}

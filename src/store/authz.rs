//! Presence authorisation rows: each user's access policy as a presentity
//! (rules in order) and the watchers seen, with where each stands. A user
//! with a SIP AOR and an IMPS UserID is one presentity: the rows hang off the
//! user. Addresses are kept normalised
//! ([`crate::bridge::policy::normalise_address`]), so a rule written for
//! `sip:Harry@Example.COM` matches `sip:Harry@example.com`.

use rusqlite::{Connection, OptionalExtension, params};

use super::error::StoreError;
use super::users::UserId;
use super::{Store, UnixTime};
use crate::bridge::api::{PresenceRule, SubHandling, WatchDecision, WatcherInfo, WatcherMatch};
use crate::bridge::policy::normalise_address;

/// Rules one presentity may have; a policy with more is refused whole.
pub const MAX_PRESENCE_RULES: usize = 100;
/// Watchers one presentity keeps; a new one beyond them is refused (the
/// presentity can remove some by deciding them, or the operator).
pub const MAX_WATCHERS: usize = 500;
/// The longest rule id kept (XCAP ids are short NCNames).
const MAX_RULE_ID: usize = 64;

/// A rule's id, match and handling as the row keeps them, checked.
fn rule_row(r: &PresenceRule) -> Result<(&'static str, Option<String>), StoreError> {
    let bad = |why: String| StoreError::InvalidInput(format!("presence rule {:?}: {why}", r.id));
    if r.id.is_empty()
        || r.id.len() > MAX_RULE_ID
        || r.id.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(bad(format!(
            "an id is 1 to {MAX_RULE_ID} characters without spaces"
        )));
    }
    Ok(match &r.watcher {
        WatcherMatch::Identity(a) => {
            let n = normalise_address(a).ok_or_else(|| bad(format!("{a:?} is not an address")))?;
            ("identity", Some(n))
        }
        WatcherMatch::Domain(d) => {
            let d = d.trim().to_ascii_lowercase();
            if d.is_empty()
                || d.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "@:<>".contains(c))
            {
                return Err(bad(format!("{d:?} is not a domain")));
            }
            ("domain", Some(d))
        }
        WatcherMatch::Anyone => ("anyone", None),
    })
}

/// A row of `SELECT rule_id, match_kind, match_value, handling`.
fn rule_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PresenceRule> {
    let (kind, value, handling): (String, Option<String>, String) =
        (r.get(1)?, r.get(2)?, r.get(3)?);
    let watcher = match (kind.as_str(), value) {
        ("identity", Some(v)) => WatcherMatch::Identity(v),
        ("domain", Some(v)) => WatcherMatch::Domain(v),
        _ => WatcherMatch::Anyone,
    };
    Ok(PresenceRule {
        id: r.get(0)?,
        watcher,
        // The CHECK constraint keeps the four names; anything else is the
        // strictest.
        handling: SubHandling::parse(&handling).unwrap_or(SubHandling::Block),
    })
}

/// A row of `SELECT watcher, decision, since`.
fn watcher_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WatcherInfo> {
    let decision: String = r.get(1)?;
    Ok(WatcherInfo {
        watcher: r.get(0)?,
        decision: WatchDecision::parse(&decision).unwrap_or(WatchDecision::Block),
        since: UnixTime(r.get(2)?),
    })
}

fn insert_rule(
    tx: &Connection,
    user: UserId,
    position: usize,
    rule: &PresenceRule,
) -> Result<(), StoreError> {
    let (kind, value) = rule_row(rule)?;
    tx.prepare_cached(
        "INSERT INTO presence_rules (user_id, rule_id, position, match_kind, match_value, handling) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        user.0,
        rule.id,
        i64::try_from(position).unwrap_or(i64::MAX),
        kind,
        value,
        rule.handling.as_str()
    ])?;
    Ok(())
}

fn rule_count(tx: &Connection, user: UserId) -> Result<usize, StoreError> {
    let n: i64 = tx.query_row(
        "SELECT count(*) FROM presence_rules WHERE user_id = ?1",
        [user.0],
        |r| r.get(0),
    )?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn too_many_rules(n: usize) -> StoreError {
    StoreError::InvalidInput(format!(
        "{n} presence rules: a presentity has at most {MAX_PRESENCE_RULES}"
    ))
}

impl Store {
    /// The presentity's rules, in their order.
    pub fn presence_rules(&self, user: UserId) -> Result<Vec<PresenceRule>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT rule_id, match_kind, match_value, handling FROM presence_rules \
             WHERE user_id = ?1 ORDER BY position, id",
        )?;
        let rows = stmt.query_map([user.0], rule_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces the presentity's rules (identity addresses normalised). More
    /// than [`MAX_PRESENCE_RULES`], an id twice, an empty id or an address
    /// that is none: refused, and the old rules stay.
    pub fn set_presence_rules(
        &mut self,
        user: UserId,
        rules: &[PresenceRule],
    ) -> Result<(), StoreError> {
        if rules.len() > MAX_PRESENCE_RULES {
            return Err(too_many_rules(rules.len()));
        }
        for (i, r) in rules.iter().enumerate() {
            if rules[..i].iter().any(|o| o.id == r.id) {
                return Err(StoreError::InvalidInput(format!(
                    "presence rule id {:?} is used twice",
                    r.id
                )));
            }
        }
        self.write(|tx| {
            tx.execute("DELETE FROM presence_rules WHERE user_id = ?1", [user.0])?;
            for (i, r) in rules.iter().enumerate() {
                insert_rule(tx, user, i, r)?;
            }
            Ok(())
        })
    }

    /// Makes the presentity's answer about one watcher their identity rule
    /// for that address: the rules naming exactly that address are replaced
    /// by one with `handling`, kept in place of the first of them (or last
    /// when there was none). Returns the rule's id.
    pub fn put_identity_rule(
        &mut self,
        user: UserId,
        watcher: &str,
        handling: SubHandling,
    ) -> Result<String, StoreError> {
        let address = normalise_address(watcher).ok_or_else(|| {
            StoreError::InvalidInput(format!("{watcher:?} is not a watcher address"))
        })?;
        self.write(|tx| {
            let found: Option<(i64, String)> = tx
                .query_row(
                    "SELECT position, rule_id FROM presence_rules WHERE user_id = ?1 \
                     AND match_kind = 'identity' AND match_value = ?2 ORDER BY position LIMIT 1",
                    params![user.0, address],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            tx.execute(
                "DELETE FROM presence_rules WHERE user_id = ?1 \
                 AND match_kind = 'identity' AND match_value = ?2",
                params![user.0, address],
            )?;
            let (position, id) = match found {
                Some((p, id)) => (p, id),
                None => {
                    let n = rule_count(tx, user)?;
                    if n >= MAX_PRESENCE_RULES {
                        return Err(too_many_rules(n + 1));
                    }
                    let next: i64 = tx.query_row(
                        "SELECT coalesce(max(position) + 1, 0) FROM presence_rules WHERE user_id = ?1",
                        [user.0],
                        |r| r.get(0),
                    )?;
                    (next, fresh_rule_id(tx, user)?)
                }
            };
            let rule = PresenceRule {
                id: id.clone(),
                watcher: WatcherMatch::Identity(address.clone()),
                handling,
            };
            insert_rule(tx, user, usize::try_from(position).unwrap_or(0), &rule)?;
            Ok(id)
        })
    }

    /// Removes the presentity's identity rules with `handling` about any of
    /// `addresses` (an unblock drops the block rules too); how many went.
    pub fn remove_identity_rules(
        &mut self,
        user: UserId,
        addresses: &[String],
        handling: SubHandling,
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            let mut n = 0;
            for a in addresses.iter().filter_map(|a| normalise_address(a)) {
                n += tx.execute(
                    "DELETE FROM presence_rules WHERE user_id = ?1 AND match_kind = 'identity' \
                     AND match_value = ?2 AND handling = ?3",
                    params![user.0, a, handling.as_str()],
                )?;
            }
            Ok(n)
        })
    }

    /// The presentity's watchers, oldest first.
    pub fn watchers(&self, user: UserId) -> Result<Vec<WatcherInfo>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT watcher, decision, since FROM watchers WHERE user_id = ?1 \
             ORDER BY since, watcher",
        )?;
        let rows = stmt.query_map([user.0], watcher_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Where one watcher of the presentity stands, if the bridge saw them.
    pub fn watcher(&self, user: UserId, watcher: &str) -> Result<Option<WatcherInfo>, StoreError> {
        let Some(w) = normalise_address(watcher) else {
            return Ok(None);
        };
        Ok(self
            .conn
            .prepare_cached(
                "SELECT watcher, decision, since FROM watchers WHERE user_id = ?1 AND watcher = ?2",
            )?
            .query_row(params![user.0, w], watcher_from_row)
            .optional()?)
    }

    /// Records where a watcher stands now (first seen at `now`); returns
    /// where they stood before, `None` for a new one. A new watcher beyond
    /// [`MAX_WATCHERS`] is refused.
    pub fn record_watcher(
        &mut self,
        user: UserId,
        watcher: &str,
        decision: WatchDecision,
        now: UnixTime,
    ) -> Result<Option<WatchDecision>, StoreError> {
        let w = normalise_address(watcher).ok_or_else(|| {
            StoreError::InvalidInput(format!("{watcher:?} is not a watcher address"))
        })?;
        let before = self.watcher(user, &w)?.map(|i| i.decision);
        self.write(|tx| {
            if before.is_none() {
                let n: i64 = tx.query_row(
                    "SELECT count(*) FROM watchers WHERE user_id = ?1",
                    [user.0],
                    |r| r.get(0),
                )?;
                if usize::try_from(n).unwrap_or(usize::MAX) >= MAX_WATCHERS {
                    return Err(StoreError::InvalidInput(format!(
                        "too many watchers: a presentity keeps at most {MAX_WATCHERS}"
                    )));
                }
            }
            tx.execute(
                "INSERT INTO watchers (user_id, watcher, decision, since) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (user_id, watcher) DO UPDATE SET decision = excluded.decision",
                params![user.0, w, decision.as_str(), now.0],
            )?;
            Ok(())
        })?;
        Ok(before)
    }
}

/// A rule id the presentity does not use yet, for an answer made a rule
/// (`wa1`, `wa2`, …: NCNames, as XCAP wants).
fn fresh_rule_id(tx: &Connection, user: UserId) -> Result<String, StoreError> {
    let mut n: i64 = tx.query_row(
        "SELECT count(*) + 1 FROM presence_rules WHERE user_id = ?1",
        [user.0],
        |r| r.get(0),
    )?;
    loop {
        let id = format!("wa{n}");
        let used: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM presence_rules WHERE user_id = ?1 AND rule_id = ?2)",
            params![user.0, id],
            |r| r.get(0),
        )?;
        if !used {
            return Ok(id);
        }
        n += 1;
    }
}

//! `smsbridge purge`: deletes what is over and older than a cutoff, never what
//! a pending report, notification or delivery still needs (see
//! [`Store::purge`](crate::store::Store::purge)).

use std::time::Duration;

use clap::Args;

use super::output::table;
use super::{Ctx, Failure};
use crate::store::UnixTime;

#[derive(Debug, Args)]
pub(super) struct PurgeArgs {
    /// Delete what ended longer ago than this: `90d`, `12weeks`, `36h`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    older_than: Duration,
    /// Count what would be deleted, and delete nothing.
    #[arg(long)]
    dry_run: bool,
}

impl PurgeArgs {
    pub(super) fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let age = i64::try_from(self.older_than.as_secs())
            .map_err(|_| Failure::BadInput("--older-than is too long".into()))?;
        let cutoff = UnixTime(UnixTime::now().0.saturating_sub(age));
        let p = if self.dry_run {
            ctx.read()?.purge(cutoff, true)?
        } else {
            ctx.change()?.purge(cutoff, false)?
        };
        let rows: Vec<Vec<String>> = [
            ("messages", p.messages),
            ("parts", p.parts),
            ("inbound", p.inbound),
            ("inbox_pdus", p.inbox_pdus),
            ("charging_records", p.charging_records),
        ]
        .iter()
        .map(|(t, n)| vec![(*t).to_owned(), n.to_string()])
        .collect();
        let header = if self.dry_run {
            "WOULD DELETE"
        } else {
            "DELETED"
        };
        print!("{}", table(&["TABLE", header], &rows));
        if self.dry_run {
            eprintln!("smsbridge: dry run, nothing was deleted");
        }
        Ok(())
    }
}

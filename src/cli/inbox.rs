//! `smsbridge inbox list`: the messages received (SMS from subscribers, and IMs
//! relayed between users) and where their delivery stands.

use std::collections::HashMap;

use clap::Subcommand;
use serde_json::json;

use super::output::{preview, print_json, table, write_csv};
use super::{Ctx, Failure};
use crate::store::{InboundState, UserId};

#[derive(Debug, Subcommand)]
pub(super) enum InboxCommand {
    /// List received messages, oldest first.
    List {
        /// Only messages in this state: pending, delivered, failed, expired.
        #[arg(long, value_parser = parse_state)]
        state: Option<InboundState>,
        /// Print a JSON array.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print CSV with a header row.
        #[arg(long)]
        csv: bool,
    },
}

fn parse_state(s: &str) -> Result<InboundState, String> {
    InboundState::parse(s).ok_or_else(|| {
        let names: Vec<&str> = InboundState::ALL.iter().map(|m| m.as_str()).collect();
        format!("unknown state {s:?}; the states are {}", names.join(", "))
    })
}

/// The columns of `--csv`, and the keys of `--json`.
const COLUMNS: [&str; 10] = [
    "id",
    "received_at",
    "sender",
    "user",
    "state",
    "modem_imsi",
    "incomplete",
    "attempts",
    "last_error",
    "text",
];

impl InboxCommand {
    pub(super) fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let Self::List { state, json, csv } = self;
        let store = ctx.read()?;
        let messages = store.inbound_in(state)?;
        let users: HashMap<UserId, String> = store
            .users()?
            .into_iter()
            .map(|u| (u.id, u.address().to_owned()))
            .collect();
        let user_of = |id: Option<UserId>| id.and_then(|u| users.get(&u).cloned());
        if json {
            let v: Vec<_> = messages
                .iter()
                .map(|m| {
                    json!({
                        "id": m.id, "received_at": m.received_at.to_string(), "sender": m.sender,
                        "user": user_of(m.user), "state": m.state, "modem_imsi": m.modem_imsi,
                        "incomplete": m.incomplete, "attempts": m.attempts,
                        "last_error": m.last_error, "text": m.text,
                    })
                })
                .collect();
            return print_json(&v);
        }
        // One row of every column; the table shows some, shortened.
        let rows: Vec<Vec<String>> = messages
            .iter()
            .map(|m| {
                vec![
                    m.id.0.to_string(),
                    m.received_at.to_string(),
                    m.sender.clone(),
                    user_of(m.user).unwrap_or_default(),
                    m.state.to_string(),
                    m.modem_imsi.clone(),
                    m.incomplete.to_string(),
                    m.attempts.to_string(),
                    m.last_error.clone().unwrap_or_default(),
                    m.text.clone(),
                ]
            })
            .collect();
        if csv {
            return write_csv(&COLUMNS, &rows);
        }
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|r| {
                let user = if r[3].is_empty() {
                    "-".to_owned()
                } else {
                    r[3].clone()
                };
                vec![
                    r[0].clone(),
                    r[1].clone(),
                    r[2].clone(),
                    user,
                    r[4].clone(),
                    preview(&r[9], 30),
                ]
            })
            .collect();
        let headers = ["ID", "RECEIVED", "FROM", "USER", "STATE", "TEXT"];
        print!("{}", table(&headers, &rows));
        Ok(())
    }
}

//! `smsbridge queue list` and `smsbridge cdr export`.

use clap::Subcommand;

use super::output::{or_dash, preview, table};
use super::{Ctx, Failure};
use crate::store::{MessageState, UnixTime};

#[derive(Debug, Subcommand)]
pub(super) enum QueueCommand {
    /// List outbox messages, oldest first.
    List {
        /// Only messages in this state.
        #[arg(long, value_parser = parse_state)]
        state: Option<MessageState>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum CdrCommand {
    /// Print charging records, oldest first.
    Export {
        /// Only records at or after this time (RFC 3339, or a date: midnight UTC).
        #[arg(long, value_parser = UnixTime::parse, value_name = "TIME")]
        since: Option<UnixTime>,
        /// Print CSV with a header row.
        #[arg(long)]
        csv: bool,
    },
}

fn parse_state(s: &str) -> Result<MessageState, String> {
    MessageState::parse(s).ok_or_else(|| {
        let names: Vec<&str> = MessageState::ALL.iter().map(|m| m.as_str()).collect();
        format!("unknown state {s:?}; the states are {}", names.join(", "))
    })
}

impl QueueCommand {
    pub(super) fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let Self::List { state, json } = self;
        let messages = ctx.open()?.messages(state)?;
        if json {
            let text =
                serde_json::to_string(&messages).map_err(|e| Failure::Other(e.to_string()))?;
            println!("{text}");
            return Ok(());
        }
        let rows: Vec<Vec<String>> = messages
            .iter()
            .map(|m| {
                vec![
                    m.id.0.to_string(),
                    m.state.to_string(),
                    or_dash(m.user.as_ref()),
                    m.msisdn.to_string(),
                    format!("{}/{}", m.parts_sent, m.parts),
                    m.attempts.to_string(),
                    m.created_at.to_string(),
                    preview(&m.text, 24),
                    or_dash(m.last_error.as_deref().map(|e| preview(e, 40))),
                ]
            })
            .collect();
        let headers = [
            "ID", "STATE", "USER", "TO", "SENT", "ATTEMPTS", "QUEUED", "TEXT", "ERROR",
        ];
        print!("{}", table(&headers, &rows));
        Ok(())
    }
}

impl CdrCommand {
    pub(super) fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let Self::Export { since, csv } = self;
        let records = ctx.open()?.cdr_since(since.unwrap_or(UnixTime(i64::MIN)))?;
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|r| {
                vec![
                    r.at.to_string(),
                    r.user.clone(),
                    r.msisdn.clone(),
                    r.modem_imsi.clone(),
                    r.message_id.0.to_string(),
                    r.seq.to_string(),
                    r.mr.map(|m| m.to_string()).unwrap_or_default(),
                    r.result.clone(),
                    r.detail.clone().unwrap_or_default(),
                    r.outcome.clone().unwrap_or_default(),
                    r.outcome_at.map(|t| t.to_string()).unwrap_or_default(),
                ]
            })
            .collect();
        if !csv {
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|c| if c.is_empty() { "-".into() } else { c })
                        .collect()
                })
                .collect();
            let headers = [
                "TIME",
                "USER",
                "MSISDN",
                "MODEM",
                "MESSAGE",
                "PART",
                "MR",
                "RESULT",
                "DETAIL",
                "OUTCOME",
                "OUTCOME AT",
            ];
            print!("{}", table(&headers, &rows));
            return Ok(());
        }
        let mut w = csv::Writer::from_writer(std::io::stdout());
        let fail = |e: csv::Error| Failure::Other(format!("cannot write CSV: {e}"));
        w.write_record([
            "time",
            "user",
            "msisdn",
            "modem_imsi",
            "message_id",
            "part",
            "mr",
            "result",
            "detail",
            "outcome",
            "outcome_at",
        ])
        .map_err(fail)?;
        for r in &rows {
            w.write_record(r).map_err(fail)?;
        }
        w.flush()
            .map_err(|e| Failure::Other(format!("cannot write CSV: {e}")))
    }
}

//! `smsbridge queue list|fail|requeue` and `smsbridge cdr export`.

use clap::{Args, Subcommand};

use super::output::{or_dash, preview, print_json, table, write_csv};
use super::{Ctx, Failure};
use crate::store::{MessageId, MessageState, Store, StoreError, UnixTime};

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
    /// Fail messages that have not gone out: their senders are told, like
    /// after any failure.
    Fail {
        #[command(flatten)]
        which: Which,
        /// Why, for the message's error and the sender's notification.
        #[arg(long, value_name = "TEXT", default_value = "failed by the operator")]
        reason: String,
    },
    /// Queue messages again: their parts that did not reach the phone, through
    /// any modem unless a part already went out through one.
    Requeue {
        #[command(flatten)]
        which: Which,
        /// Also queue parts that may have been sent already (the phone may get
        /// them twice). With --modem, every part of a message that is pinned
        /// to the modem is sent again through another one.
        #[arg(long)]
        even_if_sent: bool,
    },
}

/// The messages `fail` and `requeue` act on.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(super) struct Which {
    /// Message ids (the ID column of `queue list`).
    #[arg(value_name = "ID")]
    ids: Vec<i64>,
    /// Every message not over yet whose parts are pinned to this modem (IMSI),
    /// e.g. because it is gone for good.
    #[arg(long, value_name = "IMSI")]
    modem: Option<String>,
}

impl Which {
    fn ids(&self, store: &Store) -> Result<Vec<MessageId>, StoreError> {
        match &self.modem {
            Some(imsi) => store.messages_on_modem(imsi),
            None => Ok(self.ids.iter().copied().map(MessageId).collect()),
        }
    }
}

/// Runs `act` on each message; one line per message on stdout, or one on
/// stderr for a message it refused. Exit status 2 if any was refused.
fn each(
    store: &mut Store,
    which: &Which,
    mut act: impl FnMut(&mut Store, MessageId) -> Result<String, StoreError>,
) -> Result<(), Failure> {
    let ids = which.ids(store)?;
    if ids.is_empty()
        && let Some(imsi) = &which.modem
    {
        println!("no message is pinned to modem {imsi}");
        return Ok(());
    }
    let mut refused = false;
    for id in ids {
        match act(store, id) {
            Ok(line) => println!("{line}"),
            Err(e) if e.is_bad_input() => {
                eprintln!("smsbridge: {e}");
                refused = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if refused {
        Err(Failure::BadInputReported)
    } else {
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum CdrCommand {
    /// Print charging records, oldest first.
    Export {
        /// Only records at or after this time (RFC 3339, or a date: midnight UTC).
        #[arg(long, value_parser = UnixTime::parse, value_name = "TIME")]
        since: Option<UnixTime>,
        /// Print CSV with a header row.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
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
        let (state, json) = match self {
            Self::List { state, json } => (state, json),
            Self::Fail { which, reason } => {
                return each(&mut ctx.change()?, &which, |s, id| {
                    let state = s.fail_message(id, &reason, UnixTime::now())?;
                    Ok(format!("message {}: {state}", id.0))
                });
            }
            Self::Requeue {
                which,
                even_if_sent,
            } => {
                let leave = which.modem.is_some();
                return each(&mut ctx.change()?, &which, |s, id| {
                    let n = s.requeue_message(id, even_if_sent, leave, UnixTime::now())?;
                    let parts = if n == 1 { "part" } else { "parts" };
                    Ok(format!("message {}: {n} {parts} queued again", id.0))
                });
            }
        };
        let messages = ctx.read()?.messages(state)?;
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

/// The columns of `cdr export --csv`, and the keys of `--json`, in order
/// (README, "Charging records").
const CDR_COLUMNS: [&str; 12] = [
    "time",
    "direction",
    "from",
    "to",
    "modem_imsi",
    "message_id",
    "part",
    "mr",
    "result",
    "detail",
    "outcome",
    "outcome_at",
];

impl CdrCommand {
    pub(super) fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let Self::Export { since, csv, json } = self;
        let records = ctx.read()?.cdr_since(since.unwrap_or(UnixTime(i64::MIN)))?;
        if json {
            return print_json(&records);
        }
        let text = |v: Option<String>| v.unwrap_or_default();
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|r| {
                vec![
                    r.at.to_string(),
                    r.direction.to_string(),
                    r.from.clone(),
                    text(r.to.clone()),
                    text(r.modem_imsi.clone()),
                    r.message_id.to_string(),
                    text(r.seq.map(|s| s.to_string())),
                    text(r.mr.map(|m| m.to_string())),
                    r.result.clone(),
                    text(r.detail.clone()),
                    text(r.outcome.clone()),
                    text(r.outcome_at.map(|t| t.to_string())),
                ]
            })
            .collect();
        if csv {
            return write_csv(&CDR_COLUMNS, &rows);
        }
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
            "DIRECTION",
            "FROM",
            "TO",
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
        Ok(())
    }
}

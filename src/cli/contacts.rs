//! `smsbridge contacts add|list|remove|block|unblock|import`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::output::{or_dash, table, yes_no};
use super::{Ctx, Failure};
use crate::store::{ImportError, Msisdn, NewContact, UnixTime, UserAddress, normalise_msisdn};

#[derive(Debug, Subcommand)]
pub(super) enum ContactsCommand {
    /// Add a subscriber to a user's contacts.
    Add(AddArgs),
    /// List contacts.
    List {
        /// Only this user's contacts.
        #[arg(long, value_name = "ADDRESS")]
        user: Option<String>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Remove a contact.
    Remove(Pair),
    /// Block a subscriber for a user: no SMS from them reaches the user.
    Block(Pair),
    /// Unblock a subscriber for a user.
    Unblock(Pair),
    /// Add contacts from a CSV file with a header row naming the columns `user`,
    /// `msisdn`, `name`, `alias` (any order; `name` and `alias` optional). All
    /// rows or none.
    Import {
        /// The CSV file.
        csv: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(super) struct AddArgs {
    /// The user's address.
    #[arg(long, value_name = "ADDRESS")]
    user: String,
    /// The subscriber's number (E.164, 00…, or national with numbers.default_country_code).
    #[arg(long, value_name = "NUMBER")]
    msisdn: String,
    /// The name the user sees.
    #[arg(long)]
    name: Option<String>,
    /// An alias usable as a SIP user part (`sip:<alias>@…`), unique per user.
    #[arg(long)]
    alias: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct Pair {
    /// The user's address.
    #[arg(long, value_name = "ADDRESS")]
    user: String,
    /// The subscriber's number.
    #[arg(long, value_name = "NUMBER")]
    msisdn: String,
}

impl ContactsCommand {
    pub(super) fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let number = |s: &str| -> Result<Msisdn, Failure> {
            normalise_msisdn(s, ctx.country_code()).map_err(|e| Failure::BadInput(e.to_string()))
        };
        let user =
            |s: &str| -> Result<String, Failure> { Ok(UserAddress::parse(s)?.as_str().to_owned()) };
        match self {
            Self::Add(a) => {
                let c = NewContact {
                    user: user(&a.user)?,
                    msisdn: number(&a.msisdn)?,
                    nickname: a.name,
                    alias: a.alias,
                    list_name: None,
                };
                ctx.change()?.add_contact(&c, UnixTime::now())?;
                println!("added contact {} for {}", c.msisdn, c.user);
            }
            Self::List { user, json } => list(ctx, user.as_deref(), json)?,
            Self::Remove(p) => {
                let (u, m) = (user(&p.user)?, number(&p.msisdn)?);
                ctx.change()?.remove_contact(&u, &m)?;
                println!("removed contact {m} of {u}");
            }
            Self::Block(p) => {
                let (u, m) = (user(&p.user)?, number(&p.msisdn)?);
                ctx.change()?.set_blocked(&u, &m, true)?;
                println!("blocked {m} for {u}");
            }
            Self::Unblock(p) => {
                let (u, m) = (user(&p.user)?, number(&p.msisdn)?);
                ctx.change()?.set_blocked(&u, &m, false)?;
                println!("unblocked {m} for {u}");
            }
            Self::Import { csv } => import(ctx, &csv)?,
        }
        Ok(())
    }
}

fn list(ctx: &Ctx, user: Option<&str>, as_json: bool) -> Result<(), Failure> {
    let contacts = ctx.read()?.contacts(user)?;
    if as_json {
        let text = serde_json::to_string(&contacts).map_err(|e| Failure::Other(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = contacts
        .iter()
        .map(|c| {
            vec![
                c.user_address.clone(),
                c.msisdn.to_string(),
                or_dash(c.nickname.as_ref()),
                or_dash(c.alias.as_ref()),
                c.list_name.clone(),
                yes_no(c.blocked),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["USER", "MSISDN", "NAME", "ALIAS", "LIST", "BLOCKED"],
            &rows
        )
    );
    Ok(())
}

/// Reads the CSV, checks every row, and imports all of them or none. Every bad
/// row is reported with its line number.
fn import(ctx: &Ctx, path: &Path) -> Result<(), Failure> {
    let shown = path.display();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Failure::BadInput(format!("{shown}: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| Failure::BadInput(format!("{shown}: {e}")))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    if let Some(bad) = headers
        .iter()
        .find(|h| !["user", "msisdn", "name", "alias"].contains(&h.to_ascii_lowercase().as_str()))
    {
        return Err(Failure::BadInput(format!(
            "{shown}: line 1: unknown column {bad:?} (the columns are user, msisdn, name, alias)"
        )));
    }
    let (Some(user_col), Some(msisdn_col)) = (column("user"), column("msisdn")) else {
        return Err(Failure::BadInput(format!(
            "{shown}: line 1: the header needs the columns user and msisdn"
        )));
    };
    let (name_col, alias_col) = (column("name"), column("alias"));
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let mut bad: Vec<(u64, String)> = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let why = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("{len} fields, but the header has {expected_len}")
                    }
                    _ => e.to_string(),
                };
                bad.push((line, why));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let user = field(Some(user_col)).unwrap_or_default();
        let msisdn = match normalise_msisdn(
            &field(Some(msisdn_col)).unwrap_or_default(),
            ctx.country_code(),
        ) {
            Ok(m) => m,
            Err(e) => {
                bad.push((line, e.to_string()));
                continue;
            }
        };
        rows.push(NewContact {
            user,
            msisdn,
            nickname: field(name_col),
            alias: field(alias_col),
            list_name: None,
        });
        lines.push(line);
    }
    let mut store = ctx.change()?;
    let checked = if bad.is_empty() {
        store.import_contacts(&rows, UnixTime::now())
    } else {
        // Rows that parsed are still checked, so one run reports every bad row.
        store.check_contacts(&rows, UnixTime::now()).map(|()| 0)
    };
    match checked {
        Ok(n) if bad.is_empty() => {
            println!("imported {n} contacts");
            return Ok(());
        }
        Ok(_) => {}
        Err(ImportError::Store(e)) => return Err(e.into()),
        Err(ImportError::Rows(errors)) => {
            bad.extend(errors.into_iter().map(|(i, e)| (lines[i], e.to_string())));
        }
    }
    bad.sort_by_key(|(line, _)| *line);
    for (line, e) in &bad {
        eprintln!("smsbridge: {shown}: line {line}: {e}");
    }
    eprintln!(
        "smsbridge: {shown}: nothing imported ({} bad rows)",
        bad.len()
    );
    Err(Failure::BadInputReported)
}

//! `smsbridge users add|list|remove|passwd|imps-digest|limits|presence-rules`.

use std::io::Read;

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{or_dash, table, yes_no};
use super::{Ctx, Failure};
use crate::bridge::api::{PresenceRule, SubHandling, WatcherMatch};
use crate::store::{
    BodyFormat, Msisdn, OfflineDelivery, StoreError, UnixTime, User, UserAddress, UserSettings,
    normalise_msisdn,
};

#[derive(Debug, Subcommand)]
pub(super) enum UsersCommand {
    /// Add a user: `sip:alice@example.com` (SIP) or `wv:alice@example.com` (IMPS).
    Add(AddArgs),
    /// List users.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user, their contacts and their unsent messages.
    Remove {
        /// The user's address.
        address: String,
    },
    /// Turn the IMPS 4-way (nonce/digest) Login on for a user, with their
    /// password from standard input, or off. It needs the password kept in
    /// clear in the database, so it is off unless turned on here.
    ImpsDigest {
        /// The user's address.
        address: String,
        /// Read the user's current password from standard input (one line).
        #[arg(long, conflicts_with = "off", required_unless_present = "off")]
        password_stdin: bool,
        /// Turn it off and forget the stored copy.
        #[arg(long)]
        off: bool,
    },
    /// Show a user's limits and preferences, or set some: SMS per minute and
    /// per day (0: no limit), the body format of the IMs they get, their own
    /// phone and what happens to IMs for them while they are offline (kept
    /// until they are back, or sent to that phone as SMS).
    Limits(LimitsArgs),
    /// Show a user's presence rules and watchers, or replace the rules:
    /// each `--rule "ID HANDLING WHO"`, HANDLING one of allow, block,
    /// polite-block, confirm; WHO an address (`sip:harry@example.com`,
    /// `wv:harry@example.com`), `*@DOMAIN` or `anyone`. The most specific
    /// rule decides (address, then domain, then anyone); among equals the
    /// most restrictive. Known watchers are decided again at once; a running
    /// daemon tells them at their next refresh.
    PresenceRules(PresenceRulesArgs),
    /// Set a user's password, read from standard input.
    Passwd {
        /// The user's address.
        address: String,
        /// Read the password from standard input (one line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Debug, Args)]
pub(super) struct AddArgs {
    /// SIP address of record or IMPS UserID.
    address: String,
    /// Read a password from standard input (one line).
    #[arg(long)]
    password_stdin: bool,
    /// Display name.
    #[arg(long, value_name = "NAME")]
    display: Option<String>,
    /// The user may not send SMS (receive only).
    #[arg(long)]
    no_sms: bool,
    /// Allow the IMPS 4-way (nonce/digest) Login; keeps the password in clear
    /// in the database (see `users imps-digest`).
    #[arg(long, requires = "password_stdin")]
    imps_digest: bool,
}

#[derive(Debug, Args)]
pub(super) struct PresenceRulesArgs {
    /// The user's address (either, for a user with both).
    address: String,
    /// A rule of the new policy, in order: "ID HANDLING WHO".
    #[arg(long, value_name = "RULE", value_parser = parse_rule, conflicts_with = "clear")]
    rule: Vec<PresenceRule>,
    /// Remove every rule (the default policy decides everyone).
    #[arg(long)]
    clear: bool,
}

/// "ID HANDLING WHO" as a rule.
fn parse_rule(s: &str) -> Result<PresenceRule, String> {
    let mut words = s.split_whitespace();
    let (Some(id), Some(handling), Some(who), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(format!("{s:?}: expected \"ID HANDLING WHO\""));
    };
    let handling = SubHandling::parse(handling)
        .ok_or_else(|| format!("{handling:?}: expected allow, block, polite-block or confirm"))?;
    let watcher = if who.eq_ignore_ascii_case("anyone") {
        WatcherMatch::Anyone
    } else if let Some(domain) = who.strip_prefix("*@") {
        WatcherMatch::Domain(domain.to_owned())
    } else if who.contains(':') {
        WatcherMatch::Identity(who.to_owned())
    } else {
        return Err(format!(
            "{who:?}: expected an address (sip:…, wv:…), *@DOMAIN or anyone"
        ));
    };
    Ok(PresenceRule {
        id: id.to_owned(),
        watcher,
        handling,
    })
}

/// `smsbridge users presence-rules`: the rules (after the change) and the
/// watchers.
fn presence_rules(ctx: &Ctx, a: PresenceRulesArgs) -> Result<(), Failure> {
    let address = UserAddress::parse(&a.address)?;
    let address = address.as_str();
    let unknown = || StoreError::UnknownUser(address.to_owned());
    let (rules, watchers) = if a.clear || !a.rule.is_empty() {
        let default = crate::bridge::default_handling(ctx.config.presence.default_policy);
        ctx.change()?.atomically(|s| {
            let u = s.user_by_address(address)?.ok_or_else(unknown)?;
            crate::bridge::replace_presence_rules(s, u.id, &a.rule, default, UnixTime::now())?;
            Ok((s.presence_rules(u.id)?, s.watchers(u.id)?))
        })?
    } else {
        let s = ctx.read()?;
        let u = s.user_by_address(address)?.ok_or_else(unknown)?;
        (s.presence_rules(u.id)?, s.watchers(u.id)?)
    };
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            let who = match &r.watcher {
                WatcherMatch::Identity(a) => a.clone(),
                WatcherMatch::Domain(d) => format!("*@{d}"),
                WatcherMatch::Anyone => "anyone".to_owned(),
            };
            vec![r.id.clone(), r.handling.as_str().to_owned(), who]
        })
        .collect();
    print!("{}", table(&["RULE", "HANDLING", "WHO"], &rows));
    let rows: Vec<Vec<String>> = watchers
        .iter()
        .map(|w| {
            vec![
                w.watcher.clone(),
                w.decision.as_str().to_owned(),
                w.since.0.to_string(),
            ]
        })
        .collect();
    print!("{}", table(&["WATCHER", "DECISION", "SINCE"], &rows));
    Ok(())
}

#[derive(Debug, Args)]
pub(super) struct LimitsArgs {
    /// The user's address.
    address: String,
    /// Most SMS a minute (0: no limit).
    #[arg(long, value_name = "N")]
    rate: Option<u32>,
    /// Most SMS a day (0: no limit).
    #[arg(long, value_name = "N")]
    daily: Option<u32>,
    /// Body of the IMs the user gets: `plain` (text/plain) or `cpim` (message/cpim).
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    format: Option<BodyFormat>,
    /// The user's own phone number (no other user may have it).
    #[arg(long, value_name = "NUMBER", conflicts_with = "no_phone")]
    phone: Option<String>,
    /// Forget the user's phone number (IMs while offline are kept again).
    #[arg(long)]
    no_phone: bool,
    /// IMs for the user while offline: `store` (kept until they are back) or
    /// `sms` (sent to their phone as SMS).
    #[arg(long, value_name = "WHAT", value_parser = parse_offline)]
    offline: Option<OfflineDelivery>,
}

fn parse_offline(s: &str) -> Result<OfflineDelivery, String> {
    OfflineDelivery::parse(s)
        .ok_or_else(|| format!("unknown choice {s:?}; the choices are store, sms"))
}

/// The settings after `a`'s changes to the phone and the offline preference;
/// forgetting the phone also stops IMs going there.
fn with_phone(
    a: &LimitsArgs,
    mut settings: UserSettings,
    phone: Option<Msisdn>,
    address: &str,
) -> Result<UserSettings, StoreError> {
    if a.no_phone {
        settings.phone = None;
        settings.offline_delivery = OfflineDelivery::Store;
    }
    if phone.is_some() {
        settings.phone = phone;
    }
    settings.offline_delivery = a.offline.unwrap_or(settings.offline_delivery);
    if a.no_phone && a.offline == Some(OfflineDelivery::Sms) {
        return Err(StoreError::InvalidInput(
            "--offline sms sends IMs to the user's phone: it cannot go with --no-phone".into(),
        ));
    }
    if settings.offline_delivery == OfflineDelivery::Sms && settings.phone.is_none() {
        return Err(StoreError::InvalidInput(format!(
            "{address} has no phone number: give one with --phone for --offline sms"
        )));
    }
    Ok(settings)
}

fn parse_format(s: &str) -> Result<BodyFormat, String> {
    BodyFormat::parse(s).ok_or_else(|| format!("unknown format {s:?}; the formats are plain, cpim"))
}

/// A limit in words: the number, or `no limit` for 0.
fn limit(n: u32) -> String {
    if n == 0 {
        "no limit".to_owned()
    } else {
        n.to_string()
    }
}

/// `smsbridge users limits`: one line per setting, as it is after the change.
fn limits(ctx: &Ctx, a: LimitsArgs) -> Result<(), Failure> {
    let address = UserAddress::parse(&a.address)?;
    let address = address.as_str();
    let unknown = || StoreError::UnknownUser(address.to_owned());
    let phone = a
        .phone
        .as_deref()
        .map(|p| normalise_msisdn(p, ctx.country_code()))
        .transpose()
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    let changes = a.rate.is_some()
        || a.daily.is_some()
        || a.format.is_some()
        || phone.is_some()
        || a.no_phone
        || a.offline.is_some();
    let user: User = if changes {
        ctx.change()?.atomically(|s| {
            let u = s.user_by_address(address)?.ok_or_else(unknown)?;
            let mut settings = with_phone(&a, u.settings.clone(), phone, address)?;
            settings.rate_per_minute = a.rate.unwrap_or(settings.rate_per_minute);
            settings.daily_cap = a.daily.unwrap_or(settings.daily_cap);
            settings.body_format = a.format.unwrap_or(settings.body_format);
            s.update_user_settings(address, &settings)?;
            s.user(u.id)?.ok_or_else(unknown)
        })?
    } else {
        ctx.read()?.user_by_address(address)?.ok_or_else(unknown)?
    };
    let st = &user.settings;
    println!("user:        {}", user.address());
    println!("per minute:  {}", limit(st.rate_per_minute));
    println!("per day:     {}", limit(st.daily_cap));
    println!("body format: {}", st.body_format.as_str());
    println!("phone:       {}", or_dash(st.phone.as_ref()));
    println!("offline IMs: {}", st.offline_delivery.as_str());
    Ok(())
}

/// One line from standard input without its line end.
fn read_password() -> Result<String, Failure> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).map_err(|e| {
        Failure::Other(format!("cannot read the password from standard input: {e}"))
    })?;
    let line = s.lines().next().unwrap_or_default().to_owned();
    if line.is_empty() {
        return Err(Failure::BadInput(
            "no password on standard input".to_owned(),
        ));
    }
    Ok(line)
}

impl UsersCommand {
    pub(super) fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        match self {
            Self::Add(a) => add(ctx, a),
            Self::List { json } => list(ctx, json),
            Self::Remove { address } => {
                ctx.change()?.remove_user(&address, UnixTime::now())?;
                println!("removed user {}", UserAddress::parse(&address)?.as_str());
                Ok(())
            }
            Self::ImpsDigest { address, off, .. } => {
                let password = (!off).then(read_password).transpose()?;
                ctx.change()?
                    .set_imps_digest(&address, password.as_deref())?;
                let a = UserAddress::parse(&address)?;
                if off {
                    println!("IMPS 4-way login off for {}", a.as_str());
                } else {
                    println!("IMPS 4-way login on for {}", a.as_str());
                }
                Ok(())
            }
            Self::Limits(a) => limits(ctx, a),
            Self::PresenceRules(a) => presence_rules(ctx, a),
            Self::Passwd { address, .. } => {
                let password = read_password()?;
                ctx.change()?
                    .set_password(&address, &password, &ctx.config.sip.realm)?;
                println!(
                    "password set for {}",
                    UserAddress::parse(&address)?.as_str()
                );
                Ok(())
            }
        }
    }
}

fn add(ctx: &Ctx, a: AddArgs) -> Result<(), Failure> {
    let address = UserAddress::parse(&a.address)?;
    let password = a.password_stdin.then(read_password).transpose()?;
    let (sip, imps) = match &address {
        UserAddress::Sip(s) => (Some(s.as_str()), None),
        UserAddress::Imps(s) => (None, Some(s.as_str())),
    };
    let settings = UserSettings {
        display_name: a.display,
        may_send_sms: !a.no_sms,
        ..UserSettings::default()
    };
    let mut store = ctx.open()?;
    store.add_user(
        sip,
        imps,
        &settings,
        password.as_deref(),
        &ctx.config.sip.realm,
        UnixTime::now(),
    )?;
    if a.imps_digest {
        store.set_imps_digest(address.as_str(), password.as_deref())?;
    }
    println!("added user {}", address.as_str());
    Ok(())
}

fn list(ctx: &Ctx, as_json: bool) -> Result<(), Failure> {
    let users = ctx.read()?.users()?;
    if as_json {
        let v: Vec<_> = users
            .iter()
            .map(|u| {
                json!({
                    "sip": u.sip_aor, "imps": u.imps_id,
                    "display_name": u.settings.display_name,
                    "may_send_sms": u.settings.may_send_sms,
                    "rate_per_minute": u.settings.rate_per_minute,
                    "daily_cap": u.settings.daily_cap,
                    "anonymous": u.settings.anonymous,
                    "body_format": u.settings.body_format,
                    "phone": u.settings.phone,
                    "offline_delivery": u.settings.offline_delivery,
                    "has_password": u.has_password(),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                or_dash(u.sip_aor.as_ref()),
                or_dash(u.imps_id.as_ref()),
                or_dash(u.settings.display_name.as_ref()),
                yes_no(u.settings.may_send_sms),
                u.settings.rate_per_minute.to_string(),
                u.settings.daily_cap.to_string(),
                or_dash(u.settings.phone.as_ref()),
                u.settings.offline_delivery.as_str().to_owned(),
                yes_no(u.has_password()),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "SIP",
                "IMPS",
                "NAME",
                "SMS",
                "PER MINUTE",
                "PER DAY",
                "PHONE",
                "OFFLINE",
                "PASSWORD"
            ],
            &rows
        )
    );
    Ok(())
}

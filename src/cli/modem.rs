//! `smsbridge modem probe`: start a modem up as the daemon would and say what it is.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use crate::modem::{MemoryWork, ModemConfig, ModemInfo, ModemState, Pool, PortSpec};

/// How to reach one modem from the command line.
#[derive(Debug, Args, Clone)]
pub(super) struct PortArgs {
    /// Serial device (`/dev/ttyUSB2`, `/dev/serial/by-id/…`) or `tcp://host:port`.
    #[arg(long)]
    port: String,
    /// Baud rate of a serial port.
    #[arg(long, default_value_t = crate::modem::DEFAULT_BAUD)]
    baud: u32,
    /// SIM PIN, if the SIM asks for one (a rejected PIN is not tried twice).
    #[arg(long)]
    pin: Option<String>,
    /// How long to wait for the modem to start up.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

impl PortArgs {
    pub(super) fn config(&self) -> Result<ModemConfig, String> {
        let mut port: PortSpec = self.port.parse()?;
        if let PortSpec::Serial { baud, .. } = &mut port {
            *baud = self.baud;
        }
        let mut cfg = ModemConfig::new("modem", port);
        cfg.session.pin = self.pin.clone();
        Ok(cfg)
    }

    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[derive(Debug, Args)]
pub(super) struct ProbeArgs {
    #[command(flatten)]
    port: PortArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// How long a modem that never started up gets to stop: nothing of the
/// command's is in flight on it, so this only bounds the goodbye.
pub(super) const STARTUP_FAILED_STOP: Duration = Duration::from_millis(300);

/// Starts the modem with `work` and waits until it is ready, for `timeout` at
/// most: a failed start-up is retried by the driver within that time, and
/// each new problem is said on stderr as it happens (a probe of a silent or
/// absent modem is not silent for a minute). A problem only a person can fix
/// (SIM PIN) ends the wait at once.
pub(super) async fn start(
    cfg: ModemConfig,
    work: Arc<MemoryWork>,
    timeout: Duration,
) -> Result<(Pool, ModemState), (Pool, String)> {
    let port = cfg.port.to_string();
    let pool = Pool::start(vec![cfg], work);
    let Some(mut watch) = pool.watch(0) else {
        return Err((pool, "no modem".into()));
    };
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut last: Option<String> = None;
    let progress = |what: &str| {
        eprintln!(
            "{port}: {what} ({}s of {}s)",
            started.elapsed().as_secs(),
            timeout.as_secs()
        );
    };
    loop {
        {
            let s = watch.borrow_and_update();
            if s.ready {
                return Ok((pool, s.clone()));
            }
            if s.needs_attention
                && let Some(e) = &s.last_error
            {
                return Err((pool, e.clone()));
            }
            if s.last_error.is_some() && s.last_error != last {
                last.clone_from(&s.last_error);
                progress(&format!(
                    "{}; trying again",
                    s.last_error.as_deref().unwrap_or_default()
                ));
            }
        }
        tokio::select! {
            changed = watch.changed() => if changed.is_err() {
                let why = last.unwrap_or_else(|| "the modem task ended".into());
                return Err((pool, why));
            },
            () = tokio::time::sleep(Duration::from_secs(5)) => progress("still waiting for the modem"),
            () = tokio::time::sleep_until(deadline) => {
                let last = last.map(|e| format!(" (last: {e})")).unwrap_or_default();
                return Err((
                    pool,
                    format!("the modem did not start up within {}{last}", humantime::format_duration(timeout)),
                ));
            }
        }
    }
}

pub(super) fn probe(args: &ProbeArgs) -> ExitCode {
    let cfg = match args.port.config() {
        Ok(c) => c,
        Err(e) => return super::invalid_input(e),
    };
    let Ok(rt) = super::runtime() else {
        return super::failure("cannot start the async runtime");
    };
    rt.block_on(async {
        // Nothing received during a probe is taken, so nothing is deleted.
        let (work, _events) = MemoryWork::accepting(Box::new(|_| false));
        match start(cfg, work, args.port.timeout()).await {
            Ok((pool, state)) => {
                pool.shutdown(Duration::from_secs(10)).await;
                print_info(&state, args.json);
                ExitCode::SUCCESS
            }
            Err((pool, e)) => {
                pool.shutdown(STARTUP_FAILED_STOP).await;
                super::failure(&e)
            }
        }
    })
}

/// TS 27.007 `<stat>` in words.
pub(super) fn reg_name(stat: Option<u8>) -> &'static str {
    match stat {
        None => "unknown",
        Some(0) => "not registered",
        Some(1) => "home",
        Some(2) => "searching",
        Some(3) => "denied",
        Some(5) => "roaming",
        Some(6) => "home (SMS only)",
        Some(7) => "roaming (SMS only)",
        Some(8) => "emergency only",
        Some(9) => "home (CSFB not preferred)",
        Some(10) => "roaming (CSFB not preferred)",
        Some(_) => "unknown",
    }
}

fn info_json(state: &ModemState) -> Value {
    let i: &ModemInfo = &state.info;
    json!({
        "port": state.port,
        "manufacturer": i.manufacturer,
        "model": i.model,
        "revision": i.revision,
        "imei": i.imei,
        "imsi": i.imsi,
        "sim": i.sim,
        "registered": i.registered(),
        "registration": {
            "cs": reg_name(i.creg), "ps": reg_name(i.cgreg), "eps": reg_name(i.cereg)
        },
        "operator": i.operator,
        "signal_dbm": i.signal_dbm,
        "smsc": i.smsc,
        "storage": i.storage.iter().map(|(m, u, t)| json!({"memory": m, "used": u, "total": t})).collect::<Vec<_>>(),
        "cnmi": i.cnmi,
        "receive_mode": i.receive_mode(),
        "quirks": i.quirks,
    })
}

fn print_info(state: &ModemState, as_json: bool) {
    if as_json {
        println!("{}", info_json(state));
        return;
    }
    let i = &state.info;
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let storage = i
        .storage
        .iter()
        .zip(["read", "write", "receive"])
        .map(|((m, u, t), role)| format!("{m} {u}/{t} ({role})"))
        .collect::<Vec<_>>()
        .join(", ");
    for (k, v) in [
        ("port", state.port.clone()),
        ("manufacturer", or(&i.manufacturer)),
        ("model", or(&i.model)),
        ("revision", or(&i.revision)),
        ("IMEI", or(&i.imei)),
        ("IMSI", or(&i.imsi)),
        ("SIM", or(&i.sim)),
        (
            "registration",
            format!(
                "CS {}, PS {}, EPS {}",
                reg_name(i.creg),
                reg_name(i.cgreg),
                reg_name(i.cereg)
            ),
        ),
        ("operator", or(&i.operator)),
        (
            "signal",
            i.signal_dbm
                .map_or("unknown".into(), |d| format!("{d} dBm")),
        ),
        ("SMSC", or(&i.smsc)),
        (
            "storage",
            if storage.is_empty() {
                "-".into()
            } else {
                storage
            },
        ),
        ("receive mode", i.receive_mode()),
        ("quirks", i.quirks.to_owned()),
    ] {
        println!("{k:<13} {v}");
    }
}

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

/// Starts the modem with `work` and waits until it is ready or failed.
pub(super) async fn start(
    cfg: ModemConfig,
    work: Arc<MemoryWork>,
    timeout: Duration,
) -> Result<(Pool, ModemState), (Pool, String)> {
    let pool = Pool::start(vec![cfg], work);
    let Some(mut watch) = pool.watch(0) else {
        return Err((pool, "no modem".into()));
    };
    let result = tokio::time::timeout(timeout, async {
        loop {
            {
                let s = watch.borrow_and_update();
                if s.ready {
                    return Ok(s.clone());
                }
                if let Some(e) = &s.last_error {
                    return Err(e.clone());
                }
            }
            if watch.changed().await.is_err() {
                return Err("modem task ended".to_owned());
            }
        }
    })
    .await;
    match result {
        Ok(Ok(state)) => Ok((pool, state)),
        Ok(Err(e)) => Err((pool, e)),
        Err(_) => Err((
            pool,
            format!("the modem did not start up within {timeout:?}"),
        )),
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
                pool.shutdown(Duration::from_secs(10)).await;
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

//! `smsbridge modem sim|sim-inject|sim-fault|sim-sent`: run the simulated modem
//! on a PTY or TCP port, and talk to a running one through its control socket.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::sim::{
    ControlRequest, Fault, Listen, Model, PartOrder, PhoneBehaviour, Registration, ServeOptions,
    SimConfig, SimQuirk, StorageSizes, control_path, send_control, serve,
};

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

fn phone(s: &str) -> Result<(String, PhoneBehaviour), String> {
    let (number, behaviour) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NUMBER=echo|silent|unreachable|no-report"))?;
    Ok((number.trim().to_string(), behaviour.parse()?))
}

fn unread(s: &str) -> Result<(String, String), String> {
    let (from, text) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not FROM:TEXT"))?;
    Ok((from.trim().to_string(), text.to_string()))
}

fn tcp(s: &str) -> Result<SocketAddr, String> {
    let addr = s.strip_prefix("tcp://").unwrap_or(s);
    addr.parse()
        .map_err(|e| format!("{s:?} is not tcp://HOST:PORT: {e}"))
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("port").required(true).args(["link", "listen"])))]
pub(super) struct SimArgs {
    /// Create a PTY and make PATH a symlink to it (removed on exit).
    #[arg(long, value_name = "PATH")]
    link: Option<PathBuf>,
    /// Serve over TCP instead, one client at a time: tcp://127.0.0.1:PORT.
    #[arg(long, value_name = "tcp://HOST:PORT", value_parser = tcp)]
    listen: Option<SocketAddr>,
    /// Modem model to imitate: generic, huawei-e3372, sim800, ec25, sim7600, wavecom.
    #[arg(long, default_value = "generic")]
    model: Model,
    /// SIM PIN (the SIM asks for it at start).
    #[arg(long)]
    pin: Option<String>,
    /// IMSI (AT+CIMI).
    #[arg(long)]
    imsi: Option<String>,
    /// IMEI (AT+CGSN).
    #[arg(long)]
    imei: Option<String>,
    /// The modem's own number (AT+CNUM).
    #[arg(long)]
    own_number: Option<String>,
    /// Service centre number (AT+CSCA?).
    #[arg(long)]
    smsc: Option<String>,
    /// Registration: home, roaming, searching, denied, none, lte-only.
    #[arg(long, default_value = "home")]
    registration: Registration,
    /// Time between Ctrl-Z and +CMGS, e.g. 3s.
    #[arg(long, value_parser = duration, default_value = "0s")]
    send_delay: Duration,
    /// Time between a send and its status report.
    #[arg(long, value_parser = duration, default_value = "0s")]
    report_delay: Duration,
    /// Time before an echoing phone replies.
    #[arg(long, value_parser = duration, default_value = "0s")]
    reply_delay: Duration,
    /// How long a reboot keeps the port quiet before RDY.
    #[arg(long, value_parser = duration, default_value = "2s")]
    reboot_delay: Duration,
    /// How long a routed +CMT/+CDS waits for AT+CNMA (with AT+CSMS=1).
    #[arg(long, value_parser = duration, default_value = "30s")]
    ack_timeout: Duration,
    /// Interval of the model's unsolicited noise (0s turns it off).
    #[arg(long, value_parser = duration)]
    noise_interval: Option<Duration>,
    /// A phone's behaviour: NUMBER=echo|silent|unreachable|no-report (repeatable).
    #[arg(long, value_parser = phone, value_name = "NUMBER=BEHAVIOUR")]
    phone: Vec<(String, PhoneBehaviour)>,
    /// Behaviour of every other number.
    #[arg(long, default_value = "echo")]
    default_phone: PhoneBehaviour,
    /// Echo reply text; {text} is the received text.
    #[arg(long, default_value = "{text}")]
    reply_template: String,
    /// Fail sends with +CMS ERROR with probability P (code default 500): P[:CODE].
    #[arg(long, value_name = "P[:CODE]")]
    cms_error_rate: Option<String>,
    /// Stop answering after N command lines, until the port is closed and reopened.
    #[arg(long, value_name = "N")]
    hang_after: Option<u32>,
    /// Reboot spontaneously after N command lines.
    #[arg(long, value_name = "N")]
    reboot_after: Option<u32>,
    /// Capacity of the SM and ME memories (SR: half of it, at least 1).
    #[arg(long, value_name = "N")]
    storage: Option<usize>,
    /// Start with the receive memory full.
    #[arg(long)]
    storage_full: bool,
    /// Make the port vanish after N command lines (with --vanish-for).
    #[arg(long, value_name = "N", requires = "vanish_for")]
    vanish_after: Option<u32>,
    /// How long the port stays away.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    vanish_for: Option<Duration>,
    /// Behaviours of real modems on top of the model (repeatable, or comma
    /// separated): banners-around-answers, prompt-until-esc, receive-me-only,
    /// slots-from-one, broken-report-zone, keep-routing-on-missed-ack.
    #[arg(long, value_name = "QUIRK", value_delimiter = ',')]
    quirk: Vec<SimQuirk>,
    /// An unread SMS waiting on the SIM ("SM") at power-up: FROM:TEXT (repeatable).
    #[arg(long, value_parser = unread, value_name = "FROM:TEXT")]
    unread_on_sim: Vec<(String, String)>,
    /// Append every exchange, with time stamps, to FILE.
    #[arg(long, value_name = "FILE")]
    transcript: Option<PathBuf>,
    /// Seed of the fault and shuffle PRNG.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Control socket (default: <link>.ctl; none for --listen unless given).
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
}

impl SimArgs {
    fn config(&self) -> Result<SimConfig, String> {
        let mut c = SimConfig {
            model: self.model,
            pin: self.pin.clone(),
            registration: self.registration,
            send_delay: self.send_delay,
            report_delay: self.report_delay,
            reply_delay: self.reply_delay,
            reboot_delay: self.reboot_delay,
            ack_timeout: self.ack_timeout,
            noise_interval: self.noise_interval,
            phones: self.phone.iter().cloned().collect::<BTreeMap<_, _>>(),
            default_phone: self.default_phone,
            reply_template: self.reply_template.clone(),
            seed: self.seed,
            quirks: self.quirk.clone(),
            unread_on_sim: self.unread_on_sim.clone(),
            ..SimConfig::default()
        };
        for (field, value) in [
            (&mut c.imsi, &self.imsi),
            (&mut c.imei, &self.imei),
            (&mut c.own_number, &self.own_number),
            (&mut c.smsc, &self.smsc),
        ] {
            if let Some(v) = value {
                field.clone_from(v);
            }
        }
        if let Some(n) = self.storage {
            c.storage = StorageSizes {
                sm: n,
                me: n,
                sr: (n / 2).max(1),
            };
        }
        if let Some(rate) = &self.cms_error_rate {
            let (probability, code) = crate::sim::parse_rate(rate)?;
            c.faults.push(Fault::CmsErrorRate { probability, code });
        }
        if let Some(n) = self.hang_after {
            c.faults.push(Fault::HangAfter(n));
        }
        if let Some(n) = self.reboot_after {
            c.faults.push(Fault::RebootAfter(n));
        }
        if self.storage_full {
            c.faults.push(Fault::StorageFull);
        }
        if let (Some(commands), Some(duration)) = (self.vanish_after, self.vanish_for) {
            c.faults.push(Fault::VanishAfter { commands, duration });
        }
        Ok(c)
    }

    pub(super) fn run(self) -> ExitCode {
        let config = match self.config() {
            Ok(c) => c,
            Err(e) => return super::invalid_input(e),
        };
        let (listen, control) = match (&self.link, self.listen) {
            (Some(link), _) => (
                Listen::Pty(link.clone()),
                Some(self.control.clone().unwrap_or_else(|| control_path(link))),
            ),
            (None, Some(addr)) => (Listen::Tcp(addr), self.control.clone()),
            (None, None) => return super::invalid_input("--link or --listen is required"),
        };
        init_tracing();
        let opts = ServeOptions {
            config,
            listen,
            control,
            transcript: self.transcript.clone(),
        };
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("smsbridge: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        match rt.block_on(serve(opts, shutdown_signal())) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("smsbridge: simulated modem: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Which running simulator to talk to.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["link", "control"])))]
pub(super) struct Target {
    /// The simulator's --link (its control socket is <PATH>.ctl).
    #[arg(long, value_name = "PATH")]
    link: Option<PathBuf>,
    /// The control socket itself.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
}

impl Target {
    fn path(&self) -> PathBuf {
        match (&self.control, &self.link) {
            (Some(c), _) => c.clone(),
            (None, Some(l)) => control_path(l),
            (None, None) => PathBuf::new(),
        }
    }

    fn ask(&self, req: &ControlRequest) -> Result<crate::sim::ControlResponse, ExitCode> {
        let path = self.path();
        match send_control(&path, req) {
            Ok(r) if r.ok => Ok(r),
            Ok(r) => Err(super::invalid_input(
                r.error.unwrap_or_else(|| "refused".into()),
            )),
            Err(e) => {
                eprintln!("smsbridge: no simulator answers on {}: {e}", path.display());
                Err(ExitCode::FAILURE)
            }
        }
    }
}

#[derive(Debug, Args)]
pub(super) struct InjectArgs {
    #[command(flatten)]
    target: Target,
    /// The sending phone's number (or an alphanumeric name).
    #[arg(long)]
    from: String,
    /// Order of the parts: in-order, reverse, shuffled.
    #[arg(long, default_value = "in-order")]
    order: PartOrder,
    /// The text.
    text: String,
}

impl InjectArgs {
    pub(super) fn run(self) -> ExitCode {
        let order = match self.order {
            PartOrder::InOrder => "in-order",
            PartOrder::Reverse => "reverse",
            PartOrder::Shuffled => "shuffled",
        };
        let req = ControlRequest::Inject {
            from: self.from,
            text: self.text,
            order: Some(order.into()),
        };
        match self.target.ask(&req) {
            Ok(r) => {
                println!("injected {} part(s)", r.parts.unwrap_or(0));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        }
    }
}

#[derive(Debug, Args)]
pub(super) struct FaultArgs {
    #[command(flatten)]
    target: Target,
    /// cms-error-rate P[:CODE] | hang-after N | reboot | reboot-after N |
    /// storage-full | vanish-after N DURATION | clear
    #[arg(required = true, num_args = 1..)]
    fault: Vec<String>,
}

impl FaultArgs {
    pub(super) fn run(self) -> ExitCode {
        let fault = self.fault.join(" ");
        if let Err(e) = fault.parse::<Fault>() {
            return super::invalid_input(e);
        }
        match self.target.ask(&ControlRequest::Fault { fault }) {
            Ok(_) => ExitCode::SUCCESS,
            Err(code) => code,
        }
    }
}

#[derive(Debug, Args)]
pub(super) struct SentArgs {
    #[command(flatten)]
    target: Target,
}

impl SentArgs {
    /// One JSON object per accepted SMS-SUBMIT.
    pub(super) fn run(self) -> ExitCode {
        match self.target.ask(&ControlRequest::Sent) {
            Ok(r) => {
                for s in r.sent.unwrap_or_default() {
                    if let Ok(line) = serde_json::to_string(&s) {
                        println!("{line}");
                    }
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        }
    }
}

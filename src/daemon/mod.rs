//! `smsbridge run`: the store, the modem pool, the bridge, the SIP front end and
//! the status endpoint in one process, with systemd readiness and watchdog and a
//! graceful shutdown. With no modem configured it is the demo: the simulated
//! modem in process, and on an empty database a demo user and an echoing phone.

pub mod http;
mod status;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::bridge::{self, Bridge, Shared, StoreWork};
use crate::config::Config;
use crate::imps::{self, ImpsFrontEnd, ImpsHttp};
use crate::metrics::Metrics;
use crate::modem::{ModemConfig, ModemState, Pool, PortSpec};
use crate::sim::{SimConfig, SimPort};
use crate::sip::SipFrontEnd;
use crate::store::{
    FrontEnd, NewContact, Store, StoreError, UnixTime, UserSettings, normalise_msisdn,
};

pub use status::{ModemStatus, Status};

/// The demo's simulated phone: it answers every SMS with the same text.
pub const DEMO_PHONE: &str = "+15550100";
/// The demo user's password (the demo listens on loopback only).
pub const DEMO_PASSWORD: &str = "demo";

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The database (an unusable one names its path itself).
    #[error("{}", if source.is_unusable() { source.to_string() } else { format!("database {path}: {source}") })]
    Store {
        /// The file.
        path: String,
        /// What went wrong.
        source: StoreError,
    },
    /// A modem's port setting.
    #[error("modem {name}: {why}")]
    Modem {
        /// Which modem.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// The SIP front end could not start (a bad address in `[sip]`, or the
    /// stack refused).
    #[error("SIP: {0}")]
    Sip(String),
    /// A configured listener could not bind (the port is taken, the address
    /// is not ours, no permission).
    #[error("cannot listen: {listener}: {source}")]
    Listen {
        /// Which listener and where: `IMPS on 127.0.0.1:8080`.
        listener: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl DaemonError {
    /// The exit status: 2 when the configuration asks for something that
    /// cannot be (a listener that cannot bind, a bad modem or SIP setting), 1
    /// when the database failed.
    pub fn exit_status(&self) -> u8 {
        match self {
            Self::Store { source, .. } if !source.is_bad_input() => 1,
            _ => 2,
        }
    }
}

/// The modems of the configuration, or the demo's simulated one.
fn modem_configs(config: &Config) -> Result<Vec<ModemConfig>, DaemonError> {
    if config.modem.is_empty() {
        let sim = SimConfig {
            send_delay: Duration::from_secs(2),
            report_delay: Duration::from_secs(2),
            reply_delay: Duration::from_secs(3),
            ..SimConfig::default()
        };
        let port = PortSpec::Sim(SimPort::new("demo", sim, false));
        return Ok(vec![ModemConfig::new("demo", port)]);
    }
    config
        .modem
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let name = m.name.clone().unwrap_or_else(|| format!("modem{i}"));
            let mut port: PortSpec = m.port.parse().map_err(|why| DaemonError::Modem {
                name: name.clone(),
                why,
            })?;
            if let PortSpec::Serial { baud, .. } = &mut port {
                *baud = m.baud;
            }
            let mut cfg = ModemConfig::new(name, port);
            cfg.session.pin = m.pin.clone();
            cfg.session.smsc = m.smsc.clone();
            Ok(cfg)
        })
        .collect()
}

/// On an empty database in demo mode: a user and a contact for the echoing phone.
fn seed_demo(store: &mut Store, config: &Config) -> Result<Option<String>, StoreError> {
    if !store.users()?.is_empty() {
        return Ok(None);
    }
    let aor = format!("sip:demo@{}", config.sip.domain);
    let now = UnixTime::now();
    let settings = UserSettings {
        display_name: Some("Demo".into()),
        ..UserSettings::default()
    };
    store.add_user(
        Some(&aor),
        None,
        &settings,
        Some(DEMO_PASSWORD),
        &config.sip.realm,
        now,
    )?;
    let msisdn = normalise_msisdn(DEMO_PHONE, None)?;
    store.add_contact(
        &NewContact {
            user: aor.clone(),
            msisdn,
            nickname: Some("Echo phone".into()),
            alias: Some("echo".into()),
            list_name: None,
        },
        now,
    )?;
    Ok(Some(aor))
}

fn notify(state: &[sd_notify::NotifyState<'_>]) {
    // Outside systemd NOTIFY_SOCKET is unset and this does nothing.
    let _ = sd_notify::notify(state);
}

/// Makes glibc give large blocks back to the system when they are freed. Its
/// default raises the mmap threshold to the largest block freed so far, so the
/// 19 MiB an argon2 password check takes stays in the heap of whichever thread
/// ran it, once per thread: a Login flood left hundreds of MB resident. Blocks
/// of 1 MiB and more are mapped and unmapped instead.
fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets an allocator tunable; it is called once,
        // before the daemon's threads allocate anything large.
        let ok = unsafe { nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 1 << 20) };
        if ok != 1 {
            tracing::debug!("mallopt(M_MMAP_THRESHOLD) was refused");
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
///
/// Start-up is ordered so that a configuration that cannot work fails before
/// anything runs: the modem settings are checked and the database opened,
/// then every listener is bound (status, IMPS, SIP); only then do the modems
/// and the delivery loop start. A listener that cannot bind is one error line
/// naming it, and nothing else has to be stopped.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    return_large_blocks();
    let demo = config.modem.is_empty();
    let modems = modem_configs(&config)?;
    preflight_listeners(&config)?;
    let db_path = config.database.path.clone();
    let db_name = db_path.display().to_string();
    let cfg = config.clone();
    let (store, seeded) = tokio::task::spawn_blocking(move || {
        let mut store = Store::open(&db_path)?;
        store.set_default_country_code(cfg.numbers.default_country_code.clone());
        let seeded = if demo {
            seed_demo(&mut store, &cfg)?
        } else {
            None
        };
        Ok::<_, StoreError>((store, seeded))
    })
    .await
    .map_err(|e| DaemonError::Store {
        path: db_name.clone(),
        source: StoreError::Unavailable {
            detail: e.to_string(),
        },
    })?
    .map_err(|source| DaemonError::Store {
        path: db_name.clone(),
        source,
    })?;

    let watches: Arc<OnceLock<Vec<watch::Receiver<ModemState>>>> = Arc::new(OnceLock::new());
    let w = Arc::clone(&watches);
    let modems_ready: bridge::ModemsReady = Arc::new(move || {
        w.get().is_some_and(|v| {
            v.iter().any(|s| {
                let s = s.borrow();
                s.ready && s.info.registered()
            })
        })
    });
    let shared = Shared::new(store, &config, modems_ready);
    // The domain set (src/domains.rs) is built from the configuration as
    // the bridge starts; said once, since a wildcard listener adds every
    // interface address.
    tracing::info!(
        domains = %shared.domains.names().join(", "),
        addresses = %shared
            .domains
            .addresses()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        "local domains: other hosts are other domains"
    );
    let metrics = Arc::clone(&shared.metrics);
    let bridge = Bridge::new(Arc::clone(&shared));

    let status_listener = bind_status(&config).await?;
    // The front ends stop last: while the modems finish, new requests get a 503.
    let front_stop = CancellationToken::new();
    let (imps, sip) = match start_front_ends(&config, &shared, bridge, &front_stop).await {
        Ok(started) => started,
        Err(e) => {
            front_stop.cancel();
            return Err(e);
        }
    };

    let shutdown = CancellationToken::new();
    let work = StoreWork::new(Arc::clone(&shared));
    let w = Arc::clone(&watches);
    work.set_modem_names(Arc::new(move |imsi: &str| {
        w.get()?.iter().find_map(|s| {
            let s = s.borrow();
            (s.info.imsi.as_deref() == Some(imsi)).then(|| s.name.clone())
        })
    }));
    let pool = Pool::start(modems, work);
    let _ = watches.set((0..pool.len()).filter_map(|i| pool.watch(i)).collect());
    let inbound = tokio::spawn(bridge::run_inbound(
        Arc::clone(&shared),
        shutdown.child_token(),
    ));
    let status_addr = status_listener
        .map(|l| serve_status(l, &metrics, &config, &shared, &pool, &sip, &shutdown))
        .transpose()?;

    let sip_listeners: Vec<String> = sip
        .listeners()
        .iter()
        .map(|(transport, a)| format!("{a} ({transport})"))
        .collect();
    tracing::info!(
        sip = %sip_listeners.join(", "),
        imps = %imps.as_ref().map(|i| i.local.to_string()).unwrap_or_else(|| "off".into()),
        status = %status_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        database = %config.database.path.display(),
        "smsbridge running"
    );
    if demo {
        // The banner tells you to send a message now: say it once the
        // simulated modem can take one.
        if let Some(mut w) = pool.watch(0) {
            let ready = w.wait_for(|s| s.ready && s.info.registered());
            let _ = tokio::time::timeout(Duration::from_secs(30), ready).await;
        }
        let imps_addr = imps.as_ref().map(|i| i.local);
        print_demo(&config, &sip.listeners(), imps_addr, seeded.as_deref());
    }
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("running"),
    ]);
    let watchdog = spawn_watchdog(&pool, shutdown.child_token());

    wait_for_signal().await;
    tracing::info!("shutting down: new requests get 503, exchanges in progress finish");
    notify(&[sd_notify::NotifyState::Stopping]);
    sip.set_draining(true);
    if let Some(i) = &imps {
        i.set_draining(true);
    }
    shutdown.cancel();
    pool.shutdown(Duration::from_secs(8)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), inbound).await;
    front_stop.cancel();
    if let Some(w) = watchdog {
        w.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Binds every configured listener once and lets go of it, before the
/// database is opened: a start that cannot listen fails before it creates or
/// migrates anything. (The real binds follow; one that loses a race for its
/// port in between fails the same way, only later.)
fn preflight_listeners(config: &Config) -> Result<(), DaemonError> {
    let taken = |listener: String| move |source| DaemonError::Listen { listener, source };
    if !config.status.listen.is_empty() {
        let a = &config.status.listen;
        std::net::TcpListener::bind(a).map_err(taken(format!("status on {a}")))?;
    }
    if !config.imps.listen.is_empty() {
        let a = &config.imps.listen;
        std::net::TcpListener::bind(a).map_err(taken(format!("IMPS on {a}")))?;
    }
    // Addresses the SIP front end cannot parse are its own error, later.
    let parsed = |list: &[String]| -> Vec<SocketAddr> {
        list.iter().filter_map(|a| a.parse().ok()).collect()
    };
    for a in parsed(&config.sip.udp) {
        std::net::UdpSocket::bind(a).map_err(taken(format!("SIP UDP on {a}")))?;
    }
    for a in parsed(&config.sip.tcp) {
        std::net::TcpListener::bind(a).map_err(taken(format!("SIP TCP on {a}")))?;
    }
    if config.msrp.enabled {
        let a = &config.msrp.listen;
        std::net::TcpListener::bind(a).map_err(taken(format!("MSRP on {a}")))?;
    }
    Ok(())
}

/// Starts IMPS (unless `[imps] listen` is empty) and SIP, in that order; if
/// SIP cannot start, the caller cancels `stop` and IMPS goes away with it.
async fn start_front_ends(
    config: &Config,
    shared: &Arc<Shared>,
    bridge: Arc<Bridge>,
    stop: &CancellationToken,
) -> Result<(Option<ImpsHttp>, SipFrontEnd), DaemonError> {
    let imps = start_imps(config, shared, &bridge, stop).await?;
    let sip = SipFrontEnd::start(&config.sip, bridge, stop.child_token())
        .await
        .map_err(|e| match e {
            crate::sip::SipError::Bind {
                transport,
                addr,
                source,
            } => DaemonError::Listen {
                listener: format!("SIP {transport} on {addr}"),
                source,
            },
            other => DaemonError::Sip(other.to_string()),
        })?;
    if config.msrp.enabled {
        let a = &config.msrp.listen;
        let taken = |source| DaemonError::Listen {
            listener: format!("MSRP on {a}"),
            source,
        };
        let listener = tokio::net::TcpListener::bind(a).await.map_err(taken)?;
        sip.start_msrp(&config.msrp, listener, stop.child_token())
            .map_err(taken)?;
    }
    sip.set_federation(&config.federation);
    shared.set_front_end(FrontEnd::Sip, Arc::new(sip.clone()));
    Ok((imps, sip))
}

/// The IMPS front end on `[imps] listen`, unless that is empty.
async fn start_imps(
    config: &Config,
    shared: &Arc<Shared>,
    bridge: &Arc<Bridge>,
    shutdown: &CancellationToken,
) -> Result<Option<ImpsHttp>, DaemonError> {
    let c = &config.imps;
    if c.listen.is_empty() {
        return Ok(None);
    }
    let domain = if c.domain.is_empty() {
        config.sip.domain.clone()
    } else {
        c.domain.clone()
    };
    let mut cfg = imps::ServerConfig {
        domain,
        limits: imps::session::Limits {
            keep_alive: c.keep_alive,
            min_keep_alive: c.min_keep_alive,
            max_keep_alive: c.max_keep_alive,
            max_sessions: c.max_sessions,
            max_sessions_per_user: c.max_sessions_per_user,
            bind_to_address: c.bind_sessions_to_address,
            ..imps::session::Limits::default()
        },
        poll_min: c.poll_min,
        cir_tcp: None,
    };
    let cir = bind_cir(c).await?;
    cfg.cir_tcp = cir.as_ref().and_then(|l| l.local_addr().ok());
    let api: Arc<dyn crate::bridge::api::ImApi> = Arc::clone(bridge) as _;
    let server = imps::Server::new(cfg, api, Arc::new(imps::random_token));
    if let Some(listener) = cir {
        let limits = imps::cir::CirLimits {
            max_connections: c.cir_tcp_max_connections,
            max_per_address: c.cir_tcp_max_connections_per_address,
            helo_timeout: c.header_timeout,
        };
        tokio::spawn(imps::cir::serve_tcp(
            listener,
            Arc::clone(&server),
            limits,
            shutdown.child_token(),
        ));
    }
    server.set_max_in_flight(c.max_in_flight);
    let limits = http::HttpLimits {
        max_connections: c.max_connections,
        max_per_address: c.max_connections_per_address,
        header_timeout: c.header_timeout,
    };
    let xcap = config.xcap.enabled.then(|| {
        crate::xcap::Xcap::new(
            crate::xcap::XcapSettings {
                realm: config.sip.realm.clone(),
                domain: config.sip.domain.clone(),
                max_document: config.xcap.max_document,
                nonce_ttl: config.xcap.nonce_ttl,
            },
            Arc::clone(bridge) as _,
        )
    });
    let http = imps::serve(
        &c.listen,
        Arc::clone(&server),
        limits,
        c.body_timeout,
        xcap,
        shutdown.child_token(),
    )
    .await
    .map_err(|source| DaemonError::Listen {
        listener: format!("IMPS on {}", c.listen),
        source,
    })?;
    shared.set_front_end(FrontEnd::Imps, Arc::new(ImpsFrontEnd(server)));
    Ok(Some(http))
}

/// Binds `[imps] cir_tcp_listen`, unless that is empty.
async fn bind_cir(c: &crate::config::Imps) -> Result<Option<tokio::net::TcpListener>, DaemonError> {
    if c.cir_tcp_listen.is_empty() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(&c.cir_tcp_listen)
        .await
        .map_err(|source| DaemonError::Listen {
            listener: format!("IMPS CIR on {}", c.cir_tcp_listen),
            source,
        })?;
    Ok(Some(listener))
}

/// Binds `[status] listen`, unless that is empty.
async fn bind_status(config: &Config) -> Result<Option<tokio::net::TcpListener>, DaemonError> {
    let addr = &config.status.listen;
    if addr.is_empty() {
        return Ok(None);
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|source| DaemonError::Listen {
            listener: format!("status on {addr}"),
            source,
        })
}

fn serve_status(
    listener: tokio::net::TcpListener,
    metrics: &Arc<Metrics>,
    config: &Config,
    shared: &Arc<Shared>,
    pool: &Pool,
    sip: &SipFrontEnd,
    shutdown: &CancellationToken,
) -> Result<SocketAddr, DaemonError> {
    let local = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen {
            listener: format!("status on {}", config.status.listen),
            source,
        })?;
    let states: Vec<watch::Receiver<ModemState>> =
        (0..pool.len()).filter_map(|i| pool.watch(i)).collect();
    let sip = sip.clone();
    let src = Arc::new(status::StatusSource {
        shared: Arc::clone(shared),
        modems: Arc::new(move || states.iter().map(|s| s.borrow().clone()).collect()),
        registrations: Arc::new(move || sip.registrations().iter().map(|(_, c)| c.len()).sum()),
        started: UnixTime::now(),
        token: config.status.token.clone(),
        metrics: Arc::clone(metrics),
    });
    let app = status::router(src);
    // A scrape or `smsbridge status` now and then: few connections, short
    // deadlines.
    let limits = http::HttpLimits {
        max_connections: 32,
        max_per_address: 8,
        header_timeout: Duration::from_secs(5),
    };
    tokio::spawn(http::serve(
        "status",
        listener,
        app,
        limits,
        shutdown.child_token(),
    ));
    Ok(local)
}

/// Pings the systemd watchdog while every modem task is alive.
fn spawn_watchdog(pool: &Pool, stop: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled().filter(|d| !d.is_zero())?;
    let period = interval / 2;
    let alive = pool.liveness();
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = stop.cancelled() => return,
            }
            if alive() {
                notify(&[sd_notify::NotifyState::Watchdog]);
            } else {
                tracing::error!("a modem task died; no longer pinging the watchdog");
            }
        }
    }))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn print_demo(
    config: &Config,
    sip: &[(&'static str, SocketAddr)],
    imps: Option<SocketAddr>,
    seeded: Option<&str>,
) {
    let domain = &config.sip.domain;
    println!(
        "smsbridge demo: a simulated modem with a phone at {DEMO_PHONE} that echoes every SMS"
    );
    println!("  database: {}", config.database.path.display());
    for (transport, addr) in sip {
        println!("  SIP {transport}:  {addr}");
    }
    if let Some(addr) = imps {
        println!("  IMPS:     http://{addr}/ (CSP 1.3, XML)");
    }
    let listen = sip
        .first()
        .map_or_else(|| "127.0.0.1:5060".to_owned(), |(_, a)| a.to_string());
    match seeded {
        Some(aor) => {
            println!(
                "  created user {aor} (password {DEMO_PASSWORD:?}) and the contact \"Echo phone\""
            );
            println!("Point a softphone (baresip, Linphone, Zoiper) at {listen}, register as");
            println!("{aor} with password {DEMO_PASSWORD:?}, and send a message to");
        }
        None => {
            println!("  the database already has users, so no demo user was created");
            println!("Point a softphone (baresip, Linphone, Zoiper) at {listen}, register as");
            println!(
                "one of the users in the database (smsbridge users list), and send a message to"
            );
        }
    }
    println!(
        "sip:{DEMO_PHONE}@{domain} (or sip:echo@{domain}): the reply comes back as a message."
    );
    println!("Stop with Ctrl-C.");
}

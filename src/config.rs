//! The configuration file: TOML with a default for every key, so that no file
//! at all is a valid configuration. Unknown keys are errors (a typo must not be
//! silently ignored), and every error names its line and column.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[database]`.
    pub database: Database,
    /// `[numbers]`.
    pub numbers: Numbers,
    /// `[sip]`.
    pub sip: Sip,
}

/// `[database]`: where the SQLite file is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// The SQLite file (default `./smsbridge.db`).
    pub path: PathBuf,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./smsbridge.db"),
        }
    }
}

/// `[numbers]`: how telephone numbers are read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Numbers {
    /// Country code for national numbers (`0…`), e.g. `"49"`. None: national
    /// numbers are refused.
    pub default_country_code: Option<String>,
}

/// `[sip]`: the SIP front end.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sip {
    /// The digest authentication realm (default `smsbridge`). Passwords are stored
    /// as HA1 for this realm: changing it needs every password set again.
    pub realm: String,
    /// The domain of subscriber addresses (`sip:+<E.164>@<domain>`), used in the
    /// From of SMS delivered as MESSAGE (default `localhost`).
    pub domain: String,
    /// UDP listen addresses (default `127.0.0.1:5060`).
    pub udp: Vec<String>,
    /// TCP listen addresses (default `127.0.0.1:5060`).
    pub tcp: Vec<String>,
    /// Peers (IP addresses) whose requests carry identities they authenticated
    /// themselves, e.g. the operator's Kamailio: no digest challenge for them.
    pub trusted_peers: Vec<String>,
    /// An upstream SIP server: SMS for users without a local registration are sent
    /// there, and the bridge can register with it as a client.
    pub upstream: Option<Upstream>,
    /// RFC 3261 timer T1 in milliseconds (default 500). Requests we send are
    /// retransmitted from T1 on (UDP) and time out after 64·T1 (Timer F,
    /// 32 s by default); tests make it short.
    pub t1_ms: u64,
}

impl Default for Sip {
    fn default() -> Self {
        Self {
            realm: "smsbridge".into(),
            domain: "localhost".into(),
            udp: vec!["127.0.0.1:5060".into()],
            tcp: vec!["127.0.0.1:5060".into()],
            trusted_peers: Vec::new(),
            upstream: None,
            t1_ms: 500,
        }
    }
}

/// `[sip.upstream]`: the SIP server users are registered with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Where to send requests: `sip:host:port;transport=udp|tcp`.
    pub proxy: String,
    /// Register with it as this address of record (omit to not register).
    pub register_as: Option<String>,
    /// Digest user name for the registration (default: the AOR's user part).
    pub username: Option<String>,
    /// Digest password for the registration.
    pub password: Option<String>,
    /// Registration lifetime in seconds (default 600).
    #[serde(default = "default_register_expires")]
    pub expires: u32,
}

fn default_register_expires() -> u32 {
    600
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a wrong key or value.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start).min(text.len());
            let before = text.get(..at).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("smsbridge.toml"))
    }

    #[test]
    fn nothing_is_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.database.path, PathBuf::from("./smsbridge.db"));
        assert_eq!(c.numbers.default_country_code, None);
        assert_eq!(c.sip.realm, "smsbridge");
    }

    #[test]
    fn keys_override_their_defaults_only() {
        let c = parse("[numbers]\ndefault_country_code = \"49\"\n").unwrap();
        assert_eq!(c.numbers.default_country_code.as_deref(), Some("49"));
        assert_eq!(c.sip.realm, "smsbridge");
        let c = parse("[database]\npath = \"/var/lib/smsbridge/db\"\n[sip]\nrealm = \"lab\"\n")
            .unwrap();
        assert_eq!(c.database.path, PathBuf::from("/var/lib/smsbridge/db"));
        assert_eq!(c.sip.realm, "lab");
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse("[database]\npath = \"x\"\n[numbers]\n  default_cc = \"49\"\n").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("smsbridge.toml:4:3: unknown field `default_cc`"),
            "{s}"
        );
        let e = parse("[sip]\nrealm = 5\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("smsbridge.toml:2:9: invalid type"),
            "{e}"
        );
        let e = parse("[sip\n").unwrap_err();
        assert!(e.to_string().starts_with("smsbridge.toml:1:"), "{e}");
    }
}

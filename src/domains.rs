//! Which addresses are ours: the domains the bridge is authoritative for and
//! the IP addresses it listens on (a softphone may put either in a URI, as
//! Kamailio's `myself` counts both), and what every address form that comes
//! in names: a user of ours, an SMS-only subscriber, or a user of another
//! domain (DESIGN.md rule 9). Pure, except [`Domains::from_config`], which
//! reads the host's interface addresses for a wildcard listener.

use std::net::IpAddr;

use crate::config::Config;

/// The local domains and addresses, and the servers of other domains whose
/// requests are accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Domains {
    /// Our domain names, normalised ([`normalise_host`]).
    names: Vec<String>,
    /// The addresses we listen on (a wildcard expanded to the interfaces').
    addresses: Vec<IpAddr>,
    /// `[[federation.domain]]`: a domain's name and the addresses its
    /// requests may come from.
    peers: Vec<(String, Vec<IpAddr>)>,
    /// `[sip] trusted_peers`: they may assert any identity, ours or not.
    trusted: Vec<IpAddr>,
}

/// What an address names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// A user of ours, by user part (`alice`).
    Local(String),
    /// An SMS-only subscriber: a `tel:` number, or a `+E.164` or digit user
    /// part at one of our domains, visual separators removed (`+15550200`,
    /// `01715550001`; normalising is the bridge's).
    Subscriber(String),
    /// A user of another domain.
    Foreign {
        /// `sip:user@domain`, where requests for them are routed.
        uri: String,
        /// Their domain, normalised.
        domain: String,
    },
}

/// Why an address names nobody.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not a `sip:`, `sips:`, `tel:` or `wv:` address.
    #[error("{0} is not a sip:, sips:, tel: or wv: address")]
    Scheme(String),
    /// No user part (`sip:example.com`), or an empty one.
    #[error("{0} names no user")]
    NoUser(String),
    /// A `tel:` URI or a `+` user part that is not a telephone number.
    #[error("{0} is not a telephone number")]
    NotANumber(String),
}

/// A host as compared: lower-case, no trailing dot, no port, an IPv6
/// address without its brackets.
pub fn normalise_host(host: &str) -> String {
    let h = host.trim();
    let h = match h.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None if h.parse::<IpAddr>().is_ok() => h,
        None => match h.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => h,
        },
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// An IP address as compared: an IPv4-mapped IPv6 address is the IPv4 one.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A user part with the visual separators of a telephone number removed, if
/// it is one: `+` and digits, or digits only.
fn as_number(user: &str) -> Option<String> {
    let n: String = user
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' '))
        .collect();
    let digits = n.strip_prefix('+').unwrap_or(&n);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

/// `%XX` escapes decoded; the text as it is if one is broken.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

/// A user part as a SIP URI writes it (RFC 3261 §25.1: unreserved and user
/// characters as they are, anything else escaped).
fn escaped_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URI inside a name-addr (`"Jane" <sip:jane@x>;tag=1` → `sip:jane@x`),
/// or the addr-spec as it is.
fn addr_spec(address: &str) -> &str {
    let a = address.trim();
    match (a.find('<'), a.rfind('>')) {
        (Some(lt), Some(gt)) if lt < gt => a[lt + 1..gt].trim(),
        _ => a,
    }
}

impl Domains {
    /// A set of our own: `names` (domains), `addresses` (listen addresses,
    /// already expanded), and the servers of other domains.
    pub fn new(
        names: impl IntoIterator<Item = impl AsRef<str>>,
        addresses: impl IntoIterator<Item = IpAddr>,
    ) -> Self {
        let mut d = Self::default();
        let mut addresses: Vec<IpAddr> = addresses.into_iter().collect();
        for n in names {
            let n = normalise_host(n.as_ref());
            // An alias that is an address (a NAT's public one) is compared
            // as one.
            if let Ok(ip) = n.parse::<IpAddr>() {
                addresses.push(ip);
            } else if !n.is_empty() && !d.names.contains(&n) {
                d.names.push(n);
            }
        }
        for a in addresses {
            let a = canonical_ip(a);
            if !d.addresses.contains(&a) {
                d.addresses.push(a);
            }
        }
        d
    }

    /// Accepts requests with identities of `domain` from `addresses`.
    #[must_use]
    pub fn with_peer(mut self, domain: &str, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        self.peers.push((
            normalise_host(domain),
            addresses.into_iter().map(canonical_ip).collect(),
        ));
        self
    }

    /// Accepts any identity from these `[sip] trusted_peers`.
    #[must_use]
    pub fn with_trusted(mut self, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        self.trusted.extend(addresses.into_iter().map(canonical_ip));
        self
    }

    /// A set of our own: `names`, and the addresses listened on, where a
    /// wildcard (`0.0.0.0`, `::`) counts every address of the host's
    /// interfaces.
    pub fn listening(
        names: impl IntoIterator<Item = impl AsRef<str>>,
        listen: impl IntoIterator<Item = IpAddr>,
    ) -> Self {
        let mut addresses = Vec::new();
        let mut interfaces = None;
        for ip in listen {
            if ip.is_unspecified() {
                let all = interfaces.get_or_insert_with(interface_addresses);
                addresses.extend(all.iter().copied());
            } else {
                addresses.push(ip);
            }
        }
        Self::new(names, addresses)
    }

    /// The set the configuration describes: `[sip] domain`, `[imps] domain`,
    /// `[federation] domain_aliases`, the SIP (UDP, TCP) and IMPS listen
    /// addresses, every interface address for a wildcard one, and the peers
    /// of `[[federation.domain]]` and `[sip] trusted_peers`. Entries that do
    /// not parse were refused by [`Config::validate`] and are left out here.
    pub fn from_config(cfg: &Config) -> Self {
        let mut names = vec![cfg.sip.domain.clone(), cfg.imps.domain.clone()];
        names.extend(cfg.federation.domain_aliases.iter().cloned());
        let listen = cfg
            .sip
            .udp
            .iter()
            .chain(&cfg.sip.tcp)
            .chain(std::iter::once(&cfg.imps.listen))
            .filter_map(|a| a.parse::<std::net::SocketAddr>().ok())
            .map(|a| a.ip());
        let ips = |list: &[String]| -> Vec<IpAddr> {
            list.iter().filter_map(|a| a.parse().ok()).collect()
        };
        let mut d = Self::listening(names, listen).with_trusted(ips(&cfg.sip.trusted_peers));
        for p in &cfg.federation.domain {
            d = d.with_peer(&p.name, ips(&p.addresses));
        }
        d
    }

    /// Our domain names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The addresses we count as ours.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }

    /// Whether `host` (a name or an IP address, with or without port,
    /// brackets, trailing dot) is one of ours.
    pub fn is_local(&self, host: &str) -> bool {
        let h = normalise_host(host);
        match h.parse::<IpAddr>() {
            Ok(ip) => self.addresses.contains(&canonical_ip(ip)),
            Err(_) => self.names.contains(&h),
        }
    }

    /// Whether a request from `source` may speak for a user of the foreign
    /// `domain`: it comes from one of the addresses of the
    /// `[[federation.domain]]` of that name, or from a trusted peer.
    pub fn accepts_from(&self, domain: &str, source: IpAddr) -> bool {
        let (domain, source) = (normalise_host(domain), canonical_ip(source));
        self.trusted.contains(&source)
            || self
                .peers
                .iter()
                .any(|(name, addrs)| *name == domain && addrs.contains(&source))
    }

    /// What a URI's parts name: `scheme` (`sip`, `sips`, `tel`, `wv`), its
    /// user part (percent-decoded) and host. `tel:` numbers are
    /// subscribers; a `wv:` address without a host is ours; a number at one
    /// of our hosts is a subscriber, any other user part there a user of
    /// ours; any user part at another host is a foreign user.
    pub fn classify_parts(
        &self,
        scheme: &str,
        user: Option<&str>,
        host: &str,
    ) -> Result<Classified, AddressError> {
        let scheme = scheme.to_ascii_lowercase();
        let shown = || match user {
            Some(u) if host.is_empty() => format!("{scheme}:{u}"),
            Some(u) => format!("{scheme}:{u}@{host}"),
            None => format!("{scheme}:{host}"),
        };
        // A user part's parameters (`+4917…;isub=1`, `;phone-context=…`).
        let user = user.map(|u| u.split(';').next().unwrap_or(u).trim());
        match scheme.as_str() {
            "tel" => {
                let number = user.filter(|u| !u.is_empty()).unwrap_or(host);
                let number = number.split(';').next().unwrap_or(number);
                as_number(number)
                    .map(Classified::Subscriber)
                    .ok_or_else(|| AddressError::NotANumber(shown()))
            }
            "sip" | "sips" | "wv" => {
                let Some(user) = user.filter(|u| !u.is_empty()) else {
                    return Err(AddressError::NoUser(shown()));
                };
                if !host.is_empty() && !self.is_local(host) {
                    let domain = normalise_host(host);
                    let at = if domain.contains(':') {
                        format!("[{domain}]")
                    } else {
                        domain.clone()
                    };
                    return Ok(Classified::Foreign {
                        uri: format!("sip:{}@{at}", escaped_user(user)),
                        domain,
                    });
                }
                if let Some(n) = as_number(user) {
                    return Ok(Classified::Subscriber(n));
                }
                if user.starts_with('+') {
                    return Err(AddressError::NotANumber(shown()));
                }
                Ok(Classified::Local(user.to_owned()))
            }
            _ => Err(AddressError::Scheme(shown())),
        }
    }

    /// What an address as written names: `sip:`/`sips:` URIs (in `<>`,
    /// with a display name, parameters, headers), `tel:` numbers, IMPS
    /// `wv:user@domain` and `wv:user`, a bare `user@host`, or a bare name or
    /// number (ours).
    pub fn classify(&self, address: &str) -> Result<Classified, AddressError> {
        let spec = addr_spec(address);
        let (scheme, rest) = match spec.split_once(':') {
            // `alice@host:5060` and `[::1]` have a colon but no scheme.
            Some((s, r))
                if !s.contains('@')
                    && !s.starts_with('[')
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') =>
            {
                (s, r)
            }
            _ => ("", spec),
        };
        // A bare name with a space is a nickname (`Bob @ work`), not an
        // address; a number may have spaces.
        if scheme.is_empty() && spec.contains(char::is_whitespace) && as_number(spec).is_none() {
            return Ok(Classified::Local(spec.to_owned()));
        }
        let scheme = if scheme.is_empty() { "wv" } else { scheme };
        let lower = scheme.to_ascii_lowercase();
        // URI parameters and headers end the host (`sip:a@b;transport=tcp?x`);
        // a tel number keeps its own parameters for `classify_parts`.
        let rest = if lower == "tel" {
            rest
        } else {
            rest.split(['?']).next().unwrap_or(rest)
        };
        let (user, host) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(percent_decoded(u)), h.split(';').next().unwrap_or(h)),
            None if lower == "tel" || lower == "wv" => (Some(percent_decoded(rest)), ""),
            None => (None, rest.split(';').next().unwrap_or(rest)),
        };
        self.classify_parts(scheme, user.as_deref(), host)
    }
}

/// Every address of the host's interfaces, for a wildcard listener; only
/// the loopback ones if they cannot be read (logged).
fn interface_addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(list) => list.into_iter().map(|i| i.ip()).collect(),
        Err(e) => {
            tracing::error!(
                "cannot read the interface addresses ({e}): a wildcard listener counts only \
                 loopback as ours; list the others in [federation] domain_aliases"
            );
            vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Domains {
        Domains::new(
            ["Example.COM.", "im.example.com", "sms.example"],
            [
                IpAddr::from([192, 0, 2, 10]),
                "2001:db8::10".parse().unwrap(),
            ],
        )
    }

    fn local(u: &str) -> Result<Classified, AddressError> {
        Ok(Classified::Local(u.into()))
    }

    fn sub(n: &str) -> Result<Classified, AddressError> {
        Ok(Classified::Subscriber(n.into()))
    }

    fn foreign(uri: &str, domain: &str) -> Result<Classified, AddressError> {
        Ok(Classified::Foreign {
            uri: uri.into(),
            domain: domain.into(),
        })
    }

    #[test]
    fn hosts_compare_without_case_dot_port_or_brackets() {
        let d = ours();
        for h in [
            "example.com",
            "EXAMPLE.com.",
            "example.com:5060",
            "Example.Com.:5061",
            "192.0.2.10",
            "192.0.2.10:5060",
            "[2001:db8::10]",
            "[2001:DB8::10]:5060",
            "2001:db8::10",
            "[::ffff:192.0.2.10]",
        ] {
            assert!(d.is_local(h), "{h} is ours");
        }
        for h in [
            "otherdomain.net",
            "example.com.otherdomain.net",
            "sub.example.com",
            "192.0.2.11",
            "[2001:db8::11]",
            "",
        ] {
            assert!(!d.is_local(h), "{h} is not ours");
        }
        assert_eq!(normalise_host("[::1]:5060"), "::1");
        let nat = Domains::new(["sms.example", "[2001:db8::99]", "203.0.113.7"], []);
        assert!(nat.is_local("203.0.113.7:5060") && nat.is_local("[2001:db8::99]"));
        assert_eq!(nat.names(), ["sms.example"]);
        assert_eq!(normalise_host("Host.Example.:80"), "host.example");
    }

    #[test]
    fn sip_uris() {
        let d = ours();
        let c = |a: &str| d.classify(a);
        assert_eq!(c("sip:alice@example.com"), local("alice"));
        assert_eq!(
            c("sips:alice@EXAMPLE.com:5061;transport=tls"),
            local("alice")
        );
        assert_eq!(
            c("\"Alice A.\" <sip:alice@example.com>;tag=x"),
            local("alice")
        );
        assert_eq!(c("<sip:alice@192.0.2.10:5060>"), local("alice"));
        assert_eq!(c("sip:alice@[2001:db8::10]:5060"), local("alice"));
        assert_eq!(
            c("sip:+1 (555) 0200@example.com;user=phone"),
            sub("+15550200")
        );
        assert_eq!(c("sip:%2B4917@example.com"), sub("+4917"));
        assert_eq!(c("sip:01715550001@sms.example"), sub("01715550001"));
        assert_eq!(c("sip:+15550200;isub=1@example.com"), sub("+15550200"));
        assert_eq!(
            c("sip:alice@otherdomain.net"),
            foreign("sip:alice@otherdomain.net", "otherdomain.net")
        );
        assert_eq!(
            c("\"Jane\" <sips:jane@OtherDomain.Test.:5070;transport=tcp?subject=x>"),
            foreign("sip:jane@otherdomain.test", "otherdomain.test")
        );
        assert_eq!(
            c("sip:+15550200@otherdomain.net"),
            foreign("sip:+15550200@otherdomain.net", "otherdomain.net")
        );
        assert_eq!(
            c("sip:sam@192.0.2.99"),
            foreign("sip:sam@192.0.2.99", "192.0.2.99")
        );
        assert!(matches!(c("sip:example.com"), Err(AddressError::NoUser(_))));
        assert!(matches!(
            c("sip:+bob@example.com"),
            Err(AddressError::NotANumber(_))
        ));
        assert!(matches!(
            c("http://example.com/"),
            Err(AddressError::Scheme(_))
        ));
        assert!(matches!(
            c("mailto:a@example.com"),
            Err(AddressError::Scheme(_))
        ));
    }

    #[test]
    fn tel_uris_are_subscribers_wherever_they_say_they_are() {
        let d = ours();
        assert_eq!(d.classify("tel:+1-555-0200"), sub("+15550200"));
        assert_eq!(
            d.classify("<tel:+15550200;phone-context=x>"),
            sub("+15550200")
        );
        assert_eq!(
            d.classify_parts("tel", Some("+15550200"), ""),
            sub("+15550200")
        );
        assert!(matches!(
            d.classify("tel:bob"),
            Err(AddressError::NotANumber(_))
        ));
    }

    #[test]
    fn imps_user_ids() {
        let d = ours();
        assert_eq!(d.classify("wv:alice@im.example.com"), local("alice"));
        assert_eq!(d.classify("wv:alice"), local("alice"));
        assert_eq!(d.classify("WV:+15550951"), sub("+15550951"));
        assert_eq!(d.classify("wv:+15550951@example.com"), sub("+15550951"));
        assert_eq!(
            d.classify("wv:+15550951@otherdomain.net"),
            foreign("sip:+15550951@otherdomain.net", "otherdomain.net")
        );
        assert_eq!(
            d.classify("wv:alice@otherdomain.net"),
            foreign("sip:alice@otherdomain.net", "otherdomain.net")
        );
        assert_eq!(
            d.classify("wv:jane doe@otherdomain.test"),
            foreign("sip:jane%20doe@otherdomain.test", "otherdomain.test")
        );
    }

    #[test]
    fn bare_names_and_addresses() {
        let d = ours();
        assert_eq!(d.classify("alice"), local("alice"));
        assert_eq!(d.classify("Bob @ work"), local("Bob @ work"));
        assert_eq!(d.classify(" +15550200 "), sub("+15550200"));
        assert_eq!(d.classify("0171 5550001"), sub("01715550001"));
        assert_eq!(d.classify("alice@example.com"), local("alice"));
        assert_eq!(d.classify("alice@example.com:5060"), local("alice"));
        assert_eq!(
            d.classify("jane@otherdomain.test"),
            foreign("sip:jane@otherdomain.test", "otherdomain.test")
        );
        assert!(d.classify("").is_err());
    }

    #[test]
    fn peers_speak_for_their_own_domain_only() {
        let peer = IpAddr::from([127, 0, 0, 2]);
        let d = ours()
            .with_peer("OtherDomain.Test", [peer])
            .with_trusted([IpAddr::from([10, 0, 0, 1])]);
        assert!(d.accepts_from("otherdomain.test", peer));
        assert!(d.accepts_from("otherdomain.test.", peer));
        assert!(!d.accepts_from("thirddomain.test", peer));
        assert!(!d.accepts_from("otherdomain.test", IpAddr::from([127, 0, 0, 3])));
        assert!(d.accepts_from("anything.test", IpAddr::from([10, 0, 0, 1])));
    }

    #[test]
    fn the_configuration_names_the_set() {
        let cfg: Config = toml::from_str(
            "[sip]\ndomain = \"sms.test\"\nudp = [\"127.0.0.1:5060\"]\ntcp = [\"[::1]:5060\"]\n\
             [imps]\ndomain = \"im.test\"\nlisten = \"127.0.0.3:8080\"\n\
             [federation]\ndomain_aliases = [\"Alias.Test\"]\n\
             [[federation.domain]]\nname = \"otherdomain.test\"\naddresses = [\"127.0.0.2\"]\n",
        )
        .unwrap();
        let d = Domains::from_config(&cfg);
        assert_eq!(d.names(), ["sms.test", "im.test", "alias.test"]);
        assert_eq!(
            d.addresses(),
            [
                IpAddr::from([127, 0, 0, 1]),
                "::1".parse().unwrap(),
                IpAddr::from([127, 0, 0, 3])
            ]
        );
        assert!(d.accepts_from("otherdomain.test", IpAddr::from([127, 0, 0, 2])));
        let wild: Config =
            toml::from_str("[sip]\nudp = [\"0.0.0.0:5060\"]\ntcp = []\n[imps]\nlisten = \"\"\n")
                .unwrap();
        assert!(
            Domains::from_config(&wild).is_local("127.0.0.1"),
            "a wildcard counts every interface, loopback too"
        );
    }
}

//! Where a request for another domain goes, from `[federation]`: that
//! domain's own server (a static route) with its credentials, else the
//! outbound proxy with its credentials, else, with `dns = true`, the domain
//! itself, found by RFC 3263, else nowhere ([`Refusal::NoRoute`]). A pure
//! decision: the lookup is rsipstack's (its `srv_lookup` feature: SRV for
//! `_sip._udp` then `_sip._tcp`, then A/AAAA; it has no NAPTR step, so a
//! domain that publishes only NAPTR records is found by its SRV or A records
//! or not at all), done by the transport layer when the next hop is a name
//! without a port.

use rsipstack::dialog::authenticate::Credential;

use crate::bridge::api::Refusal;
use crate::config::Federation;

/// Digest credentials for a server on the way (the password is not printed).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Login {
    pub(crate) username: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({})", self.username)
    }
}

impl Login {
    fn from_config(username: Option<&String>, password: Option<&String>) -> Option<Self> {
        Some(Self {
            username: username?.clone(),
            password: password?.clone(),
        })
    }

    /// As rsipstack's digest answer wants it.
    pub(crate) fn credential(&self) -> Credential {
        Credential {
            username: self.username.clone(),
            password: self.password.clone(),
            realm: None,
            auth_username: None,
        }
    }
}

/// Which rule chose the next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HopKind {
    /// `[[federation.domain]] proxy`.
    Static,
    /// `[federation] outbound_proxy`.
    OutboundProxy,
    /// The Request-URI's host, by RFC 3263.
    Dns,
}

/// Where one request goes and how it answers challenges on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) kind: HopKind,
    /// The next hop as a `sip:` URI; `None`: the Request-URI itself.
    pub(crate) next_hop: Option<String>,
    /// For a 401 (the domain's server).
    pub(crate) server_login: Option<Login>,
    /// For a 407 (a proxy on the way).
    pub(crate) proxy_login: Option<Login>,
}

impl Route {
    /// The credentials that answer a challenge with this status code.
    pub(crate) fn login_for(&self, code: u16) -> Option<&Login> {
        match code {
            407 => self.proxy_login.as_ref().or(self.server_login.as_ref()),
            _ => self.server_login.as_ref().or(self.proxy_login.as_ref()),
        }
    }

    /// Whether requests on this route travel over TCP (for our Contact).
    pub(crate) fn is_tcp(&self, request_uri: &str) -> bool {
        let hop = self.next_hop.as_deref().unwrap_or(request_uri);
        hop.to_ascii_lowercase().contains(";transport=tcp")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Domain {
    name: String,
    proxy: Option<String>,
    login: Option<Login>,
}

/// The routing table, read once from `[federation]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Routes {
    domains: Vec<Domain>,
    outbound: Option<(String, Option<Login>)>,
    dns: bool,
}

impl Routes {
    pub(crate) fn from_config(f: &Federation) -> Self {
        let nonempty = |s: &Option<String>| s.as_ref().filter(|s| !s.trim().is_empty()).cloned();
        Self {
            domains: f
                .domain
                .iter()
                .map(|d| Domain {
                    name: d.name.trim().to_ascii_lowercase(),
                    proxy: nonempty(&d.proxy),
                    login: Login::from_config(d.username.as_ref(), d.password.as_ref()),
                })
                .collect(),
            outbound: nonempty(&f.outbound_proxy).map(|p| {
                let login =
                    Login::from_config(f.outbound_username.as_ref(), f.outbound_password.as_ref());
                (p, login)
            }),
            dns: f.dns,
        }
    }

    /// The route for a request to `uri` (a `sip:` or `sips:` URI of another
    /// domain).
    pub(crate) fn route(&self, uri: &str) -> Result<Route, Refusal> {
        let host = foreign_host(uri)?;
        let domain = self.domains.iter().find(|d| d.name == host);
        let login = domain.and_then(|d| d.login.clone());
        if let Some(proxy) = domain.and_then(|d| d.proxy.clone()) {
            return Ok(Route {
                kind: HopKind::Static,
                next_hop: Some(proxy),
                server_login: login.clone(),
                proxy_login: login,
            });
        }
        if let Some((proxy, proxy_login)) = &self.outbound {
            return Ok(Route {
                kind: HopKind::OutboundProxy,
                next_hop: Some(proxy.clone()),
                server_login: login.or_else(|| proxy_login.clone()),
                proxy_login: proxy_login.clone(),
            });
        }
        if self.dns {
            return Ok(Route {
                kind: HopKind::Dns,
                next_hop: None,
                server_login: login.clone(),
                proxy_login: login,
            });
        }
        Err(Refusal::NoRoute(uri.to_owned()))
    }
}

/// How the other domain's final answer to our MESSAGE or SUBSCRIBE (or a
/// local 408 when none came) ends the request for the bridge: 2xx is `Ok`;
/// the user is unknown there (404, 604); refused (401/407 not satisfied,
/// 403, 489, 603); not now (408, 480, 486, 5xx: retry after `retry_after`
/// seconds, or 30); a redirect, which we do not follow, is no route; any
/// other 4xx says the request was not acceptable there.
pub(crate) fn outcome(uri: &str, code: u16, retry_after: Option<&str>) -> Result<(), Refusal> {
    let uri = uri.to_owned();
    let said = |what: &str| format!("{uri}: {what} (SIP {code})");
    match code {
        200..=299 => Ok(()),
        404 | 604 => Err(Refusal::UnknownRecipient(uri)),
        401 | 403 | 407 | 489 | 603 | 600..=699 => {
            Err(Refusal::ForeignNotAllowed(said("refused by its domain")))
        }
        408 | 480 | 486 | 500..=599 => Err(Refusal::Busy {
            retry_after: std::time::Duration::from_secs(
                retry_after
                    .and_then(|v| v.split(['(', ';']).next()?.trim().parse().ok())
                    .unwrap_or(30)
                    .clamp(1, 3600),
            ),
        }),
        300..=399 => Err(Refusal::NoRoute(said("redirected"))),
        _ => Err(Refusal::Invalid(said("not accepted"))),
    }
}

/// The host of a `sip:`/`sips:` URI with a user part, lower-cased.
fn foreign_host(uri: &str) -> Result<String, Refusal> {
    let bad = || Refusal::Invalid(format!("{uri} is not a SIP address of another domain"));
    let u = rsipstack::sip::Uri::try_from(uri.trim()).map_err(|_| bad())?;
    let sip = matches!(
        u.scheme,
        Some(rsipstack::sip::Scheme::Sip | rsipstack::sip::Scheme::Sips)
    );
    if !sip || u.auth.is_none() {
        return Err(bad());
    }
    let host = u.host().to_string().to_ascii_lowercase();
    if host.is_empty() {
        return Err(bad());
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PeerDomain;

    fn peer(name: &str, proxy: Option<&str>, user: Option<&str>) -> PeerDomain {
        PeerDomain {
            name: name.into(),
            proxy: proxy.map(str::to_owned),
            addresses: Vec::new(),
            username: user.map(str::to_owned),
            password: user.map(|u| format!("{u}-pw")),
        }
    }

    fn login(u: &str) -> Option<Login> {
        Some(Login {
            username: u.into(),
            password: format!("{u}-pw"),
        })
    }

    fn federation() -> Federation {
        Federation {
            outbound_proxy: Some("sip:192.0.2.9:5070;transport=tcp".into()),
            outbound_username: Some("edge".into()),
            outbound_password: Some("edge-pw".into()),
            dns: true,
            domain: vec![
                peer(
                    "OtherDomain.test",
                    Some("sip:127.0.0.2:5060"),
                    Some("bridge"),
                ),
                peer("nohop.test", None, Some("nh")),
            ],
            ..Federation::default()
        }
    }

    #[test]
    fn a_domain_with_a_proxy_is_routed_there_with_its_login() {
        let r = Routes::from_config(&federation())
            .route("sip:jane@otherdomain.TEST")
            .unwrap();
        assert_eq!(
            r,
            Route {
                kind: HopKind::Static,
                next_hop: Some("sip:127.0.0.2:5060".into()),
                server_login: login("bridge"),
                proxy_login: login("bridge"),
            }
        );
        assert!(!r.is_tcp("sip:jane@otherdomain.test"));
    }

    #[test]
    fn other_domains_go_through_the_outbound_proxy() {
        let routes = Routes::from_config(&federation());
        let r = routes.route("sip:sam@elsewhere.test").unwrap();
        assert_eq!(r.kind, HopKind::OutboundProxy);
        assert_eq!(
            r.next_hop.as_deref(),
            Some("sip:192.0.2.9:5070;transport=tcp")
        );
        assert!(r.is_tcp("sip:sam@elsewhere.test"));
        assert_eq!(r.login_for(407), login("edge").as_ref());
        assert_eq!(r.login_for(401), login("edge").as_ref());
        // A known domain without a server of its own: the proxy, and the
        // domain's login for its server's 401.
        let r = routes.route("sip:x@nohop.test").unwrap();
        assert_eq!(r.kind, HopKind::OutboundProxy);
        assert_eq!(r.login_for(407), login("edge").as_ref());
        assert_eq!(r.login_for(401), login("nh").as_ref());
    }

    #[test]
    fn dns_when_nothing_else_and_no_route_without_it() {
        let mut f = federation();
        f.outbound_proxy = None;
        let r = Routes::from_config(&f)
            .route("sip:sam@elsewhere.test")
            .unwrap();
        assert_eq!(
            r,
            Route {
                kind: HopKind::Dns,
                next_hop: None,
                server_login: None,
                proxy_login: None,
            }
        );
        f.dns = false;
        assert_eq!(
            Routes::from_config(&f).route("sip:sam@elsewhere.test"),
            Err(Refusal::NoRoute("sip:sam@elsewhere.test".into()))
        );
        // The static route still applies.
        assert_eq!(
            Routes::from_config(&f)
                .route("sip:jane@otherdomain.test")
                .unwrap()
                .kind,
            HopKind::Static
        );
        assert_eq!(
            Routes::from_config(&Federation::default()).route("sip:jane@otherdomain.test"),
            Err(Refusal::NoRoute("sip:jane@otherdomain.test".into()))
        );
    }

    #[test]
    fn an_empty_proxy_or_half_a_login_counts_as_none() {
        let f = Federation {
            outbound_proxy: Some(" ".into()),
            outbound_username: Some("edge".into()),
            domain: vec![PeerDomain {
                password: None,
                ..peer("otherdomain.test", Some(""), Some("u"))
            }],
            ..Federation::default()
        };
        assert!(matches!(
            Routes::from_config(&f).route("sip:jane@otherdomain.test"),
            Err(Refusal::NoRoute(_))
        ));
        let f = Federation { dns: true, ..f };
        let r = Routes::from_config(&f)
            .route("sip:jane@otherdomain.test")
            .unwrap();
        assert_eq!((r.kind, r.login_for(401)), (HopKind::Dns, None));
    }

    #[test]
    fn only_sip_addresses_with_a_user_are_routed() {
        let routes = Routes::from_config(&federation());
        for bad in [
            "tel:+15550100",
            "wv:jane@otherdomain.test",
            "sip:otherdomain.test",
            "jane",
        ] {
            assert!(
                matches!(routes.route(bad), Err(Refusal::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(
            routes.route("sips:jane@otherdomain.test").unwrap().kind,
            HopKind::Static
        );
    }

    #[test]
    fn final_answers_as_refusals() {
        let to = "sip:jane@otherdomain.test";
        assert_eq!(outcome(to, 202, None), Ok(()));
        assert_eq!(outcome(to, 200, None), Ok(()));
        assert_eq!(
            outcome(to, 404, None),
            Err(Refusal::UnknownRecipient(to.into()))
        );
        assert_eq!(
            outcome(to, 604, None),
            Err(Refusal::UnknownRecipient(to.into()))
        );
        for code in [401, 403, 407, 489, 603] {
            assert!(
                matches!(outcome(to, code, None), Err(Refusal::ForeignNotAllowed(ref w)) if w.contains(&format!("SIP {code}"))),
                "{code}"
            );
        }
        let busy = |secs| {
            Err(Refusal::Busy {
                retry_after: std::time::Duration::from_secs(secs),
            })
        };
        assert_eq!(outcome(to, 480, None), busy(30));
        assert_eq!(outcome(to, 408, None), busy(30));
        assert_eq!(
            outcome(to, 503, Some("120 (maintenance);duration=60")),
            busy(120)
        );
        assert_eq!(outcome(to, 503, Some("0")), busy(1));
        assert_eq!(outcome(to, 503, Some("junk")), busy(30));
        assert!(matches!(outcome(to, 302, None), Err(Refusal::NoRoute(_))));
        assert!(matches!(outcome(to, 415, None), Err(Refusal::Invalid(_))));
    }

    #[test]
    fn the_login_is_not_printed() {
        let l = login("bridge").unwrap();
        assert_eq!(format!("{l:?}"), "Login(bridge)");
        let c = l.credential();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("bridge", "bridge-pw")
        );
    }

    /// What a DNS route hands the transport layer: the Request-URI's host
    /// with no port and no transport, which rsipstack's resolver looks up
    /// as SRV (`_sip._udp`, then `_sip._tcp`) before A/AAAA.
    #[tokio::test]
    async fn a_dns_route_is_resolved_by_srv_then_a() {
        use rsipstack::resolver::sip_resolver::{LookupSource, SrvRecord, resolve_logic};
        use rsipstack::transport::SipAddr;
        use std::net::IpAddr;

        struct Zone;
        #[async_trait::async_trait]
        impl LookupSource for Zone {
            async fn lookup_srv(&self, name: &str) -> Result<Vec<SrvRecord>, String> {
                match name {
                    "_sip._tcp.otherdomain.test" => Ok(vec![SrvRecord {
                        target: "pres.otherdomain.test".into(),
                        port: 5080,
                        priority: 10,
                        weight: 0,
                    }]),
                    _ => Err(format!("NXDOMAIN {name}")),
                }
            }
            async fn lookup_a_aaaa(&self, name: &str) -> Result<Vec<IpAddr>, String> {
                match name {
                    "pres.otherdomain.test" => Ok(vec!["192.0.2.7".parse().unwrap()]),
                    "plain.test" => Ok(vec!["192.0.2.8".parse().unwrap()]),
                    _ => Err(format!("NXDOMAIN {name}")),
                }
            }
        }
        let routes = Routes::from_config(&Federation {
            dns: true,
            ..Federation::default()
        });
        let resolve = |uri: &str| {
            let r = routes.route(uri).unwrap();
            assert_eq!(r.kind, HopKind::Dns);
            let hop = r.next_hop.unwrap_or_else(|| uri.to_owned());
            let addr =
                SipAddr::try_from(&rsipstack::sip::Uri::try_from(hop.as_str()).unwrap()).unwrap();
            async move {
                let rsipstack::sip::Host::Domain(host) = &addr.addr.host else {
                    return Err("not a name".to_owned());
                };
                resolve_logic(&Zone, host, addr.addr.port, addr.r#type, false).await
            }
        };
        let t = resolve("sip:jane@otherdomain.test").await.unwrap();
        assert_eq!(t[0].addr, "192.0.2.7:5080".parse().unwrap());
        assert_eq!(t[0].transport, rsipstack::sip::Transport::Tcp);
        let t = resolve("sip:sam@plain.test").await.unwrap();
        assert_eq!(t[0].addr, "192.0.2.8:5060".parse().unwrap());
        assert_eq!(t[0].transport, rsipstack::sip::Transport::Udp);
        assert!(resolve("sip:x@nowhere.test").await.is_err());
    }
}

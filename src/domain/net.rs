//! Which addresses an outgoing request may reach. Doorward calls URLs that others
//! registered (back-channel logout URIs, later `jwks_uri` and client metadata documents),
//! so it must not be turned against its own network (SSRF): only globally routable
//! addresses are called, unless the instance allows loopback ([`Reach`]) or local ones.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// True for an address on the public Internet: not loopback, private (RFC 1918), shared
/// (RFC 6598), link-local, unspecified, multicast, broadcast, documentation, benchmarking
/// (RFC 2544) or reserved; for IPv6 also unique-local (fc00::/7), link-local, and the
/// IPv4-mapped and -compatible forms of the IPv4 exceptions.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

/// True for a loopback address: 127.0.0.0/8, `::1`, and 127.0.0.0/8 in IPv4-mapped form
/// (`::ffff:127.0.0.1`, which a dual-stack socket also delivers to loopback).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// True for a host name that always means this machine: `localhost` and its subdomains
/// (RFC 6761 §6.3), without asking a resolver.
pub fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Which addresses an outgoing request may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Only globally routable addresses ([`is_global`]).
    Global,
    /// Global addresses and loopback, never another private or reserved range (tests
    /// against a local server, e.g. `DOORWARD_CIMD_ALLOW_LOOPBACK`).
    GlobalAndLoopback,
    /// Anything (`DOORWARD_BACKCHANNEL_LOGOUT_ALLOW_LOOPBACK`).
    Any,
}

impl Reach {
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            Reach::Global => is_global(ip),
            Reach::GlobalAndLoopback => is_global(ip) || is_loopback(ip),
            Reach::Any => true,
        }
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_global_v4(v4);
    }
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || ip.segments()[..6] == [0, 0, 0, 0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_reserved_addresses_are_not_global() {
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(!is_global(local.parse().unwrap()), "{local}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_global(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn loopback_allowance_is_loopback_only() {
        let reach = Reach::GlobalAndLoopback;
        for ok in [
            "127.0.0.1",
            "127.9.8.7",
            "::1",
            "::ffff:127.0.0.1",
            "1.1.1.1",
        ] {
            assert!(reach.allows(ok.parse().unwrap()), "{ok}");
        }
        for no in [
            "10.0.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::",
            "fd00::1",
            "fe80::1",
            "::127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!reach.allows(no.parse().unwrap()), "{no}");
            assert!(!Reach::Global.allows(no.parse().unwrap()), "{no}");
        }
        assert!(!Reach::Global.allows("127.0.0.1".parse().unwrap()));
        assert!(is_loopback_name("localhost") && is_loopback_name("LocalHost."));
        assert!(is_loopback_name("app.localhost") && !is_loopback_name("localhost.example"));
    }
}

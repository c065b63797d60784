//! Throttling of password guesses, shared by the sign-in page and the password grant so
//! both count against the same limits: per submitted login and per client address.

use std::net::IpAddr;

use crate::store::throttles::ThrottlePolicy;

/// Window in which failures are counted (seconds).
pub const WINDOW: i64 = 600;
/// Per submitted login: 10 failures in 10 minutes lock it for 10 minutes (GitLab's numbers).
pub const LOGIN_POLICY: ThrottlePolicy = ThrottlePolicy {
    max_failures: 10,
    window: WINDOW,
    lock_for: 600,
};
/// Per client address: more room, since offices share addresses.
pub const ADDRESS_POLICY: ThrottlePolicy = ThrottlePolicy {
    max_failures: 50,
    window: WINDOW,
    lock_for: 600,
};

/// The key of a login as typed (lower-cased), so unknown and known accounts behave alike.
pub fn login_key(login: &str) -> String {
    format!("login:{}", login.trim().to_lowercase())
}

pub fn address_key(ip: IpAddr) -> String {
    format!("ip:{ip}")
}

/// What a locked-out client is told, rounded up to whole minutes.
pub fn lockout_message(seconds: i64) -> String {
    let minutes = (seconds + 59) / 60;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("Too many failed sign-in attempts. Try again in {minutes} {unit}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_messages() {
        assert_eq!(login_key(" Root "), "login:root");
        assert_eq!(address_key("10.0.0.1".parse().unwrap()), "ip:10.0.0.1");
        assert_eq!(
            lockout_message(61),
            "Too many failed sign-in attempts. Try again in 2 minutes."
        );
        assert_eq!(
            lockout_message(30),
            "Too many failed sign-in attempts. Try again in 1 minute."
        );
    }
}

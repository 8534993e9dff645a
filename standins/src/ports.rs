//! Loopback ports for the servers tests start.
//!
//! Picked below the kernel's ephemeral range (32768 and up by default), so
//! no outgoing connection of a busy test run can be holding one as its
//! source port between the pick and the server's bind. A port from
//! `bind(0)` comes from that very range: CI once lost a run to etcd's
//! client port being some connection's source port.

use anyhow::bail;
use rand::Rng as _;

/// The range ports are picked from.
pub const PORTS: std::ops::Range<u16> = 20_000..32_768;

/// A loopback port of [`PORTS`] that could be bound just now.
pub fn free_port() -> anyhow::Result<u16> {
    listen_port(&[])
}

/// A random port of [`PORTS`] that can be bound now and is not in `avoid`.
pub fn listen_port(avoid: &[u16]) -> anyhow::Result<u16> {
    let mut rng = rand::rng();
    for _ in 0..1_000 {
        let p = rng.random_range(PORTS);
        if !avoid.contains(&p) && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return Ok(p);
        }
    }
    bail!("no free loopback port in {PORTS:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_outside_the_ephemeral_range_and_bindable() -> anyhow::Result<()> {
        for _ in 0..50 {
            let p = free_port()?;
            assert!(PORTS.contains(&p) && p < 32_768, "{p}");
            std::net::TcpListener::bind(("127.0.0.1", p))?;
        }
        let taken = free_port()?;
        let _held = std::net::TcpListener::bind(("127.0.0.1", taken))?;
        for _ in 0..200 {
            assert_ne!(listen_port(&[])?, taken, "a port in use was offered");
        }
        Ok(())
    }
}

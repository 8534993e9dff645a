//! Which worker consumes which partition.
//!
//! Every worker heartbeats in the store and reads the live members (a
//! heartbeat younger than `member_ttl_ms`). The owner of each partition is a
//! function of the sorted member list alone, so every worker that sees the
//! same members computes the same owners: rendezvous hashing (each
//! partition goes to the member with the highest hash of member and
//! partition) with a bounded load, so that no member gets more than its
//! share rounded up. A member that joins or leaves moves few partitions.
//!
//! A worker consumes the partitions it owns and releases the others: it
//! stops taking their deliveries, acks what it handled, then closes the
//! channel, and the broker hands the rest, in order, to the next consumer
//! (each partition is a single-active-consumer queue). Two workers whose
//! views differ for a moment may both subscribe to a partition: the queue
//! still has one active consumer, the one that came first, until it lets
//! go. There are no standby subscriptions: a standby subscribed first would
//! be the active one. So a crashed worker's partitions wait until its
//! heartbeat expires (at most `member_ttl_ms` + `rebalance_interval_ms`); a
//! worker that shuts down hands them over and leaves at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use riposte_connectors::amqp::ConsumerSettings;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::{MessageFormat, PartitionConfig};
use super::decode::Origin;
use super::source::{self, ConsumerContext};
use crate::store::Store;

fn score(member: &str, partition: u16) -> u64 {
    let mut key = Vec::with_capacity(member.len() + 3);
    key.extend_from_slice(member.as_bytes());
    key.push(0);
    key.extend_from_slice(&partition.to_be_bytes());
    xxhash_rust::xxh3::xxh3_64(&key)
}

/// The owner of every partition among `members` (any order; duplicates
/// count once). Empty when there is no member.
pub fn owners(members: &[String], count: u16) -> Vec<String> {
    let members: BTreeSet<&str> = members.iter().map(String::as_str).collect();
    if members.is_empty() {
        return Vec::new();
    }
    let cap = usize::from(count).div_ceil(members.len());
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    (0..count)
        .map(|p| {
            let mut ranked: Vec<&str> = members.iter().copied().collect();
            ranked.sort_by_key(|m| std::cmp::Reverse((score(m, p), *m)));
            let owner = ranked
                .into_iter()
                .find(|m| load.get(m).copied().unwrap_or(0) < cap)
                .unwrap_or_default();
            *load.entry(owner).or_default() += 1;
            owner.to_string()
        })
        .collect()
}

/// The partitions `me` owns among `members`.
pub fn owned(me: &str, members: &[String], count: u16) -> BTreeSet<u16> {
    owners(members, count)
        .iter()
        .enumerate()
        .filter(|(_, m)| m.as_str() == me)
        .filter_map(|(p, _)| u16::try_from(p).ok())
        .collect()
}

/// This process's name among the workers: the host (the pod name) and a
/// random suffix, so that a restarted worker, or two in one process, are
/// distinct members.
pub fn member_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "riposte".into());
    format!("{host}-{:08x}", rand::random::<u32>())
}

struct Held {
    release: CancellationToken,
    task: JoinHandle<()>,
}

/// This worker's partitions, and the consumers it runs on them.
struct Assignment<'a> {
    me: &'a str,
    ctx: &'a ConsumerContext,
    config: &'a PartitionConfig,
    tag_prefix: &'a str,
    shutdown: &'a CancellationToken,
    kill: &'a CancellationToken,
    held: BTreeMap<u16, Held>,
    /// Consumers handing their partition over.
    releasing: Vec<JoinHandle<()>>,
    /// The members of the last round.
    seen: Vec<String>,
}

impl Assignment<'_> {
    /// Releases the partitions that are no longer this worker's and takes
    /// the ones that now are, among `members`.
    fn rebalance(&mut self, mut members: Vec<String>) {
        let me = self.me;
        if !members.iter().any(|m| m == me) {
            members.push(me.to_string());
            members.sort();
        }
        let want = owned(me, &members, self.config.count);
        let have: BTreeSet<u16> = self.held.keys().copied().collect();
        if want != have {
            self.ctx.metrics.rebalances.inc();
            tracing::info!(
                member = %me,
                members = ?members,
                owned = ?want,
                released = ?have.difference(&want).collect::<Vec<_>>(),
                taken = ?want.difference(&have).collect::<Vec<_>>(),
                "partitions rebalanced"
            );
        } else if members != self.seen {
            tracing::info!(member = %me, members = ?members, owned = ?want,
                "partition workers changed; this worker's partitions did not");
        }
        for p in have.difference(&want) {
            if let Some(h) = self.held.remove(p) {
                h.release.cancel();
                self.releasing.push(h.task);
            }
        }
        for &p in want.difference(&have) {
            self.take(p);
        }
        self.ctx
            .metrics
            .partitions_owned
            .set(i64::try_from(self.held.len()).unwrap_or(i64::MAX));
        self.ctx
            .metrics
            .workers
            .set(i64::try_from(members.len()).unwrap_or(i64::MAX));
        self.seen = members;
    }

    /// Starts consuming partition `p`.
    fn take(&mut self, p: u16) {
        let release = CancellationToken::new();
        let settings = ConsumerSettings {
            queue: self.config.queue_spec(p),
            prefetch: self.config.prefetch,
            tag: format!("{} {}", self.tag_prefix, self.config.queue(p)),
        };
        let task = tokio::spawn(source::consume(
            self.ctx.clone(),
            settings,
            MessageFormat::Events,
            Origin::Replicas,
            self.shutdown.clone(),
            self.kill.clone(),
            Some(release.clone()),
        ));
        self.held.insert(p, Held { release, task });
    }

    /// Waits for every consumer to hand over (or stop).
    async fn stop(self) {
        for h in self.held.into_values() {
            let _ = h.task.await;
        }
        for t in self.releasing {
            let _ = t.await;
        }
    }
}

/// Keeps this worker's membership and its partitions' consumers until
/// `shutdown` (the consumers hand over, then the member leaves) or `kill`
/// (everything stops at once, the row stays until it expires, as when the
/// process dies).
pub async fn run(
    ctx: ConsumerContext,
    config: PartitionConfig,
    store: Store,
    tag_prefix: String,
    shutdown: CancellationToken,
    kill: CancellationToken,
) {
    let me = member_name();
    let interval = Duration::from_millis(config.rebalance_interval_ms);
    let ttl =
        chrono::Duration::milliseconds(i64::try_from(config.member_ttl_ms).unwrap_or(i64::MAX));
    // Rows silent this long are from workers that died without leaving.
    let forget = ttl * 100;
    tracing::info!(member = %me, partitions = config.count, "joining the partition workers");
    let mut assignment = Assignment {
        me: &me,
        ctx: &ctx,
        config: &config,
        tag_prefix: &tag_prefix,
        shutdown: &shutdown,
        kill: &kill,
        held: BTreeMap::new(),
        releasing: Vec::new(),
        seen: Vec::new(),
    };
    let mut store_ok = true;
    loop {
        let now = Utc::now();
        let view = match store
            .member_heartbeat(&config.queue_prefix, &me, now, now - forget)
            .await
        {
            Ok(()) => store.members_live(&config.queue_prefix, now - ttl).await,
            Err(e) => Err(e),
        };
        match view {
            Ok(members) => {
                if !store_ok {
                    tracing::info!(member = %me, "partition membership readable again");
                    store_ok = true;
                }
                assignment.rebalance(members);
            }
            Err(e) => {
                // Keep what is held: the others cannot take it over without
                // this worker's heartbeat expiring, and SAC keeps one active
                // consumer per queue meanwhile.
                if store_ok {
                    tracing::warn!(member = %me, error = %e,
                        "partition membership unreadable; keeping this worker's partitions");
                    store_ok = false;
                }
            }
        }
        assignment.releasing.retain(|t| !t.is_finished());
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = kill.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    // On shutdown each consumer acks what it handled and hands over; only
    // then may the others subscribe, so the member leaves last.
    assignment.stop().await;
    ctx.metrics.partitions_owned.set(0);
    if !kill.is_cancelled() {
        match store.member_leave(&config.queue_prefix, &me).await {
            Ok(()) => tracing::info!(member = %me, "left the partition workers"),
            Err(e) => tracing::warn!(member = %me, error = %e,
                "could not leave the partition workers: the others wait for the heartbeat to expire"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("worker-{i}")).collect()
    }

    #[test]
    fn every_partition_has_one_owner_and_shares_are_even() {
        for n in 1..=5 {
            let members = names(n);
            let owners = owners(&members, 8);
            assert_eq!(owners.len(), 8);
            let mut total = 0;
            for m in &members {
                let mine = owned(m, &members, 8).len();
                assert!(mine <= 8usize.div_ceil(n), "{m} has {mine} of 8 among {n}");
                total += mine;
            }
            assert_eq!(total, 8);
        }
        assert!(owners(&[], 8).is_empty());
    }

    #[test]
    fn the_order_of_the_members_does_not_matter() {
        let mut members = names(3);
        let a = owners(&members, 16);
        members.reverse();
        assert_eq!(owners(&members, 16), a);
    }

    #[test]
    fn a_member_joining_moves_few_partitions() {
        let before = owners(&names(3), 64);
        let after = owners(&names(4), 64);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        // The newcomer takes its share (16); bounded loads move a little
        // more than that, far from a reshuffle of all 64.
        assert!((16..=32).contains(&moved), "{moved} of 64 moved");
        // And one leaving moves only what it owned, plus little.
        let gone = names(4)[1].clone();
        let left: Vec<String> = names(4).into_iter().filter(|m| *m != gone).collect();
        let after_leave = owners(&left, 64);
        let moved = after
            .iter()
            .zip(&after_leave)
            .filter(|(b, a)| b != a && **b != gone)
            .count();
        assert!(moved <= 16, "{moved} partitions of the others moved");
    }
}

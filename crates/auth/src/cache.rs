//! Bounded TTL caches for mail-auth's parsed records (SPF, DKIM keys,
//! DMARC records, A/AAAA/MX/PTR for SPF mechanisms), shared by every
//! message. The resolver's own cache (raw answers, negative answers
//! included) sits below them and serves the block lists.
//!
//! Each cache holds at most `capacity` entries; an entry lives until its
//! record's TTL, at most `max_ttl`. When full, expired entries go first,
//! then the oldest eighth (insertion order): O(n) once per n/8 inserts.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mail_auth::{RecordSet, ResolverCache, Txt, MX};

/// One bounded TTL cache.
pub struct TtlCache<K, V> {
    map: Mutex<Inner<K, V>>,
    capacity: usize,
    max_ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

struct Inner<K, V> {
    entries: HashMap<K, (V, Instant, u64)>,
    seq: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize, max_ttl: Duration) -> Self {
        TtlCache {
            map: Mutex::new(Inner {
                entries: HashMap::new(),
                seq: 0,
            }),
            capacity: capacity.max(1),
            max_ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    pub fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.entries.clear();
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> ResolverCache<K, V> for TtlCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // A poisoned lock (a panic elsewhere while holding it) only costs
        // the cache: lookups go to the resolver.
        let Ok(mut m) = self.map.lock() else {
            return None;
        };
        let now = Instant::now();
        let found = match m.entries.get(name) {
            Some((v, exp, _)) if *exp > now => Some(v.clone()),
            Some(_) => {
                m.entries.remove(name);
                None
            }
            None => None,
        };
        drop(m);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map
            .lock()
            .ok()
            .and_then(|mut m| m.entries.remove(name).map(|e| e.0))
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let now = Instant::now();
        let cap = now + self.max_ttl;
        let exp = valid_until.min(cap);
        if exp <= now {
            return;
        }
        let Ok(mut m) = self.map.lock() else { return };
        if m.entries.len() >= self.capacity && !m.entries.contains_key(&key) {
            m.entries.retain(|_, (_, e, _)| *e > now);
            if m.entries.len() >= self.capacity {
                let mut seqs: Vec<u64> = m.entries.values().map(|(_, _, s)| *s).collect();
                seqs.sort_unstable();
                let cut = seqs[(seqs.len() / 8).min(seqs.len() - 1)];
                m.entries.retain(|_, (_, _, s)| *s > cut);
            }
        }
        m.seq += 1;
        let seq = m.seq;
        m.entries.insert(key, (value, exp, seq));
    }
}

/// The caches mail-auth's lookups go through.
pub struct Caches {
    pub txt: TtlCache<Box<str>, Txt>,
    pub mx: TtlCache<Box<str>, RecordSet<MX>>,
    pub ipv4: TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    pub ipv6: TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    pub ptr: TtlCache<IpAddr, RecordSet<Box<str>>>,
}

impl Caches {
    pub fn new(capacity: usize, max_ttl: Duration) -> Caches {
        Caches {
            txt: TtlCache::new(capacity, max_ttl),
            mx: TtlCache::new(capacity, max_ttl),
            ipv4: TtlCache::new(capacity, max_ttl),
            ipv6: TtlCache::new(capacity, max_ttl),
            ptr: TtlCache::new(capacity, max_ttl),
        }
    }

    /// mail-auth parameters with every cache.
    #[allow(clippy::type_complexity)]
    pub fn params<P>(
        &self,
        p: P,
    ) -> mail_auth::Parameters<
        '_,
        P,
        TtlCache<Box<str>, Txt>,
        TtlCache<Box<str>, RecordSet<MX>>,
        TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
        TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
        TtlCache<IpAddr, RecordSet<Box<str>>>,
    > {
        mail_auth::Parameters::new(p)
            .with_txt_cache(&self.txt)
            .with_mx_cache(&self.mx)
            .with_ipv4_cache(&self.ipv4)
            .with_ipv6_cache(&self.ipv6)
            .with_ptr_cache(&self.ptr)
    }

    /// Hits and misses over all caches.
    pub fn stats(&self) -> (u64, u64) {
        [
            self.txt.stats(),
            self.mx.stats(),
            self.ipv4.stats(),
            self.ipv6.stats(),
            self.ptr.stats(),
        ]
        .iter()
        .fold((0, 0), |a, s| (a.0 + s.0, a.1 + s.1))
    }

    pub fn clear(&self) {
        self.txt.clear();
        self.mx.clear();
        self.ipv4.clear();
        self.ipv6.clear();
        self.ptr.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_expiring() {
        let c: TtlCache<Box<str>, u32> = TtlCache::new(16, Duration::from_secs(60));
        let later = Instant::now() + Duration::from_secs(3600);
        for i in 0..100u32 {
            c.insert(format!("k{i}").into(), i, later);
            assert!(c.len() <= 16);
        }
        assert_eq!(c.get("k99"), Some(99));
        assert_eq!(c.get("k0"), None);
        // Already expired: not kept.
        c.insert("old".into(), 1, Instant::now());
        assert_eq!(c.get("old"), None);
        let (h, m) = c.stats();
        assert_eq!((h, m), (1, 2));
    }
}

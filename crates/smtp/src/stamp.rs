//! The gateway's use of the antivirus stamp ([`mxguard_stamp`]): the key ring,
//! the versions this node scans with, and the nodes it trusts.

use mxguard_engine::Scanner;
use mxguard_stamp::{Current, KeyRing, StampCheck, StampFields, StampKey, StampResult};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// Stamps from untrusted clients are removed with this.
pub fn strip(msg: &[u8]) -> Cow<'_, [u8]> {
    mxguard_stamp::strip_stamps(msg)
}

/// One generation of signatures: the scanner built from them and the stamp
/// settings that name their version. A message is scanned and stamped with
/// the same generation, so a stamp never claims signatures the message was
/// not scanned with.
pub struct ScanGeneration {
    pub scanner: Arc<Scanner>,
    /// `None` when stamps are off (`[stamp] enabled = false`).
    pub stamp: Option<Arc<StampSettings>>,
}

/// The generation the SMTP gateway, the milter and the mailbox check scan
/// with now, replaced whole when the signatures are reloaded. Each message
/// takes one [`ScanSlot::current`] and keeps it to the end: a reload never
/// disturbs a scan in progress, and the old scanner is freed when its last
/// message is done.
pub struct ScanSlot {
    current: RwLock<Arc<ScanGeneration>>,
    /// Stamps on or off never changes after start.
    stamping: bool,
}

impl ScanSlot {
    pub fn new(scanner: Arc<Scanner>, stamp: Option<Arc<StampSettings>>) -> ScanSlot {
        ScanSlot {
            stamping: stamp.is_some(),
            current: RwLock::new(Arc::new(ScanGeneration { scanner, stamp })),
        }
    }

    /// The generation to scan one message with.
    pub fn current(&self) -> Arc<ScanGeneration> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether messages get our stamp.
    pub fn stamping(&self) -> bool {
        self.stamping
    }

    /// Makes `scanner`, built from signatures of version `sigs`, current.
    /// Stamps made from now on carry `sigs`; stamps made with the previous
    /// version become stale (scanned again). Keys, trusted nodes and maximum
    /// age stay as they are.
    pub fn replace(&self, scanner: Arc<Scanner>, sigs: &str) {
        let old = self.current();
        let stamp = old.stamp.as_ref().map(|st| {
            Arc::new(StampSettings {
                keys: st.keys.clone(),
                current: Current {
                    engine: st.current.engine.clone(),
                    sigs: sigs.to_string(),
                },
                trusted_nodes: st.trusted_nodes.clone(),
                max_age: st.max_age,
            })
        });
        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(ScanGeneration { scanner, stamp });
    }
}

pub struct StampSettings {
    pub keys: KeyRing,
    pub current: Current,
    pub trusted_nodes: Vec<String>,
    pub max_age: Option<Duration>,
}

impl StampSettings {
    /// Loads (creating on first start) the signing key and any previous keys.
    pub fn load(
        key_file: &Path,
        previous: &[PathBuf],
        engine: &str,
        sigs: &str,
        trusted_nodes: Vec<String>,
        max_age: Option<Duration>,
    ) -> Result<StampSettings, mxguard_stamp::KeyError> {
        let mut keys = KeyRing::from(StampKey::load_or_create(key_file)?);
        for p in previous {
            keys.push(StampKey::load(p)?);
        }
        Ok(StampSettings {
            keys,
            current: Current {
                engine: engine.to_string(),
                sigs: sigs.to_string(),
            },
            trusted_nodes,
            max_age,
        })
    }

    /// `Ok(result)` when the topmost stamp is valid and current; otherwise why not.
    pub fn check(&self, msg: &[u8]) -> Result<String, String> {
        match mxguard_stamp::verify(
            msg,
            &self.keys,
            &self.current,
            &self.trusted_nodes,
            self.max_age,
            SystemTime::now(),
        ) {
            StampCheck::Valid(f) => Ok(f.result.as_str().to_string()),
            StampCheck::Missing => Err("no stamp".into()),
            StampCheck::Malformed(m) => Err(format!("malformed stamp: {m}")),
            StampCheck::BadMac => Err("stamp MAC does not verify".into()),
            StampCheck::UntrustedNode(n) => Err(format!("stamp from untrusted node {n}")),
            StampCheck::Expired => Err("stamp too old".into()),
            StampCheck::Stale { engine, sigs } => Err(format!(
                "stamp made with engine {engine}, signatures {sigs}: not current"
            )),
        }
    }

    /// The message with our stamp on top (`result`: clean, cleaned or suspicious).
    pub fn stamp(&self, msg: &[u8], result: &str, node: &str) -> Vec<u8> {
        let result = match result {
            "cleaned" => StampResult::Cleaned,
            "suspicious" => StampResult::Suspicious,
            _ => StampResult::Clean,
        };
        let fields = StampFields {
            engine: self.current.engine.clone(),
            sigs: self.current.sigs.clone(),
            result,
            node: node.to_string(),
            time: mxguard_stamp::unix_time(SystemTime::now()),
        };
        match mxguard_stamp::add_stamp(msg, &fields, self.keys.signing_key()) {
            Ok(m) => m,
            Err(e) => {
                // Only a node id or version with forbidden bytes gets here; config validation prevents it.
                tracing::error!("cannot stamp: {e}");
                msg.to_vec()
            }
        }
    }
}

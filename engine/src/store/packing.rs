//! A record's body (its first event's summary and its intents) stored
//! zstd-compressed, with a dictionary trained from the store's own records.
//!
//! During a storm the body was two thirds of a record's bytes, and most of
//! it repeats from record to record: the same JSON keys, actions, tags,
//! reasons and notification titles with a different address or pod. Alone,
//! zstd halves a body of ~800 bytes; a dictionary of what bodies have in
//! common cuts it to about a fifth. The dictionary is learnt here, not
//! shipped: the writer samples the first bodies it packs, trains one off
//! its task, stores it in `audit_dicts` and packs with it from then on; it
//! trains again after every [`RETRAIN_AFTER`] records, so new playbooks
//! (new shapes of body) get a dictionary of their own. Dictionaries are
//! never changed or deleted (a few KiB per million records): every record
//! names the one it was packed with, and readers load them by id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use zstd::dict::DecoderDictionary;

use super::StoreError;

/// `packed_dict` of a body packed without a dictionary.
pub(crate) const NO_DICT: i64 = 0;

/// zstd's default level: a storm's bodies compress at a few µs each.
const LEVEL: i32 = 3;

/// Bodies sampled to train a dictionary.
const SAMPLES: usize = 2_000;

/// Size of a trained dictionary: about 1 % of its samples, as zstd advises.
const DICT_BYTES: usize = 16 * 1024;

/// Records packed with a dictionary before sampling for the next.
pub(crate) const RETRAIN_AFTER: u64 = 1_000_000;

/// The largest body a reader decompresses: a record's body is a few KiB;
/// a frame that claims more is corrupt and must not make a reader
/// allocate it.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Separates the event from the intents in a body: JSON text never holds
/// a raw NUL.
const SEPARATOR: u8 = 0;

/// Loaded dictionaries by id.
pub(crate) type DictMap = HashMap<i64, Arc<DecoderDictionary<'static>>>;

/// A dictionary trained off the writer's task, to be stored and used.
pub(crate) type Training = tokio::task::JoinHandle<Result<Vec<u8>, String>>;

/// The audit writer's compressor: the dictionary it packs with, the
/// samples it gathers for the next one.
pub(crate) struct Packer {
    dict: i64,
    compressor: zstd::bulk::Compressor<'static>,
    /// Records packed since the last dictionary (or failed training).
    packed: u64,
    /// Records to pack before sampling for a new dictionary: none at
    /// first, [`RETRAIN_AFTER`] after a dictionary or a failed training
    /// (so a training that fails is not tried again at once, and again).
    wait: u64,
    samples: Vec<u8>,
    sizes: Vec<usize>,
    training: Option<Training>,
    /// Bytes packed, and what they became, since [`Packer::take_bytes`].
    body_bytes: u64,
    packed_bytes: u64,
}

impl std::fmt::Debug for Packer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packer")
            .field("dict", &self.dict)
            .field("packed", &self.packed)
            .field("samples", &self.sizes.len())
            .field("training", &self.training.is_some())
            .finish()
    }
}

impl Packer {
    /// A packer without a dictionary (it samples for one at once).
    pub fn new() -> Result<Packer, StoreError> {
        Ok(Packer {
            dict: NO_DICT,
            compressor: zstd::bulk::Compressor::new(LEVEL).map_err(zstd_error)?,
            packed: 0,
            wait: 0,
            samples: Vec::new(),
            sizes: Vec::new(),
            training: None,
            body_bytes: 0,
            packed_bytes: 0,
        })
    }

    /// Packs with dictionary `id` from now on.
    pub fn install(&mut self, id: i64, dict: &[u8]) -> Result<(), StoreError> {
        self.compressor =
            zstd::bulk::Compressor::with_dictionary(LEVEL, dict).map_err(zstd_error)?;
        self.dict = id;
        self.packed = 0;
        self.wait = RETRAIN_AFTER;
        Ok(())
    }

    /// Packs a record's body; answers it and the dictionary it needs.
    pub fn pack(
        &mut self,
        event_json: &str,
        intents_json: &str,
    ) -> Result<(Vec<u8>, i64), StoreError> {
        let mut body = Vec::with_capacity(event_json.len() + intents_json.len() + 1);
        body.extend_from_slice(event_json.as_bytes());
        body.push(SEPARATOR);
        body.extend_from_slice(intents_json.as_bytes());
        let packed = self.compressor.compress(&body).map_err(zstd_error)?;
        self.packed += 1;
        self.body_bytes += body.len() as u64;
        self.packed_bytes += packed.len() as u64;
        if self.sampling() {
            self.samples.extend_from_slice(&body);
            self.sizes.push(body.len());
        }
        Ok((packed, self.dict))
    }

    /// The dictionary in use, and the bytes packed and what they became
    /// since the last call.
    pub fn take_bytes(&mut self) -> (i64, u64, u64) {
        let taken = (self.dict, self.body_bytes, self.packed_bytes);
        self.body_bytes = 0;
        self.packed_bytes = 0;
        taken
    }

    fn sampling(&self) -> bool {
        self.training.is_none() && self.sizes.len() < SAMPLES && self.packed >= self.wait
    }

    /// Starts training a dictionary off the task once enough bodies are
    /// sampled.
    pub fn train_when_sampled(&mut self) {
        if self.training.is_some() || self.sizes.len() < SAMPLES {
            return;
        }
        let samples = std::mem::take(&mut self.samples);
        let sizes = std::mem::take(&mut self.sizes);
        self.training = Some(tokio::task::spawn_blocking(move || {
            zstd::dict::from_continuous(&samples, &sizes, DICT_BYTES).map_err(|e| e.to_string())
        }));
    }

    /// The training, once it has ended (taken: the caller stores its
    /// dictionary, or calls [`Packer::failed`]).
    pub fn finished(&mut self) -> Option<Training> {
        if self.training.as_ref().is_some_and(|t| t.is_finished()) {
            self.training.take()
        } else {
            None
        }
    }

    /// No dictionary came of the last samples: sample again after
    /// [`RETRAIN_AFTER`] more records.
    pub fn failed(&mut self) {
        self.packed = 0;
        self.wait = RETRAIN_AFTER;
    }
}

/// The dictionary a finished training made, if it made one.
pub(crate) async fn trained(training: Training) -> Option<Vec<u8>> {
    match training.await {
        Ok(Ok(dict)) => Some(dict),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not train a dictionary for the audit records; they are packed with the one before");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "the audit dictionary's training stopped");
            None
        }
    }
}

fn zstd_error(e: std::io::Error) -> StoreError {
    StoreError::Invalid(format!("compressing an audit record: {e}"))
}

/// Unpacks a body: the event summary's JSON and the intents' JSON.
pub(crate) fn unpack(
    packed: &[u8],
    dict: Option<&DecoderDictionary<'static>>,
) -> Result<(String, String), StoreError> {
    let corrupt = |why: String| StoreError::Corrupt(format!("packed audit record: {why}"));
    let size = zstd::zstd_safe::get_frame_content_size(packed)
        .map_err(|_| corrupt("not a zstd frame".into()))?
        .ok_or_else(|| corrupt("the frame does not say its size".into()))?;
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_BODY)
        .ok_or_else(|| corrupt(format!("a body of {size} bytes")))?;
    let mut decompressor = match dict {
        Some(d) => zstd::bulk::Decompressor::with_prepared_dictionary(d),
        None => zstd::bulk::Decompressor::new(),
    }
    .map_err(|e| corrupt(e.to_string()))?;
    let body = decompressor
        .decompress(packed, size)
        .map_err(|e| corrupt(e.to_string()))?;
    let at = body
        .iter()
        .position(|b| *b == SEPARATOR)
        .ok_or_else(|| corrupt("no separator".into()))?;
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| corrupt("not UTF-8".into()));
    Ok((text(&body[..at])?, text(&body[at + 1..])?))
}

/// The dictionaries readers have loaded, by id. They never change, so a
/// dictionary once loaded is good for the life of the process.
#[derive(Default)]
pub(crate) struct Dicts {
    by_id: Mutex<DictMap>,
}

impl std::fmt::Debug for Dicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dicts")
            .field("loaded", &self.lock().len())
            .finish()
    }
}

impl Dicts {
    fn lock(&self) -> std::sync::MutexGuard<'_, DictMap> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether dictionary `id` is loaded (or not needed).
    pub fn has(&self, id: i64) -> bool {
        id == NO_DICT || self.lock().contains_key(&id)
    }

    pub fn add(&self, id: i64, dict: &[u8]) {
        self.lock()
            .insert(id, Arc::new(DecoderDictionary::copy(dict)));
    }

    /// The loaded dictionaries, to unpack a page of records with.
    pub fn snapshot(&self) -> DictMap {
        self.lock().clone()
    }
}

/// Unpacks a body with one of `dicts`.
pub(crate) fn unpack_with(
    packed: &[u8],
    dict: i64,
    dicts: &DictMap,
) -> Result<(String, String), StoreError> {
    if dict == NO_DICT {
        return unpack(packed, None);
    }
    let d = dicts.get(&dict).ok_or_else(|| {
        StoreError::Corrupt(format!("audit dictionary {dict} is not in the store"))
    })?;
    unpack(packed, Some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(i: usize) -> (String, String) {
        (
            format!(
                r#"{{"kind":"alert","dataset":"panos.threat","threat_name":"Sig {}","source_ip":"10.0.{}.{}"}}"#,
                i % 17,
                i % 250,
                i % 199
            ),
            format!(
                r#"[{{"action":"tag_ip","ip":"10.0.{}.{}","tag":"riposte-exploit","ttl":"1h","reason":"Sig {} from 10.0.{}.{} against shop/frontend-{}"}}]"#,
                i % 250,
                i % 199,
                i % 17,
                i % 250,
                i % 199,
                i % 300
            ),
        )
    }

    #[test]
    fn a_body_comes_back_as_it_was_packed_with_or_without_a_dictionary() {
        let mut p = Packer::new().expect("packer");
        let (e, i) = body(7);
        let (packed, dict) = p.pack(&e, &i).expect("pack");
        assert_eq!(dict, NO_DICT);
        assert_eq!(
            unpack(&packed, None).expect("unpack"),
            (e.clone(), i.clone())
        );

        let mut samples = Vec::new();
        let mut sizes = Vec::new();
        for n in 0..SAMPLES {
            let (e, i) = body(n);
            samples.extend_from_slice(e.as_bytes());
            samples.push(0);
            samples.extend_from_slice(i.as_bytes());
            sizes.push(e.len() + i.len() + 1);
        }
        let trained = zstd::dict::from_continuous(&samples, &sizes, DICT_BYTES).expect("train");
        p.install(5, &trained).expect("install");
        let (with, dict) = p.pack(&e, &i).expect("pack");
        assert_eq!(dict, 5);
        assert!(
            with.len() < packed.len(),
            "{} vs {}",
            with.len(),
            packed.len()
        );
        let dicts = Dicts::default();
        assert!(!dicts.has(5));
        dicts.add(5, &trained);
        assert!(dicts.has(NO_DICT) && dicts.has(5));
        assert_eq!(
            unpack_with(&with, 5, &dicts.snapshot()).expect("unpack"),
            (e, i)
        );
        // Without its dictionary a body is an error, not garbage.
        assert!(matches!(
            unpack_with(&with, 6, &dicts.snapshot()),
            Err(StoreError::Corrupt(_))
        ));
        assert!(unpack(&with, None).is_err());
    }

    #[test]
    fn corrupt_or_oversized_frames_are_errors() {
        assert!(matches!(
            unpack(b"not zstd at all", None),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(unpack(&[], None), Err(StoreError::Corrupt(_))));
        // A frame claiming a huge body is refused before allocating it.
        let big = vec![b'a'; MAX_BODY + 1];
        let frame = zstd::bulk::compress(&big, 1).expect("compress");
        assert!(matches!(unpack(&frame, None), Err(StoreError::Corrupt(_))));
        // A body without the separator.
        let frame = zstd::bulk::compress(b"{}", 1).expect("compress");
        assert!(matches!(unpack(&frame, None), Err(StoreError::Corrupt(_))));
        // Truncated.
        let frame = zstd::bulk::compress(b"{}\0[]", 1).expect("compress");
        assert!(unpack(&frame[..frame.len() - 2], None).is_err());
    }

    #[tokio::test]
    async fn the_packer_samples_trains_off_the_task_and_hands_the_dictionary_over_once() {
        let mut p = Packer::new().expect("packer");
        for n in 0..SAMPLES - 1 {
            let (e, i) = body(n);
            p.pack(&e, &i).expect("pack");
        }
        p.train_when_sampled();
        assert!(p.training.is_none(), "one sample short");
        let (e, i) = body(SAMPLES);
        p.pack(&e, &i).expect("pack");
        p.train_when_sampled();
        assert!(p.training.is_some());
        let training = loop {
            if let Some(t) = p.finished() {
                break t;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        let dict = trained(training).await.expect("a dictionary");
        assert!(!dict.is_empty() && dict.len() <= DICT_BYTES);
        assert!(p.finished().is_none(), "handed over once");
        p.install(1, &dict).expect("install");
        // With a dictionary it samples no more until it has packed
        // RETRAIN_AFTER records with it.
        let (e, i) = body(1);
        p.pack(&e, &i).expect("pack");
        assert!(p.sizes.is_empty());
        p.packed = RETRAIN_AFTER;
        p.pack(&e, &i).expect("pack");
        assert_eq!(p.sizes.len(), 1);
        // A training that fails waits as long before sampling again.
        p.failed();
        p.sizes.clear();
        p.pack(&e, &i).expect("pack");
        assert!(p.sizes.is_empty());
    }
}

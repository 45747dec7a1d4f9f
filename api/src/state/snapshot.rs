//! Snapshots of keyed state and restoring from them, per key group so that state can be rescaled.
//!
//! [`KeyedState::snapshot`] captures the state on the task thread and returns a [`SnapshotJob`] that
//! encodes it, on any thread. The heap backend's capture is a copy of the keys, tables and timers (a
//! `memcpy`-like clone, several times cheaper than encoding); a spilling backend writes its dirty entries
//! to the store and captures a consistent read view of it plus the timers. Both encode the same format, so
//! a checkpoint of one backend restores into the other.
//!
//! [`KeyedState::restore`] reads the snapshots of all subtasks of the run that took the checkpoint,
//! whatever its parallelism, and keeps the key groups this subtask owns, stepping over the others without
//! decoding them. Keys are hashed again and must fall into the group they were written under (the key
//! selector and hash are fixed), and the number of key groups must be the same. A heap state rebuilds its
//! tables; a spilling state writes the entries straight into its store, in one sorted batch. Declared
//! states are matched by name: a state of the snapshot that the operator no longer declares, or declares
//! with another kind, type, or with/without TTL, is an [`EddyError::User`] naming it (a changed TTL
//! duration is fine; timestamps are kept, so TTL runs on across the restore).
//!
//! # Format
//! MessagePack. The snapshot is an array:
//!
//! ```text
//! [ "eddy-keyed-state", version (1), max_parallelism,
//!   [ [name, kind, types, nil | [ttl_ms, on_read]], ... ],   // declared states, by index
//!   [ [group, section (bytes)], ... ] ]                      // key groups with state, ascending
//! ```
//!
//! A section is a sequence of values (not an array), so a reader that skips the group reads one length.
//! Its counts come first, so a restore sizes its tables once before reading any entry:
//!
//! ```text
//! n_parts, n_parts x (state index, n_entries, entries (bytes))
//!     entries: n_entries x (key index, namespace, timestamp, value (bytes, rmp-serde))
//! n_keys, n_keys x (key (bytes, canonical form), mask)       // see the `codec` module
//! n_event_timers, n x (time, key index, namespace)
//! n_processing_timers, n x (time, key index, namespace)
//! ```
//!
//! A namespace is `nil` for `Namespace::NONE` (most keyed state), else its start and end.
//!
//! Key indexes count from 0 within the section. Expired entries are written as they are (they are dropped
//! when read, as before the snapshot).
use super::codec::{self, corrupt, put_array_len, put_bin, put_int, put_uint, Patch, Reader};
use super::keys::{KeysCopy, RestoredKey};
use super::spill::{parse_store_key, parse_store_value, put_store_namespace, SpillBatch, SpillView};
use super::table::{DecodedEntries, EntryDecoder, ErasedTable, Part, CHUNK};
use super::timers::TimerEntry;
use super::{Declared, KeyId, KeyedState, Namespace};
use crate::error::{EddyError, Result};
use crate::key::{key_group, KeyGroupRange};
use crate::value::OwnedDatum;
use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::hash::Hasher;

/// A captured snapshot that still has to be encoded; may run on another thread.
pub type SnapshotJob = Box<dyn FnOnce() -> Result<Vec<u8>> + Send>;

const MAGIC: &str = "eddy-keyed-state";
const VERSION: u64 = 1;

/// A declared state as a snapshot records it.
#[derive(Clone, Debug)]
struct StateMeta {
    name: String,
    kind: String,
    types: String,
    /// TTL in ms and whether reads restart it.
    ttl: Option<(u64, bool)>,
}

impl StateMeta {
    fn of(d: &Declared) -> Self {
        let ttl = d.ttl.map(|t| (t.millis().max(0) as u64, t.update == super::TtlUpdate::OnReadAndWrite));
        StateMeta { name: d.name.clone(), kind: d.kind.to_owned(), types: d.types.clone(), ttl }
    }
}

/// Writes everything up to the groups array, whose length is patched at the end.
fn write_header(out: &mut Vec<u8>, max_parallelism: usize, states: &[StateMeta]) -> Patch {
    put_array_len(out, 5);
    codec::put_str(out, MAGIC);
    put_uint(out, VERSION);
    put_uint(out, max_parallelism as u64);
    put_array_len(out, states.len());
    for s in states {
        put_array_len(out, 4);
        codec::put_str(out, &s.name);
        codec::put_str(out, &s.kind);
        codec::put_str(out, &s.types);
        match s.ttl {
            None => codec::put_nil(out),
            Some((ms, on_read)) => {
                put_array_len(out, 2);
                put_uint(out, ms);
                codec::put_bool(out, on_read);
            }
        }
    }
    Patch::array(out)
}

/// Reads the header; the reader is left at the groups array.
fn read_header(r: &mut Reader<'_>) -> Result<(usize, Vec<StateMeta>)> {
    if r.array_len()? != 5 || r.str()? != MAGIC {
        return Err(corrupt("not a keyed state snapshot"));
    }
    let version = r.uint()?;
    if version != VERSION {
        return Err(EddyError::user(format!(
            "keyed state snapshot of format version {version}; this build reads version {VERSION}"
        )));
    }
    let max_parallelism = usize::try_from(r.uint()?).map_err(|_| corrupt("max parallelism"))?;
    let n = r.array_len()?;
    let mut states = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        if r.array_len()? != 4 {
            return Err(corrupt("a state description"));
        }
        let (name, kind, types) = (r.str()?.to_owned(), r.str()?.to_owned(), r.str()?.to_owned());
        let ttl = if r.nil() {
            None
        } else {
            if r.array_len()? != 2 {
                return Err(corrupt("a TTL"));
            }
            Some((r.uint()?, r.bool()?))
        };
        states.push(StateMeta { name, kind, types, ttl });
    }
    Ok((max_parallelism, states))
}

/// Writes the timers of a section; `index` gives a key's index in the section.
fn write_timers(out: &mut Vec<u8>, timers: &[TimerEntry], mut index: impl FnMut(KeyId) -> u32) {
    put_uint(out, timers.len() as u64);
    for &(time, key, ns) in timers {
        put_int(out, time);
        put_uint(out, u64::from(index(key)));
        codec::put_namespace(out, ns);
    }
}

/// The number of key groups in `range`.
fn group_count(range: KeyGroupRange) -> usize {
    if range.end < range.start {
        0
    } else {
        range.end - range.start + 1
    }
}

impl KeyedState {
    /// Captures all state and timers of the key groups this subtask owns. Cheap on the task thread where
    /// possible: the heap backend copies its tables (no encoding); a spilling backend writes its dirty
    /// entries and opens a read view of its store. Call at a safe point (no handle borrows into the state).
    pub fn snapshot(&mut self) -> Result<SnapshotJob> {
        let states: Vec<StateMeta> = self.tables.iter().map(StateMeta::of).collect();
        if self.spill.is_some() {
            return self.snapshot_spilled(states);
        }
        let (max_parallelism, range) = (self.max_parallelism, self.key_groups);
        let keys = self.keys.copy();
        let tables: Vec<Box<dyn ErasedTable>> = self.tables.iter().map(|d| d.table.clone_box()).collect();
        let timers = [self.event.iter().collect::<Vec<_>>(), self.processing.iter().collect::<Vec<_>>()];
        Ok(Box::new(move || encode_heap(&states, max_parallelism, range, &keys, &tables, &timers)))
    }

    /// [`snapshot`](Self::snapshot) of a spilling state.
    fn snapshot_spilled(&mut self, states: Vec<StateMeta>) -> Result<SnapshotJob> {
        self.spill_all(false)?;
        let Some(spill) = self.spill.as_deref_mut() else { return Err(EddyError::internal("no spill store")) };
        let view = spill.store.view()?;
        let mut timers = Vec::with_capacity(self.event.len() + self.processing.len());
        for (domain, list) in [&self.event, &self.processing].into_iter().enumerate() {
            for (time, id, ns) in list.iter() {
                let mut key = Vec::new();
                let mask = codec::put_key(&mut key, self.keys.key(id));
                timers.push(SpilledTimer { group: self.keys.group(id), domain, time, ns, key, mask });
            }
        }
        // By group, keeping the firing order within a group and domain.
        timers.sort_by_key(|t| (t.group, t.domain));
        let (max_parallelism, range) = (self.max_parallelism, self.key_groups);
        Ok(Box::new(move || encode_spilled(&states, max_parallelism, range, &*view, &timers)))
    }

    /// After `open` declared the states: restores from the encoded snapshots of ALL subtasks of the run that
    /// took the checkpoint (any parallelism), taking only key groups inside [`key_groups`](Self::key_groups).
    /// Restore into a state that holds nothing yet (entries already there are overwritten by restored
    /// ones). Every snapshot's header is checked before anything changes; a section found corrupt later
    /// leaves the state partly restored, so an error here should fail the task.
    pub fn restore(&mut self, snapshots: &[&[u8]]) -> Result<()> {
        // First the headers and the counts of the owned sections.
        let mut plan = Vec::with_capacity(snapshots.len());
        let (mut keys, mut entries) = (0usize, vec![0usize; self.tables.len()]);
        for bytes in snapshots {
            let mut r = Reader::new(bytes);
            let (max_parallelism, states) = read_header(&mut r)?;
            if max_parallelism != self.max_parallelism {
                return Err(EddyError::user(format!(
                    "the keyed state snapshot has {max_parallelism} key groups and this job {}: max parallelism \
                     cannot change across a restore",
                    self.max_parallelism
                )));
            }
            let map = self.match_states(&states)?;
            let mut sections = Vec::new();
            for _ in 0..r.array_len()? {
                if r.array_len()? != 2 {
                    return Err(corrupt("a key group entry"));
                }
                let group = usize::try_from(r.uint()?).map_err(|_| corrupt("key group"))?;
                let section = r.bin()?;
                if group >= max_parallelism {
                    return Err(corrupt("key group out of range"));
                }
                if !self.key_groups.contains(group) {
                    continue;
                }
                let mut s = Reader::new(section);
                for (state, count, _) in read_parts(&mut s)? {
                    let idx = *map.get(state).ok_or_else(|| corrupt("an entry part names an unknown state"))?;
                    entries[idx] += count;
                }
                keys += s.u32()? as usize;
                sections.push((group, section));
            }
            plan.push((map, sections));
        }
        let groups = plan.iter().flat_map(|(map, sections)| sections.iter().map(move |&(g, s)| (g, s, map.as_slice())));
        if self.spill.is_some() {
            self.spill_all(true)?;
            let mut batch = SpillBatch::new();
            for (group, section, map) in groups {
                self.restore_group_spilled(group, section, map, &mut batch)?;
            }
            batch.sort();
            if let Some(spill) = self.spill.as_deref_mut().filter(|_| !batch.is_empty()) {
                spill.store.write(&batch)?;
            }
            return Ok(());
        }
        self.keys.reserve(keys);
        let total: usize = entries.iter().sum::<usize>() + keys;
        for (d, n) in self.tables.iter_mut().zip(entries) {
            d.table.reserve(&self.keys, n);
        }
        let decoders: Vec<EntryDecoder> = self.tables.iter().map(|d| d.table.entry_decoder()).collect();
        let max_parallelism = self.max_parallelism;
        let decode = |(group, section, map)| decode_group(group, section, map, &decoders, max_parallelism);
        if total < PARALLEL_RESTORE {
            for g in groups {
                self.insert_group(decode(g)?)?;
            }
            return Ok(());
        }
        // Decoding (values, keys, their hashes) runs on a helper thread, up to `DECODED_AHEAD` key groups
        // ahead of inserting on this one: the two halves cost about the same, and a big restore is what a recovery waits for.
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<DecodedGroup>>(DECODED_AHEAD);
            std::thread::Builder::new()
                .name("eddy-restore".into())
                .spawn_scoped(scope, move || {
                    for g in groups {
                        let decoded = decode(g);
                        let failed = decoded.is_err();
                        // A closed channel: the restore failed on the other side.
                        if tx.send(decoded).is_err() || failed {
                            return;
                        }
                    }
                })
                .map_err(|e| EddyError::internal(format!("cannot start a thread to restore keyed state: {e}")))?;
            for decoded in rx {
                self.insert_group(decoded?)?;
            }
            Ok(())
        })
    }

    /// The declared index of every state of a snapshot, checking that they still match.
    fn match_states(&self, states: &[StateMeta]) -> Result<Vec<usize>> {
        states
            .iter()
            .map(|s| {
                let Some(idx) = self.tables.iter().position(|d| d.name == s.name) else {
                    return Err(EddyError::user(format!(
                        "keyed state `{}` ({}<{}>) is in the snapshot but the operator no longer declares it",
                        s.name, s.kind, s.types
                    )));
                };
                let d = &self.tables[idx];
                if d.kind != s.kind || d.types != s.types {
                    return Err(EddyError::user(format!(
                        "keyed state `{}` is {}<{}> in the snapshot but declared as {}<{}>: it cannot be restored",
                        s.name, s.kind, s.types, d.kind, d.types
                    )));
                }
                if d.ttl.is_some() != s.ttl.is_some() {
                    let (then, now) = if s.ttl.is_some() { ("with", "without") } else { ("without", "with") };
                    return Err(EddyError::user(format!(
                        "keyed state `{}` has been written {then} a TTL and is declared {now} one: it cannot be \
                         restored",
                        s.name
                    )));
                }
                Ok(idx)
            })
            .collect()
    }

    /// Interns the keys of one decoded key group and inserts its entries and timers.
    fn insert_group(&mut self, group: DecodedGroup) -> Result<()> {
        let mut ids = Vec::with_capacity(group.keys.len());
        let mut keys = group.keys.into_iter();
        let mut chunk: Vec<(Option<RestoredKey>, u32)> = Vec::with_capacity(CHUNK);
        loop {
            chunk.extend(keys.by_ref().take(CHUNK));
            if chunk.is_empty() {
                break;
            }
            self.keys.warm(chunk.iter().filter_map(|(k, _)| k.as_ref().map(RestoredKey::hash)));
            for (key, refs) in chunk.drain(..) {
                ids.push(match key {
                    Some(key) => self.keys.intern_restored(key, refs),
                    None => super::NO_KEY,
                });
            }
        }
        for (idx, entries) in group.parts {
            self.tables[idx].table.insert_decoded(&mut self.keys, &ids, entries)?;
        }
        for (domain, time, at, ns) in group.timers {
            let timers = if domain == 0 { &mut self.event } else { &mut self.processing };
            timers.restore(&mut self.keys, time, ids[at as usize], ns);
        }
        Ok(())
    }

    /// Restores one key group's section into a spill batch: entries are copied without decoding their
    /// values; only the keys of timers are interned.
    fn restore_group_spilled(
        &mut self,
        group: usize,
        section: &[u8],
        map: &[usize],
        batch: &mut SpillBatch,
    ) -> Result<()> {
        let mut r = Reader::new(section);
        let parts = read_parts(&mut r)?;
        let keys = read_keys(&mut r, group, self.max_parallelism)?;
        for (state, count, entries) in parts {
            let idx = *map.get(state).ok_or_else(|| corrupt("an entry part names an unknown state"))?;
            copy_entries(batch, group, idx as u32, &keys, count, &mut Reader::new(entries))?;
        }
        let mut ids: Vec<KeyId> = vec![super::NO_KEY; keys.len()];
        for (domain, time, at, ns) in read_timers(&mut r)? {
            let (key, mask, hash) = *keys.get(at as usize).ok_or_else(|| corrupt("a timer's key"))?;
            let id = &mut ids[at as usize];
            if *id == super::NO_KEY {
                *id = self.keys.intern_restored(RestoredKey::decode(key, mask, hash)?, 0);
            }
            let timers = if domain == 0 { &mut self.event } else { &mut self.processing };
            timers.register(&mut self.keys, time, *id, ns);
        }
        for id in ids.into_iter().filter(|&id| id != super::NO_KEY) {
            self.keys.release_if_unused(id);
        }
        Ok(())
    }
}

/// Restores with fewer keys and entries than this decode on the task thread: a thread costs more.
const PARALLEL_RESTORE: usize = 64 * 1024;
/// Key groups decoded ahead of inserting, at most (bounds the memory of a parallel restore).
const DECODED_AHEAD: usize = 4;

/// One key group's section, decoded and checked, ready to insert.
struct DecodedGroup {
    /// The keys by index, each with its references; `None` for a key nothing refers to.
    keys: Vec<(Option<RestoredKey>, u32)>,
    /// Entries per table (by declared index).
    parts: Vec<(usize, DecodedEntries)>,
    /// (domain: 0 event time, 1 processing time, time, key index, namespace).
    timers: Vec<(usize, i64, u32, Namespace)>,
}

/// Decodes one key group's section (on any thread); `map` gives the declared index of each state of the
/// snapshot and `decoders` the entry decoder of each declared state.
fn decode_group(
    group: usize,
    section: &[u8],
    map: &[usize],
    decoders: &[EntryDecoder],
    max_parallelism: usize,
) -> Result<DecodedGroup> {
    let mut r = Reader::new(section);
    let raw_parts = read_parts(&mut r)?;
    let raw_keys = read_keys(&mut r, group, max_parallelism)?;
    let timers = read_timers(&mut r)?;
    let mut refs = vec![0u32; raw_keys.len()];
    let mut parts = Vec::with_capacity(raw_parts.len());
    for (state, n, entries) in raw_parts {
        let idx = *map.get(state).ok_or_else(|| corrupt("an entry part names an unknown state"))?;
        let decode = decoders.get(idx).ok_or_else(|| corrupt("an entry part names an unknown state"))?;
        parts.push((idx, decode(&mut Reader::new(entries), n, &mut refs)?));
    }
    for t in &timers {
        *refs.get_mut(t.2 as usize).ok_or_else(|| corrupt("a timer names a key the group does not have"))? += 1;
    }
    let keys = raw_keys
        .into_iter()
        .zip(refs)
        .map(|((key, mask, hash), n)| Ok((if n == 0 { None } else { Some(RestoredKey::decode(key, mask, hash)?) }, n)))
        .collect::<Result<_>>()?;
    Ok(DecodedGroup { keys, parts, timers })
}

/// Reads the entry parts of a section: (state index, number of entries, entries).
fn read_parts<'a>(r: &mut Reader<'a>) -> Result<Vec<(usize, usize, &'a [u8])>> {
    let n = r.u32()? as usize;
    let mut parts = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        parts.push((r.u32()? as usize, r.u32()? as usize, r.bin()?));
    }
    Ok(parts)
}

/// Reads the keys of a section as (canonical form, mask, key hash), checking that each hashes into the
/// section's key group.
fn read_keys<'a>(r: &mut Reader<'a>, group: usize, max_parallelism: usize) -> Result<Vec<(&'a [u8], u64, u64)>> {
    let n = r.u32()? as usize;
    let mut keys = Vec::with_capacity(n.min(r.rest().len()));
    for _ in 0..n {
        let (key, mask) = (r.bin()?, r.uint()?);
        let hash = codec::hash_canonical(key)?;
        if key_group(hash, max_parallelism) != group {
            return Err(EddyError::user(format!(
                "a key of the snapshot's key group {group} now hashes into key group {}: the key hash changed, so \
                 the state cannot be restored",
                key_group(hash, max_parallelism)
            )));
        }
        keys.push((key, mask, hash));
    }
    Ok(keys)
}

/// Reads the timers of a section as (domain: 0 event time, 1 processing time, time, key index, namespace).
fn read_timers(r: &mut Reader<'_>) -> Result<Vec<(usize, i64, u32, Namespace)>> {
    let mut timers = Vec::new();
    for domain in 0..2 {
        for _ in 0..r.u32()? {
            let (time, at) = (r.int()?, r.u32()?);
            timers.push((domain, time, at, r.namespace()?));
        }
    }
    if !r.is_empty() {
        return Err(corrupt("trailing bytes after a section"));
    }
    Ok(timers)
}

/// Copies `count` entries of one state into a spill batch without decoding their values.
fn copy_entries(
    batch: &mut SpillBatch,
    group: usize,
    state: u32,
    keys: &[(&[u8], u64, u64)],
    count: usize,
    r: &mut Reader<'_>,
) -> Result<()> {
    for _ in 0..count {
        let at = r.u32()? as usize;
        let (key, mask, _) = *keys.get(at).ok_or_else(|| corrupt("an entry names a key the group does not have"))?;
        let ns = r.namespace()?;
        let ts = r.int()?;
        let value = r.bin()?;
        batch.put_with(
            |out| {
                out.extend_from_slice(&(group as u32).to_be_bytes());
                out.extend_from_slice(&state.to_be_bytes());
                out.extend_from_slice(key);
                put_store_namespace(out, ns);
            },
            |out, ()| {
                put_int(out, ts);
                put_uint(out, mask);
                out.extend_from_slice(value);
                Ok(())
            },
        )?;
    }
    Ok(())
}

/// Writes the entry parts of a section.
fn write_parts<'a>(out: &mut Vec<u8>, parts: impl ExactSizeIterator<Item = (usize, usize, &'a [u8])>) {
    put_uint(out, parts.len() as u64);
    for (state, count, buf) in parts {
        put_uint(out, state as u64);
        put_uint(out, count as u64);
        put_bin(out, buf);
    }
}

/// Encodes a heap snapshot (the copy taken by [`KeyedState::snapshot`]).
fn encode_heap(
    states: &[StateMeta],
    max_parallelism: usize,
    range: KeyGroupRange,
    keys: &KeysCopy,
    tables: &[Box<dyn ErasedTable>],
    timers: &[Vec<TimerEntry>; 2],
) -> Result<Vec<u8>> {
    let n = group_count(range);
    // Each key's group (as an index into the parts) and index within its group, and the keys of each
    // group, encoded in one pass over the keys. The group comes from the key's hash rather than from the
    // per-id data; the writes to `place` (random) are preceded by reads of the chunk's entries so that
    // their cache misses overlap.
    let mut place = vec![(u32::MAX, 0u32); keys.id_bound()];
    let mut group_keys: Vec<Part> = (0..n).map(|_| Part::default()).collect();
    let mut chunk: Vec<(KeyId, &[OwnedDatum], usize)> = Vec::with_capacity(CHUNK);
    let mut referenced = keys.iter_referenced();
    loop {
        chunk.clear();
        let g = |key: &[OwnedDatum]| key_group(crate::key::hash_key(key), max_parallelism).wrapping_sub(range.start);
        chunk.extend(referenced.by_ref().take(CHUNK).map(|(id, key)| (id, key, g(key))));
        if chunk.is_empty() {
            break;
        }
        std::hint::black_box(chunk.iter().filter(|c| place.get(c.0 as usize).is_some_and(|p| p.0 == 0)).count());
        for &(id, key, g) in &chunk {
            let Some(part) = group_keys.get_mut(g) else { continue };
            place[id as usize] = (g as u32, part.count as u32);
            part.count += 1;
            codec::put_bin_header(&mut part.buf, codec::key_len(key));
            let mask = codec::put_key(&mut part.buf, key);
            put_uint(&mut part.buf, mask);
        }
    }
    let mut parts = Vec::with_capacity(tables.len());
    for t in tables {
        // Sized for small values (most state: counts, sums), so that the parts rarely grow.
        let per_part = t.len() / n.max(1) * 24;
        let mut p: Vec<Part> = (0..n).map(|_| Part { count: 0, buf: Vec::with_capacity(per_part) }).collect();
        t.write_groups(&place, &mut p)?;
        parts.push(p);
    }
    let mut group_timers: Vec<[Vec<TimerEntry>; 2]> = (0..n).map(|_| Default::default()).collect();
    for (domain, list) in timers.iter().enumerate() {
        for &t in list {
            if let Some(g) = place.get(t.1 as usize).and_then(|p| group_timers.get_mut(p.0 as usize)) {
                g[domain].push(t);
            }
        }
    }

    let size: usize = parts.iter().flatten().chain(&group_keys).map(|p| p.buf.len()).sum();
    let mut out = Vec::with_capacity(size + size / 4 + 1024);
    let groups = write_header(&mut out, max_parallelism, states);
    let mut written = 0;
    for (g, list) in group_keys.iter().enumerate() {
        if list.count == 0 {
            continue;
        }
        written += 1;
        put_array_len(&mut out, 2);
        put_uint(&mut out, (range.start + g) as u64);
        let section = Patch::bin(&mut out);
        let used: Vec<usize> = (0..tables.len()).filter(|&t| parts[t][g].count > 0).collect();
        write_parts(&mut out, used.iter().map(|&t| (t, parts[t][g].count, parts[t][g].buf.as_slice())));
        put_uint(&mut out, list.count as u64);
        out.extend_from_slice(&list.buf);
        for list in &group_timers[g] {
            write_timers(&mut out, list, |id| place[id as usize].1);
        }
        section.bin_end(&mut out)?;
    }
    groups.array_end(&mut out, written)?;
    Ok(out)
}

/// A timer of a spilling state, captured with its key in canonical form.
struct SpilledTimer {
    group: usize,
    /// 0 event time, 1 processing time.
    domain: usize,
    time: i64,
    ns: Namespace,
    key: Vec<u8>,
    mask: u64,
}

/// The distinct keys of one group of a spilled snapshot, by canonical form.
#[derive(Default)]
struct KeySet {
    bytes: Vec<u8>,
    /// (offset, length, mask) per key, by index.
    keys: Vec<(usize, usize, u64)>,
    index: HashTable<u32>,
}

impl KeySet {
    fn hash(key: &[u8]) -> u64 {
        let mut h = FxHasher::default();
        h.write(key);
        h.finish()
    }

    fn get(&self, i: u32) -> &[u8] {
        let (at, len, _) = self.keys[i as usize];
        &self.bytes[at..at + len]
    }

    /// The index of `key`, added when new.
    fn index(&mut self, key: &[u8], mask: u64) -> u32 {
        let hash = Self::hash(key);
        if let Some(&i) = self.index.find(hash, |&i| self.get(i) == key) {
            return i;
        }
        let i = self.keys.len() as u32;
        self.keys.push((self.bytes.len(), key.len(), mask));
        self.bytes.extend_from_slice(key);
        let (bytes, keys) = (&self.bytes, &self.keys);
        self.index.insert_unique(hash, i, |&j| {
            let (at, len, _) = keys[j as usize];
            Self::hash(&bytes[at..at + len])
        });
        i
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.keys.clear();
        self.index.clear();
    }
}

/// Encodes a spilling state's snapshot from its store view and captured timers, in the heap format.
fn encode_spilled(
    states: &[StateMeta],
    max_parallelism: usize,
    range: KeyGroupRange,
    view: &dyn SpillView,
    timers: &[SpilledTimer],
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let groups = write_header(&mut out, max_parallelism, states);
    let mut written = 0;
    let mut keys = KeySet::default();
    // (state, count, entries) per state with entries in the group, in state order (the store's order).
    let mut parts: Vec<(u32, usize, Vec<u8>)> = Vec::new();
    let mut timer_at = timers.partition_point(|t| t.group < range.start);
    let mut entries = Vec::new();
    for g in range.start..range.start + group_count(range) {
        keys.clear();
        parts.clear();
        let (start, end) = ((g as u32).to_be_bytes(), (g as u64 + 1).to_be_bytes());
        // The end bound as 4 bytes unless it overflows u32 (then 5 bytes sort after every key of `g`).
        let end: &[u8] = if (g as u64) < u64::from(u32::MAX) { &end[4..] } else { &[0xff; 5] };
        view.scan(&start, end, &mut |k, v| {
            let sk = parse_store_key(k)?;
            if sk.group as usize != g {
                return Err(corrupt("a spill store scan went past its key group"));
            }
            let (ts, mask, value) = parse_store_value(v)?;
            let at = keys.index(sk.key, mask);
            if parts.last().map(|p| p.0) != Some(sk.state) {
                parts.push((sk.state, 0, Vec::new()));
            }
            if let Some((_, count, buf)) = parts.last_mut() {
                put_uint(buf, u64::from(at));
                codec::put_namespace(buf, sk.ns);
                put_int(buf, ts);
                put_bin(buf, value);
                *count += 1;
            }
            Ok(())
        })?;
        let first_timer = timer_at;
        while timers.get(timer_at).is_some_and(|t| t.group == g) {
            let t = &timers[timer_at];
            keys.index(&t.key, t.mask);
            timer_at += 1;
        }
        if keys.keys.is_empty() {
            continue;
        }
        written += 1;
        put_array_len(&mut out, 2);
        put_uint(&mut out, g as u64);
        let section = Patch::bin(&mut out);
        write_parts(&mut out, parts.iter().map(|(state, count, buf)| (*state as usize, *count, buf.as_slice())));
        put_uint(&mut out, keys.keys.len() as u64);
        for i in 0..keys.keys.len() {
            put_bin(&mut out, keys.get(i as u32));
            put_uint(&mut out, keys.keys[i].2);
        }
        for domain in 0..2 {
            entries.clear();
            let group_timers = timers[first_timer..timer_at].iter().filter(|t| t.domain == domain);
            for t in group_timers {
                let at = keys.index(&t.key, t.mask);
                entries.push((t.time, at, t.ns));
            }
            write_timers(&mut out, &entries, |at| at);
        }
        section.bin_end(&mut out)?;
    }
    groups.array_end(&mut out, written)?;
    Ok(out)
}

/// Every entry and timer of a set of snapshots as sorted text lines (key group, key, state, namespace,
/// timestamp, value bytes), to compare snapshots whatever backend, parallelism or order wrote them.
pub(crate) fn dump(snapshots: &[&[u8]]) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for bytes in snapshots {
        let mut r = Reader::new(bytes);
        let (_, states) = read_header(&mut r)?;
        for _ in 0..r.array_len()? {
            r.array_len()?;
            let group = r.uint()?;
            let mut s = Reader::new(r.bin()?);
            let parts = read_parts(&mut s)?;
            let mut keys = Vec::new();
            for _ in 0..s.u32()? {
                let (key, mask) = (s.bin()?, s.uint()?);
                keys.push(format!("{:?}", codec::decode_key(key, mask)?));
            }
            let key = |at: u32| keys.get(at as usize).cloned().ok_or_else(|| corrupt("key index"));
            for (state, count, entries) in parts {
                let name = states.get(state).map_or("?", |s| s.name.as_str());
                let mut e = Reader::new(entries);
                for _ in 0..count {
                    let k = key(e.u32()?)?;
                    let (Namespace { start, end }, ts) = (e.namespace()?, e.int()?);
                    let value = e.bin()?;
                    lines.push(format!("g{group} {k} {name} [{start},{end}) ts={ts} value={value:02x?}"));
                }
                if !e.is_empty() {
                    return Err(corrupt("trailing bytes after entries"));
                }
            }
            for domain in ["event", "processing"] {
                for _ in 0..s.u32()? {
                    let (time, k) = (s.int()?, key(s.u32()?)?);
                    let Namespace { start, end } = s.namespace()?;
                    lines.push(format!("g{group} {k} {domain} timer {time} [{start},{end})"));
                }
            }
            if !s.is_empty() {
                return Err(corrupt("trailing bytes after a section"));
            }
        }
    }
    lines.sort();
    Ok(lines)
}

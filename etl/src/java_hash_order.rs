//! The iteration order of Java's `HashMap<String, _>`.
//!
//! CAoA serialised `custom_parameters_json_str` and `user_properties_json_str` with Jackson
//! from `java.util.HashMap`s, so the members of those JSON strings appear in hash-bucket order,
//! not in the order the SDK sent them. We reproduce that order so that our files are
//! byte-identical to CAoA's (queries that compare or hash these strings keep working). Only the
//! order is simulated: String.hashCode, the bit spreading, the power-of-two tables and the
//! order-preserving splits on resize of OpenJDK's HashMap (no tree bins: they only appear with
//! eight colliding keys in one bucket, far beyond the maps of one event).

/// A map that knows where Java's HashMap would iterate each key.
///
/// Only the table's capacity is simulated, not its buckets: a key is appended to the end of
/// its bucket, and a resize splits each bucket into two while keeping their order, so a
/// bucket always lists its keys in insertion order, and the iteration order is the insertion
/// order stably sorted by bucket index at the final capacity.
pub struct JavaHashMapOrder<V> {
    /// (spread hash, key, value), in the order the keys were first inserted.
    entries: Vec<(u32, String, V)>,
    /// Table capacity; 0 before the first insertion.
    capacity: usize,
    threshold: usize,
}

const DEFAULT_CAPACITY: usize = 16;
const LOAD_FACTOR: f64 = 0.75;
const MAXIMUM_CAPACITY: usize = 1 << 30;

/// `String.hashCode()`: over UTF-16 code units, wrapping.
fn java_string_hash(key: &str) -> u32 {
    key.encode_utf16().fold(0u32, |hash, unit| hash.wrapping_mul(31).wrapping_add(unit as u32))
}

/// `HashMap.hash()`: the high bits folded into the low ones.
fn spread(hash: u32) -> u32 {
    hash ^ (hash >> 16)
}

/// `HashMap.tableSizeFor()`: the next power of two.
fn table_size_for(capacity: usize) -> usize {
    capacity.max(1).next_power_of_two().min(MAXIMUM_CAPACITY)
}

impl<V> Default for JavaHashMapOrder<V> {
    fn default() -> Self {
        JavaHashMapOrder { entries: Vec::new(), capacity: 0, threshold: 0 }
    }
}

impl<V> JavaHashMapOrder<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `HashMap.resize()`: the new capacity and threshold.
    fn resize(&mut self) {
        let (capacity, threshold) = if self.capacity > 0 {
            let capacity = self.capacity * 2;
            let threshold = if self.capacity >= DEFAULT_CAPACITY { self.threshold * 2 } else { (capacity as f64 * LOAD_FACTOR) as usize };
            (capacity, threshold)
        } else if self.threshold > 0 {
            (self.threshold, (self.threshold as f64 * LOAD_FACTOR) as usize)
        } else {
            (DEFAULT_CAPACITY, (DEFAULT_CAPACITY as f64 * LOAD_FACTOR) as usize)
        };
        self.capacity = capacity;
        self.threshold = threshold;
    }

    /// `HashMap.put`: a new key goes to the end of its bucket; an existing key keeps its place.
    pub fn put(&mut self, key: String, value: V) {
        if self.capacity == 0 {
            self.resize();
        }
        if let Some(entry) = self.entries.iter_mut().find(|entry| entry.1 == key) {
            entry.2 = value;
            return;
        }
        self.entries.push((spread(java_string_hash(&key)), key, value));
        if self.entries.len() > self.threshold {
            self.resize();
        }
    }

    /// `HashMap.putAll`: sizes the table for the incoming entries first, then puts them.
    pub fn put_all(&mut self, entries: Vec<(String, V)>) {
        let incoming = entries.len();
        if incoming == 0 {
            return;
        }
        if self.capacity == 0 {
            let wanted = (incoming as f64 / LOAD_FACTOR + 1.0) as usize;
            if wanted > self.threshold {
                self.threshold = table_size_for(wanted);
            }
        } else {
            while incoming > self.threshold && self.capacity < MAXIMUM_CAPACITY {
                self.resize();
            }
        }
        for (key, value) in entries {
            self.put(key, value);
        }
    }

    /// The entries in the order Java's HashMap iterates them.
    pub fn into_entries(mut self) -> Vec<(String, V)> {
        let mask = self.capacity.saturating_sub(1) as u32;
        self.entries.sort_by_key(|entry| entry.0 & mask);
        self.entries.into_iter().map(|(_, key, value)| (key, value)).collect()
    }
}

/// The order Java iterates a `HashMap` filled with `keys` in the given order (duplicates: the
/// first place wins, the last value).
pub fn java_hash_map_from<V>(entries: impl IntoIterator<Item = (String, V)>) -> JavaHashMapOrder<V> {
    let mut map = JavaHashMapOrder::new();
    for (key, value) in entries {
        map.put(key, value);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hashes_match_java() {
        // Values of "…".hashCode() as Java prints them (as unsigned bits).
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hashCode") as i32, 147696667);
        assert_eq!(java_string_hash("é") , 0xE9);
    }

    /// Java's HashMap as it is: a table of buckets, resized by splitting each bucket.
    struct BucketModel {
        table: Vec<Vec<(u32, String)>>,
        size: usize,
        threshold: usize,
    }

    impl BucketModel {
        fn resize(&mut self) {
            let old = self.table.len();
            let (capacity, threshold) = if old > 0 {
                (old * 2, if old >= 16 { self.threshold * 2 } else { (old * 2) * 3 / 4 })
            } else if self.threshold > 0 {
                (self.threshold, self.threshold * 3 / 4)
            } else {
                (16, 12)
            };
            let mut table: Vec<Vec<(u32, String)>> = (0..capacity).map(|_| Vec::new()).collect();
            for (index, bucket) in std::mem::take(&mut self.table).into_iter().enumerate() {
                for entry in bucket {
                    let target = if entry.0 as usize & old == 0 { index } else { index + old };
                    table[target].push(entry);
                }
            }
            self.table = table;
            self.threshold = threshold;
        }

        fn put(&mut self, key: String) {
            if self.table.is_empty() {
                self.resize();
            }
            let hash = spread(java_string_hash(&key));
            let bucket = hash as usize & (self.table.len() - 1);
            if self.table[bucket].iter().any(|entry| entry.1 == key) {
                return;
            }
            self.table[bucket].push((hash, key));
            self.size += 1;
            if self.size > self.threshold {
                self.resize();
            }
        }

        fn keys(self) -> Vec<String> {
            self.table.into_iter().flatten().map(|(_, key)| key).collect()
        }
    }

    #[test]
    fn the_order_equals_a_bucket_by_bucket_simulation() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for round in 0..300 {
            let count = next() % 60;
            let keys: Vec<String> = (0..count).map(|_| format!("k{}_{}", next() % 90, round % 3)).collect();
            let mut model = BucketModel { table: Vec::new(), size: 0, threshold: 0 };
            for key in &keys {
                model.put(key.clone());
            }
            let ours: Vec<String> = java_hash_map_from(keys.iter().map(|key| (key.clone(), ()))).into_entries().into_iter().map(|(key, _)| key).collect();
            assert_eq!(ours, model.keys(), "keys {keys:?}");
        }
    }

    /// The fixture `transform_v3_event.json` lists its custom parameters in this order: top-level
    /// unknown keys then attribute unknown keys, each through its own HashMap, then `putAll`
    /// into a fresh one, as CAoA's parser does.
    #[test]
    fn the_caoa_fixture_order_is_reproduced() {
        let top_level = ["hashCode", "event_sequence_id", "country_code"];
        let attributes = [
            "_traffic_source_name",
            "_privacy_info_ads_storage",
            "_privacy_info_analytics_storage",
            "_privacy_info_uses_transient_token",
            "_channel",
            "_device_vendor_id",
            "_device_advertising_id",
            "_error_name_invalid",
            "_error_name_length_exceed",
            "_error_value_length_exceed",
            "_error_attribute_size_exceed",
            "_is_first_day",
        ];
        let through_hash_maps = |keys: &[&str]| {
            let collected = java_hash_map_from(keys.iter().map(|key| (key.to_string(), ())));
            java_hash_map_from(collected.into_entries()).into_entries()
        };
        let mut combined = JavaHashMapOrder::new();
        combined.put_all(through_hash_maps(&top_level));
        combined.put_all(through_hash_maps(&attributes));
        let order: Vec<String> = combined.into_entries().into_iter().map(|(key, _)| key).collect();
        assert_eq!(
            order,
            [
                "_device_advertising_id",
                "_error_name_length_exceed",
                "_error_attribute_size_exceed",
                "_device_vendor_id",
                "_traffic_source_name",
                "_error_value_length_exceed",
                "_error_name_invalid",
                "country_code",
                "_privacy_info_analytics_storage",
                "hashCode",
                "_privacy_info_uses_transient_token",
                "_privacy_info_ads_storage",
                "_is_first_day",
                "event_sequence_id",
                "_channel",
            ]
        );
    }
}

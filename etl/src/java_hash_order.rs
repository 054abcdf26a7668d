//! The iteration order of Java's `HashMap<String, _>`.
//!
//! CAoA serialised `custom_parameters_json_str` and `user_properties_json_str` with Jackson
//! from `java.util.HashMap`s, so the members of those JSON strings appear in hash-bucket order,
//! not in the order the SDK sent them. We reproduce that order so that our files are
//! byte-identical to CAoA's (queries that compare or hash these strings keep working). Only the
//! order is simulated: String.hashCode, the bit spreading, the power-of-two tables and the
//! order-preserving splits on resize of OpenJDK's HashMap (no tree bins: they only appear with
//! eight colliding keys in one bucket, far beyond the maps of one event).

/// A map that remembers where Java's HashMap would iterate each key.
pub struct JavaHashMapOrder<V> {
    table: Vec<Vec<(u32, String, V)>>,
    size: usize,
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
        JavaHashMapOrder { table: Vec::new(), size: 0, threshold: 0 }
    }
}

impl<V> JavaHashMapOrder<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    fn resize(&mut self) {
        let old_capacity = self.table.len();
        let (new_capacity, new_threshold) = if old_capacity > 0 {
            let new_capacity = old_capacity * 2;
            let threshold = if old_capacity >= DEFAULT_CAPACITY { self.threshold * 2 } else { (new_capacity as f64 * LOAD_FACTOR) as usize };
            (new_capacity, threshold)
        } else if self.threshold > 0 {
            (self.threshold, (self.threshold as f64 * LOAD_FACTOR) as usize)
        } else {
            (DEFAULT_CAPACITY, (DEFAULT_CAPACITY as f64 * LOAD_FACTOR) as usize)
        };
        let mut new_table: Vec<Vec<(u32, String, V)>> = (0..new_capacity).map(|_| Vec::new()).collect();
        for (index, bucket) in std::mem::take(&mut self.table).into_iter().enumerate() {
            // Each bucket splits into a "low" and a "high" half, keeping relative order.
            for entry in bucket {
                let target = if entry.0 as usize & old_capacity == 0 { index } else { index + old_capacity };
                new_table[target].push(entry);
            }
        }
        self.table = new_table;
        self.threshold = new_threshold;
    }

    /// `HashMap.put`: a new key goes to the end of its bucket; an existing key keeps its place.
    pub fn put(&mut self, key: String, value: V) {
        let hash = spread(java_string_hash(&key));
        if self.table.is_empty() {
            self.resize();
        }
        let bucket_index = hash as usize & (self.table.len() - 1);
        let bucket = &mut self.table[bucket_index];
        if let Some(entry) = bucket.iter_mut().find(|entry| entry.1 == key) {
            entry.2 = value;
            return;
        }
        bucket.push((hash, key, value));
        self.size += 1;
        if self.size > self.threshold {
            self.resize();
        }
    }

    /// `HashMap.putAll`: sizes the table for the incoming entries first, then puts them.
    pub fn put_all(&mut self, entries: Vec<(String, V)>) {
        let incoming = entries.len();
        if incoming == 0 {
            return;
        }
        if self.table.is_empty() {
            let wanted = (incoming as f64 / LOAD_FACTOR + 1.0) as usize;
            if wanted > self.threshold {
                self.threshold = table_size_for(wanted);
            }
        } else {
            while incoming > self.threshold && self.table.len() < MAXIMUM_CAPACITY {
                self.resize();
            }
        }
        for (key, value) in entries {
            self.put(key, value);
        }
    }

    /// The entries in the order Java's HashMap iterates them.
    pub fn into_entries(self) -> Vec<(String, V)> {
        self.table.into_iter().flatten().map(|(_, key, value)| (key, value)).collect()
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

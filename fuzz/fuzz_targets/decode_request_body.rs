//! Fuzzes what the collector does with an untrusted request body: base64/gzip decoding with the
//! bomb guard, the allocation-free event check, and the full event parse the ETL uses. Nothing
//! may panic, and a body the collector accepts must parse in the ETL to the same events.
#![no_main]

use clickstream_core::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&flags, body)) = input.split_first() else { return };
    let compressed = flags & 1 == 1;
    if flags & 2 == 2 {
        let _ = wire::gunzip(body, 1 << 20);
    }
    let Ok(json) = wire::decode_body(body, compressed, 1 << 20) else { return };
    let parsed = wire::parse_events(&json);
    if let Ok(count) = wire::count_valid_events(&json) {
        let events = parsed.expect("a body the collector accepts must parse in the ETL");
        assert_eq!(count, events.len());
    }
});

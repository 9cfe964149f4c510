//! The sync socket's message decoder: any packet gives a message or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = common::sync::decode(data);
});

//! Arbitrary datagrams as DNS answers: the decoder reads untrusted network input and must
//! never panic or loop.
#![no_main]

use edgegap_agent::platform::dns::decode_answer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = data.first().map_or(0, |b| u16::from(*b));
    for qtype in [1, 28] {
        let _ = decode_answer(id, data, qtype);
    }
});

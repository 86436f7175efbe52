//! Telnet NVT decoder and line framing: arbitrary bytes in arbitrary chunks. Checks the line-length bound,
//! the buffer bound, and that chunking does not change what is decoded.
#![no_main]

use ferry_proto::telnet::{ControlDecoder, ControlInput};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 64;

fn decode(chunks: &mut dyn Iterator<Item = &[u8]>) -> Vec<ControlInput> {
    let mut d = ControlDecoder::new(MAX);
    let mut out = Vec::new();
    for chunk in chunks {
        d.push(chunk);
        while let Some(input) = d.next() {
            if let ControlInput::Line(l) = &input {
                assert!(l.len() <= MAX, "line of {} bytes", l.len());
                assert!(!l.contains(&b'\n'), "LF inside a line");
            }
            if let ControlInput::Respond(r) = &input {
                assert_eq!(r.first(), Some(&0xFF), "{r:?}");
            }
            // Option refusals may be grouped differently by chunking; only their bytes matter.
            match (out.last_mut(), input) {
                (Some(ControlInput::Respond(prev)), ControlInput::Respond(more)) => prev.extend(more),
                (_, input) => out.push(input),
            }
        }
        assert!(d.buffered() <= MAX, "{} bytes buffered", d.buffered());
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let whole = decode(&mut std::iter::once(bytes));
    let size = usize::from(split % 16) + 1;
    let chunked = decode(&mut bytes.chunks(size));
    assert_eq!(whole, chunked, "chunks of {size} decode differently");
});

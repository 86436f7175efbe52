//! The client-side parsers: replies from a server (line by line), LIST/MLSD listing lines and checksum
//! replies (HASH, XSHA256…). Arbitrary bytes never panic; every reply has a valid code and bounded lines;
//! every parsed entry's name is a non-empty part of its line; a parsed digest has its algorithm's length.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use ferry_proto::hash::{parse_hash_reply, parse_xhash_reply, Algorithm};
use ferry_proto::listing_parser::{parse_list_line, parse_mlsd_line};
use ferry_proto::reply_parser::{ReplyParser, MAX_REPLY_LINES};
use libfuzzer_sys::fuzz_target;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let mut parser = ReplyParser::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(Some(reply)) = parser.push_line(line) {
            assert!((100..600).contains(&reply.code().0));
            assert!(reply.lines().len() <= MAX_REPLY_LINES + 1);
        }
    }
    let now = UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    for line in data.split(|&b| b == b'\n') {
        for entry in [parse_list_line(line, now), parse_mlsd_line(line)].into_iter().flatten() {
            assert!(!entry.name.is_empty());
            assert!(contains(line, &entry.name), "{line:?} -> {:?}", entry.name);
        }
        let text = String::from_utf8_lossy(line);
        if let Some(h) = parse_hash_reply(&text) {
            assert_eq!(h.digest.len(), h.algorithm.digest_len());
        }
        for a in Algorithm::ALL {
            if let Some(d) = parse_xhash_reply(a, &text) {
                assert_eq!(d.len(), a.digest_len());
            }
        }
    }
});

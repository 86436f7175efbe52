//! The command parser: arbitrary lines. Must never panic; verbs are case-insensitive.
#![no_main]

use ferry_proto::command::Command;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let parsed = Command::parse(line);
    if let Ok(cmd) = &parsed {
        let _ = cmd.verb();
    }
    // Upper-casing the verb (the bytes before the first space) changes nothing for known verbs.
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let mut upper = line.to_vec();
    upper[..end].make_ascii_uppercase();
    let again = Command::parse(&upper);
    match (&parsed, &again) {
        (Ok(Command::Unknown(_)), _) | (_, Ok(Command::Unknown(_))) => {}
        (a, b) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{line:?}"),
    }
});

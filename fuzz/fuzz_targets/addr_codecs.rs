//! PORT/EPRT arguments and PASV/EPSV replies: parse arbitrary text without panicking, and round-trip
//! every address built from the input bytes (format then parse gives the same address).
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use ferry_proto::addr::{
    format_eprt_arg, format_epsv_reply, format_pasv_reply, format_port_arg, parse_eprt_arg, parse_epsv_arg,
    parse_epsv_reply, parse_pasv_reply, parse_port_arg,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Parsers on arbitrary text.
    let text = String::from_utf8_lossy(data);
    if let Ok(a) = parse_port_arg(&text) {
        assert_eq!(parse_port_arg(&format_port_arg(a)), Ok(a));
    }
    if let Ok(a) = parse_eprt_arg(&text) {
        assert_eq!(parse_eprt_arg(&format_eprt_arg(a)), Ok(a));
    }
    if let Ok(a) = parse_pasv_reply(&text) {
        assert_eq!(parse_pasv_reply(&format_pasv_reply(a)), Ok(a));
    }
    if let Ok(p) = parse_epsv_reply(&text) {
        assert_eq!(parse_epsv_reply(&format_epsv_reply(p)), Ok(p));
    }
    let _ = parse_epsv_arg(Some(&text));

    // Round trips of addresses made from the bytes.
    let mut b = [0u8; 18];
    for (dst, src) in b.iter_mut().zip(data) {
        *dst = *src;
    }
    let port = u16::from_be_bytes([b[0], b[1]]);
    let v4 = SocketAddrV4::new(Ipv4Addr::new(b[2], b[3], b[4], b[5]), port);
    assert_eq!(parse_port_arg(&format_port_arg(v4)), Ok(v4));
    assert_eq!(parse_pasv_reply(&format_pasv_reply(v4)), Ok(v4));
    // EPRT and EPSV refuse port 0 by design (RFC 2428 leaves it meaningless).
    let eport = port.max(1);
    let v4e = SocketAddr::V4(SocketAddrV4::new(*v4.ip(), eport));
    assert_eq!(parse_eprt_arg(&format_eprt_arg(v4e)), Ok(v4e));
    assert_eq!(
        parse_eprt_arg(&format_eprt_arg(SocketAddr::V4(SocketAddrV4::new(*v4.ip(), 0)))).ok(),
        None
    );
    let mut v6 = [0u8; 16];
    v6.copy_from_slice(&b[2..18]);
    let v6 = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(v6), eport, 0, 0));
    let back = parse_eprt_arg(&format_eprt_arg(v6));
    assert_eq!(back, Ok(v6), "{}", format_eprt_arg(v6));
    assert_eq!(parse_epsv_reply(&format_epsv_reply(eport)), Ok(eport));
});

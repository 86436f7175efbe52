//! `TYPE A` (ASCII) line-ending conversion for the data connection, streaming across chunk boundaries.
//!
//! Files are stored with Unix line endings (`LF`); the network form is `CRLF` (RFC 959 §3.1.1.1).
//! [`ToNetwork`] converts for sending (RETR, LIST), [`FromNetwork`] for storing (STOR, APPE). Both keep just
//! enough state (one flag) that splitting the input into chunks anywhere gives the same output as
//! converting it in one piece.
//!
//! What it does not do: character-set conversion, `SIZE`/`REST` offset translation for ASCII mode, or any
//! I/O. Bytes other than `CR` and `LF` pass through untouched.

/// Converts stored text to the network form: every `LF` not already preceded by `CR` becomes `CRLF`.
#[derive(Debug, Default)]
pub struct ToNetwork {
    /// The last byte of the previous chunk was `CR`.
    last_was_cr: bool,
}

impl ToNetwork {
    /// A converter at the start of a file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Convert one chunk, appending to `out`. A `CRLF` already present (even split across chunks) is kept
    /// as is, not doubled.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 16);
        let mut prev_cr = self.last_was_cr;
        let mut rest = input;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (before, after) = rest.split_at(pos);
            out.extend_from_slice(before);
            let cr_before = before.last().map_or(prev_cr, |&b| b == b'\r');
            if !cr_before {
                out.push(b'\r');
            }
            out.push(b'\n');
            prev_cr = false;
            rest = after.get(1..).unwrap_or_default();
        }
        out.extend_from_slice(rest);
        self.last_was_cr = rest.last().map_or(prev_cr, |&b| b == b'\r');
    }
}

/// Converts network text to the stored form: `CRLF` becomes `LF`; a `CR` not followed by `LF` is kept.
#[derive(Debug, Default)]
pub struct FromNetwork {
    /// A `CR` ended the previous chunk and has not been written yet.
    pending_cr: bool,
}

impl FromNetwork {
    /// A converter at the start of a file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Convert one chunk, appending to `out`. A `CR` at the end of the chunk is held back until the next
    /// byte shows whether it starts a `CRLF`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + 1);
        let mut rest = input;
        if self.pending_cr {
            match rest.first() {
                None => return,
                Some(b'\n') => {}
                Some(_) => out.push(b'\r'),
            }
            self.pending_cr = false;
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\r') {
            let (before, after) = rest.split_at(pos);
            out.extend_from_slice(before);
            match after.get(1) {
                None => {
                    self.pending_cr = true;
                    return;
                }
                Some(b'\n') => {}
                Some(_) => out.push(b'\r'),
            }
            rest = after.get(1..).unwrap_or_default();
        }
        out.extend_from_slice(rest);
    }

    /// End of input: write a `CR` still held back, if any.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            out.push(b'\r');
            self.pending_cr = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_net(chunks: &[&[u8]]) -> Vec<u8> {
        let mut c = ToNetwork::new();
        let mut out = Vec::new();
        for chunk in chunks {
            c.convert(chunk, &mut out);
        }
        out
    }

    fn from_net(chunks: &[&[u8]]) -> Vec<u8> {
        let mut c = FromNetwork::new();
        let mut out = Vec::new();
        for chunk in chunks {
            c.convert(chunk, &mut out);
        }
        c.finish(&mut out);
        out
    }

    /// Every way of cutting `input` into two or three chunks, plus byte-by-byte.
    fn chunkings(input: &[u8]) -> Vec<Vec<&[u8]>> {
        let mut all = vec![input.chunks(1).collect::<Vec<_>>()];
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let (a, rest) = input.split_at(i);
                let (b, c) = rest.split_at(j - i);
                all.push(vec![a, b, c]);
            }
        }
        all
    }

    #[test]
    fn lf_becomes_crlf_for_sending() {
        assert_eq!(to_net(&[b"a\nb\n\n"]), b"a\r\nb\r\n\r\n");
    }

    #[test]
    fn existing_crlf_is_not_doubled_for_sending() {
        assert_eq!(to_net(&[b"a\r\nb\n"]), b"a\r\nb\r\n");
        assert_eq!(to_net(&[b"a\r", b"\nb"]), b"a\r\nb");
        assert_eq!(to_net(&[b"\r", b"", b"\n"]), b"\r\n");
    }

    #[test]
    fn lone_cr_passes_through_for_sending() {
        assert_eq!(to_net(&[b"a\rb\r"]), b"a\rb\r");
        assert_eq!(to_net(&[b"\r\r\n"]), b"\r\r\n");
    }

    #[test]
    fn crlf_becomes_lf_for_storing() {
        assert_eq!(from_net(&[b"a\r\nb\r\n"]), b"a\nb\n");
    }

    #[test]
    fn lone_cr_and_bare_lf_are_kept_for_storing() {
        assert_eq!(from_net(&[b"a\rb\nc\r\r\n"]), b"a\rb\nc\r\n");
    }

    #[test]
    fn trailing_cr_is_held_until_the_next_chunk() {
        let mut c = FromNetwork::new();
        let mut out = Vec::new();
        c.convert(b"line\r", &mut out);
        assert_eq!(out, b"line");
        c.convert(b"", &mut out);
        assert_eq!(out, b"line");
        c.convert(b"\nx", &mut out);
        assert_eq!(out, b"line\nx");
    }

    #[test]
    fn held_cr_is_flushed_by_finish() {
        assert_eq!(from_net(&[b"end\r"]), b"end\r");
        assert_eq!(from_net(&[b"end\r", b"x"]), b"end\rx");
    }

    #[test]
    fn binary_bytes_pass_through() {
        let all: Vec<u8> = (0u8..=255).filter(|&b| b != b'\r' && b != b'\n').collect();
        assert_eq!(to_net(&[&all]), all);
        assert_eq!(from_net(&[&all]), all);
    }

    #[test]
    fn any_chunking_gives_the_one_shot_result() {
        let samples: [&[u8]; 6] = [
            b"a\nb\r\nc\rd\r\r\n\n\re",
            b"\r\n\r\n\r\r\n\n\n",
            b"\r",
            b"\n",
            b"plain text",
            b"x\r\ny\r",
        ];
        for input in samples {
            let want_to = to_net(&[input]);
            let want_from = from_net(&[input]);
            for chunks in chunkings(input) {
                assert_eq!(to_net(&chunks), want_to, "{chunks:?}");
                assert_eq!(from_net(&chunks), want_from, "{chunks:?}");
            }
        }
    }

    #[test]
    fn random_chunking_of_random_text_matches_one_shot() {
        let mut seed = 0xdead_beef_cafe_f00d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..500 {
            let len = (next() % 64) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| match next() % 4 {
                    0 => b'\r',
                    1 => b'\n',
                    _ => b'a',
                })
                .collect();
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = ((next() % 5) as usize).min(rest.len());
                let (a, b) = rest.split_at(n);
                chunks.push(a);
                rest = b;
            }
            assert_eq!(to_net(&chunks), to_net(&[&input]));
            assert_eq!(from_net(&chunks), from_net(&[&input]));
        }
    }

    #[test]
    fn storing_what_was_sent_restores_unix_text() {
        let unix = b"one\ntwo\n\nthree\rstill three\n";
        assert_eq!(from_net(&[&to_net(&[unix])]), unix);
    }
}

//! Wildcards in the last component of a LIST/NLST argument (`NLST *.txt`, as `mget` sends).
//!
//! Only `*` (any run of bytes) and `?` (one byte) are special; there are no character classes, no
//! escapes and no wildcards in directory components. Matching is iterative with single-star
//! backtracking, so its cost is bounded by `pattern.len() * name.len()` whatever the input: no pattern
//! can make it exponential.

/// True if `component` contains a wildcard.
pub fn has_wildcard(component: &[u8]) -> bool {
    component.iter().any(|&b| b == b'*' || b == b'?')
}

/// True if `name` matches `pattern`.
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    // Position of the last `*` seen and the name position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == name.get(n) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&b| b == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark_match_as_in_a_shell() {
        assert!(matches(b"*.txt", b"a.txt"));
        assert!(matches(b"*.txt", b".txt"));
        assert!(!matches(b"*.txt", b"a.txt.gz"));
        assert!(matches(b"a?c", b"abc"));
        assert!(!matches(b"a?c", b"ac"));
        assert!(matches(b"*", b""));
        assert!(matches(b"**a**", b"xxaxx"));
        assert!(matches(b"a*b*c", b"aXbYbZc"));
        assert!(!matches(b"a*b*c", b"aXbYbZ"));
        assert!(matches(b"plain", b"plain"));
        assert!(!matches(b"plain", b"plainer"));
    }

    #[test]
    fn pathological_patterns_finish_quickly() {
        let name = vec![b'a'; 4096];
        let mut pattern = b"*a".repeat(100);
        pattern.push(b'b');
        let start = std::time::Instant::now();
        assert!(!matches(&pattern, &name));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn wildcard_detection() {
        assert!(has_wildcard(b"*.c"));
        assert!(has_wildcard(b"a?"));
        assert!(!has_wildcard(b"a[b]"));
    }
}

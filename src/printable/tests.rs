//! Client bytes in log lines.

use crate::printable::printable;

#[test]
fn logged_hosts_cannot_forge_lines_or_escape_sequences() {
    assert_eq!(printable(b"api.openai.com", 256), "api.openai.com");
    assert_eq!(
        printable(b"evil.com\r\n[critical] forged\x1b[31m", 256),
        "evil.com\\x0d\\x0a[critical]\\x20forged\\x1b[31m"
    );
    assert_eq!(printable(b"a\\b", 256), "a\\x5cb");
    assert_eq!(printable("h\u{e9}".as_bytes(), 256), "h\\xc3\\xa9");
    assert_eq!(printable(&[b'a'; 300], 4), "aaaa...");
}

use super::*;

/// Hands out its input a few bytes per read.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.len().min(buf.len()).min(self.1);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn lines_across_reads_keep_following_bytes() {
    for step in [1, 2, 3, 7, 100] {
        let mut r = Trickle(b"GET / HTTP/1.1\r\nHost: x\n\r\nBODY", step);
        let mut ib = InBuf::new(4);
        let mut line = Vec::new();
        assert_eq!(
            ib.read_line(&mut r, &mut line, 100).unwrap(),
            Line::Complete
        );
        assert_eq!(line, b"GET / HTTP/1.1");
        assert_eq!(
            ib.read_line(&mut r, &mut line, 100).unwrap(),
            Line::Complete
        );
        assert_eq!(line, b"Host: x");
        assert_eq!(
            ib.read_line(&mut r, &mut line, 100).unwrap(),
            Line::Complete
        );
        assert_eq!(line, b"");
        let mut rest = Vec::new();
        loop {
            let chunk = ib.take(&mut r, 3).unwrap();
            if chunk.is_empty() {
                break;
            }
            rest.extend_from_slice(chunk);
        }
        assert_eq!(rest, b"BODY");
        assert_eq!(
            ib.read_line(&mut r, &mut line, 100).unwrap(),
            Line::Eof { partial: false }
        );
        assert_eq!(ib.total, 30);
    }
}

#[test]
fn line_limits() {
    let mut ib = InBuf::new(16);
    let mut line = Vec::new();
    let mut r = Trickle(b"12345\r\n123456\r\n1234567", 100);
    assert_eq!(ib.read_line(&mut r, &mut line, 5).unwrap(), Line::Complete);
    assert_eq!(ib.read_line(&mut r, &mut line, 5).unwrap(), Line::TooLong);
    assert_eq!(ib.read_line(&mut r, &mut line, 5).unwrap(), Line::TooLong);
    let mut r = Trickle(b"abc", 100);
    let mut ib = InBuf::new(16);
    assert_eq!(
        ib.read_line(&mut r, &mut line, 5).unwrap(),
        Line::Eof { partial: true }
    );
}

#[test]
fn field_lines() {
    assert_eq!(
        parse_field_line(b"Host:  example.com \t"),
        Some(("Host", "example.com".into()))
    );
    assert_eq!(
        parse_field_line(b"X-Empty:"),
        Some(("X-Empty", String::new()))
    );
    assert_eq!(parse_field_line(b"Host : x"), None);
    assert_eq!(parse_field_line(b" Host: x"), None);
    assert_eq!(parse_field_line(b"no colon"), None);
    assert_eq!(parse_field_line(b": x"), None);
    assert_eq!(parse_field_line(b"A: x\ry"), None);
    assert!(list_contains("keep-alive, Close", "close"));
    assert!(!list_contains("closed", "close"));
    assert_eq!(parse_decimal("0012"), Some(12));
    assert_eq!(parse_decimal("+1"), None);
    assert_eq!(parse_decimal("99999999999999999999999"), None);
}

//! Rows for `COPY … FROM STDIN` in PostgreSQL's text format.
//!
//! Columns are separated by a tab and rows end with a newline; inside a value a backslash, tab,
//! newline or carriage return must be written as a backslash escape. Values never contain NUL
//! (PostgreSQL text cannot hold it), which the caller checks before encoding.

use uuid::Uuid;

/// A buffer of COPY text rows, sent to the server in chunks.
#[derive(Debug, Default)]
pub(super) struct CopyRows {
    buf: Vec<u8>,
    /// Whether the row in progress has a value yet (the next one needs a tab before it).
    row_started: bool,
}

impl CopyRows {
    pub(super) fn with_capacity(bytes: usize) -> Self {
        CopyRows {
            buf: Vec::with_capacity(bytes),
            row_started: false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The complete rows so far, leaving the buffer empty (with its capacity) for the next chunk.
    pub(super) fn take(&mut self) -> Vec<u8> {
        debug_assert!(!self.row_started, "a chunk ends with a complete row");
        let capacity = self.buf.capacity();
        std::mem::replace(&mut self.buf, Vec::with_capacity(capacity))
    }

    fn separator(&mut self) {
        if self.row_started {
            self.buf.push(b'\t');
        }
        self.row_started = true;
    }

    pub(super) fn int(&mut self, value: i64) {
        self.separator();
        self.buf.extend_from_slice(value.to_string().as_bytes());
    }

    pub(super) fn uuid(&mut self, value: Uuid) {
        self.separator();
        self.buf.extend_from_slice(
            value
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .as_bytes(),
        );
    }

    /// A text (or json, or timestamptz) value, escaped. `value` must not contain NUL.
    pub(super) fn text(&mut self, value: &str) {
        debug_assert!(!value.contains('\0'), "COPY text cannot carry NUL");
        self.separator();
        let bytes = value.as_bytes();
        let mut clean_from = 0;
        for (i, byte) in bytes.iter().enumerate() {
            let escaped: &[u8] = match byte {
                b'\\' => b"\\\\",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                _ => continue,
            };
            self.buf.extend_from_slice(&bytes[clean_from..i]);
            self.buf.extend_from_slice(escaped);
            clean_from = i + 1;
        }
        self.buf.extend_from_slice(&bytes[clean_from..]);
    }

    /// A bytea value in hex form (`\x…`, its backslash escaped for COPY).
    pub(super) fn bytea(&mut self, value: &[u8]) {
        self.separator();
        self.buf.extend_from_slice(b"\\\\x");
        self.buf.extend_from_slice(hex::encode(value).as_bytes());
    }

    pub(super) fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.row_started = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_characters_are_escaped_and_values_separated_by_tabs() {
        let mut rows = CopyRows::default();
        rows.int(-7);
        rows.text("a\\b\tc\nd\re");
        rows.bytea(&[0x00, 0xff]);
        rows.uuid(Uuid::nil());
        rows.end_row();
        assert_eq!(
            String::from_utf8(rows.take()).unwrap(),
            "-7\ta\\\\b\\tc\\nd\\re\t\\\\x00ff\t00000000-0000-0000-0000-000000000000\n"
        );
    }

    #[test]
    fn json_with_escaped_quotes_and_unicode_passes_through() {
        let mut rows = CopyRows::default();
        rows.text(r#"{"name":"Mpho \"M\" Mokoena","place":"Ha Makebe ü"}"#);
        rows.end_row();
        assert_eq!(
            String::from_utf8(rows.take()).unwrap(),
            "{\"name\":\"Mpho \\\\\"M\\\\\" Mokoena\",\"place\":\"Ha Makebe ü\"}\n"
        );
    }
}

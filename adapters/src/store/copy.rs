//! Rows for `COPY … FROM STDIN WITH (FORMAT binary)`.
//!
//! The binary format sends every value length-prefixed in the type's wire form: no escaping on
//! the way out and no text parsing of integers, uuids, timestamps or bytea on the server. Text
//! and json values go as their UTF-8 bytes (json is still validated by the server). Layout: a
//! fixed header, then per row a 16-bit field count and per field a 32-bit length and the bytes,
//! then a trailer of -1. Text values never contain NUL (PostgreSQL text cannot hold it), which
//! the caller checks before encoding.

use uuid::Uuid;

/// The signature, flags (no OIDs) and header extension length (none) of a binary COPY stream.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 00:00:00 UTC).
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// A buffer of binary COPY rows, sent to the server in chunks.
#[derive(Debug)]
pub(crate) struct BinaryCopy {
    buf: Vec<u8>,
}

impl BinaryCopy {
    /// A stream starting with the header.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(HEADER.len()));
        buf.extend_from_slice(HEADER);
        BinaryCopy { buf }
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The bytes so far, leaving the buffer empty (with its capacity) for the next chunk. A
    /// chunk may end anywhere: the server reassembles the stream.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        let capacity = self.buf.capacity();
        std::mem::replace(&mut self.buf, Vec::with_capacity(capacity))
    }

    /// Starts a row of `fields` values.
    pub(crate) fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    fn field(&mut self, bytes: &[u8]) {
        // Callers keep values far below 1 GB, PostgreSQL's limit for one value.
        let len = i32::try_from(bytes.len()).expect("a COPY value is shorter than 2 GB");
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    pub(crate) fn int8(&mut self, value: i64) {
        self.field(&value.to_be_bytes());
    }

    pub(crate) fn bool(&mut self, value: bool) {
        self.field(&[u8::from(value)]);
    }

    pub(crate) fn uuid(&mut self, value: Uuid) {
        self.field(value.as_bytes());
    }

    /// A text or json value. `value` must not contain NUL.
    pub(crate) fn text(&mut self, value: &str) {
        debug_assert!(!value.contains('\0'), "PostgreSQL text cannot carry NUL");
        self.field(value.as_bytes());
    }

    pub(crate) fn bytea(&mut self, value: &[u8]) {
        self.field(value);
    }

    /// A timestamptz given as microseconds since the Unix epoch.
    pub(crate) fn timestamptz(&mut self, unix_micros: i64) {
        self.int8(unix_micros - PG_EPOCH_UNIX_MICROS);
    }

    /// Ends the stream.
    pub(crate) fn end(&mut self) {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_length_prefixed_in_their_wire_form() {
        let mut rows = BinaryCopy::with_capacity(0);
        rows.row(5);
        rows.int8(-7);
        rows.text("a\tb");
        rows.bytea(&[0x00, 0xff]);
        rows.bool(true);
        rows.uuid(Uuid::from_u128(1));
        rows.end();
        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&[0, 5]);
        expected.extend_from_slice(&[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf9]);
        expected.extend_from_slice(&[0, 0, 0, 3, b'a', b'\t', b'b']);
        expected.extend_from_slice(&[0, 0, 0, 2, 0x00, 0xff]);
        expected.extend_from_slice(&[0, 0, 0, 1, 1]);
        expected.extend_from_slice(&[0, 0, 0, 16]);
        expected.extend_from_slice(&[0; 15]);
        expected.push(1);
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(rows.take(), expected);
    }

    #[test]
    fn timestamps_count_from_the_postgres_epoch() {
        let mut rows = BinaryCopy::with_capacity(0);
        let _header = rows.take();
        rows.timestamptz(PG_EPOCH_UNIX_MICROS + 1);
        assert_eq!(rows.take(), [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
    }
}

//! ACDB change capture.

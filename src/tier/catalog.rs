//! What a tier catalogues about the records it archives: the schema version
//! of each envelope, for the archive footer.
//!
//! Owns the one place the tier layer reads envelopes on behalf of the
//! storage layer's archive writer (which stays blind to record values). It
//! never rejects a record: a value that is not an envelope is only counted
//! as undecoded.

use crate::envelope::EnvelopeRef;

/// The schema version of the envelope in `value`, or `None` when `value` is
/// not an eventfabric envelope.
pub(super) fn schema_version_of(value: &[u8]) -> Option<&str> {
    EnvelopeRef::decode(value)
        .ok()
        .map(|env| env.schema_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_is_not_an_envelope_has_no_schema_version() {
        assert_eq!(schema_version_of(b"plain bytes"), None);
        assert_eq!(schema_version_of(b""), None);
    }
}

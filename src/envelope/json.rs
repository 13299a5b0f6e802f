//! The JSON shape of an envelope: [`Envelope::from_json`](super::Envelope::from_json),
//! [`Envelope::to_json`](super::Envelope::to_json) and the serde impls.
//!
//! This file owns the JSON key names, their order and the handling of
//! unknown, repeated and `null` keys; it must never accept JSON the field
//! rules reject, and never report fewer than all failing fields.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::errors::Problems;
use super::fields::{
    Parts, check_event_type, check_non_empty, check_tenant, finish, floor_to_micros,
    parse_event_id, parse_timestamp,
};
use super::{Envelope, EnvelopeError, FIELD_NAMES, SchemaVersion, Ttl};

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The top-level JSON members in input order, duplicates kept so they can be reported.
struct JsonMembers(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for JsonMembers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = JsonMembers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object with the envelope fields")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonMembers, A::Error> {
                let mut members = Vec::with_capacity(FIELD_NAMES.len());
                while let Some(key) = map.next_key::<String>()? {
                    let value: Value = map.next_value()?;
                    members.push((key, value));
                }
                Ok(JsonMembers(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

/// The raw JSON value of each known field, sorted out from the members.
#[derive(Default)]
struct RawJson {
    event_id: Option<Value>,
    event_type: Option<Value>,
    tenant_id: Option<Value>,
    occurred_at: Option<Value>,
    emitted_at: Option<Value>,
    source: Option<Value>,
    schema_version: Option<Value>,
    correlation_id: Option<Value>,
    causation_id: Option<Value>,
    partition_key: Option<Value>,
    ttl: Option<Value>,
    payload: Option<Value>,
}

impl RawJson {
    fn sort(members: impl IntoIterator<Item = (String, Value)>, problems: &mut Problems) -> Self {
        let mut raw = Self::default();
        for (key, value) in members {
            let slot = match key.as_str() {
                "event_id" => &mut raw.event_id,
                "event_type" => &mut raw.event_type,
                "tenant_id" => &mut raw.tenant_id,
                "occurred_at" => &mut raw.occurred_at,
                "emitted_at" => &mut raw.emitted_at,
                "source" => &mut raw.source,
                "schema_version" => &mut raw.schema_version,
                "correlation_id" => &mut raw.correlation_id,
                "causation_id" => &mut raw.causation_id,
                "partition_key" => &mut raw.partition_key,
                "ttl" => &mut raw.ttl,
                "payload" => &mut raw.payload,
                _ => {
                    problems.push(
                        key,
                        "unknown field: the envelope has no such field (put extra data in the payload)",
                    );
                    continue;
                }
            };
            if slot.is_some() {
                problems.push(key, "given more than once");
            } else {
                *slot = Some(value);
            }
        }
        raw
    }
}

/// A required string field.
fn json_string(value: Option<Value>) -> Result<String, String> {
    match value {
        None => Err("missing (required)".to_owned()),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("must be a string, got {}", json_kind(&other))),
    }
}

/// An optional string field: absent and `null` both mean `None`.
fn json_opt_string(value: Option<Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "must be a string or null, got {}",
            json_kind(&other)
        )),
    }
}

fn non_empty_string(value: Option<Value>) -> Result<String, String> {
    let s = json_string(value)?;
    check_non_empty(&s)?;
    Ok(s)
}

impl Envelope {
    /// Parses and validates an envelope from JSON text.
    ///
    /// Never panics. Every failing field is reported in the one error,
    /// including unknown and repeated top-level keys; JSON that is not an
    /// object at all is reported against the field `envelope`.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let members: JsonMembers = serde_json::from_slice(bytes)
            .map_err(|e| EnvelopeError::single("envelope", format!("not a JSON object: {e}")))?;
        Self::from_members(members.0)
    }

    /// Validates an envelope given as an already-parsed JSON value.
    pub fn from_json_value(value: Value) -> Result<Envelope, EnvelopeError> {
        match value {
            Value::Object(map) => Self::from_members(map),
            other => Err(EnvelopeError::single(
                "envelope",
                format!("must be a JSON object, got {}", json_kind(&other)),
            )),
        }
    }

    fn from_members(
        members: impl IntoIterator<Item = (String, Value)>,
    ) -> Result<Envelope, EnvelopeError> {
        let mut p = Problems::default();
        let raw = RawJson::sort(members, &mut p);

        let event_id = p.take(
            "event_id",
            json_string(raw.event_id).and_then(|s| parse_event_id(&s)),
        );
        let event_type_text = p.take("event_type", json_string(raw.event_type));
        // The tenant rule needs only the domain, so it runs even when the
        // rest of event_type is malformed.
        let tenant_id = p.take(
            "tenant_id",
            json_opt_string(raw.tenant_id).and_then(|tenant| {
                check_tenant(tenant.as_deref(), event_type_text.as_deref()).map(|()| tenant)
            }),
        );
        let event_type =
            event_type_text.and_then(|t| p.take("event_type", check_event_type(&t).map(|()| t)));
        let occurred_at = p.take(
            "occurred_at",
            json_string(raw.occurred_at).and_then(|s| parse_timestamp(&s)),
        );
        let emitted_at = p.take(
            "emitted_at",
            json_string(raw.emitted_at).and_then(|s| parse_timestamp(&s)),
        );
        let source = p.take("source", non_empty_string(raw.source));
        let schema_version = p.take(
            "schema_version",
            json_string(raw.schema_version)
                .and_then(|s| s.parse::<SchemaVersion>().map_err(|e| e.to_string())),
        );
        let correlation_id = p.take("correlation_id", non_empty_string(raw.correlation_id));
        let causation_id = p.take(
            "causation_id",
            json_opt_string(raw.causation_id).and_then(|c| match c {
                Some(c) => check_non_empty(&c).map(|()| Some(c)),
                None => Ok(None),
            }),
        );
        let partition_key = p.take("partition_key", non_empty_string(raw.partition_key));
        let ttl = p.take(
            "ttl",
            json_opt_string(raw.ttl).and_then(|t| match t {
                Some(t) => t.parse::<Ttl>().map(Some).map_err(|e| e.to_string()),
                None => Ok(None),
            }),
        );
        let payload = p.take(
            "payload",
            raw.payload.ok_or_else(|| "missing (required)".to_owned()),
        );

        finish(
            p,
            Parts {
                event_id,
                event_type,
                tenant_id,
                occurred_at,
                emitted_at,
                source,
                schema_version,
                correlation_id,
                causation_id,
                partition_key,
                ttl,
                payload,
            },
        )
    }

    /// The envelope as a JSON object, in the documented key order.
    pub fn to_json_value(&self) -> Value {
        let mut map = Map::with_capacity(FIELD_NAMES.len());
        map.insert(
            "event_id".into(),
            Value::String(self.event_id.hyphenated().to_string()),
        );
        map.insert("event_type".into(), Value::String(self.event_type.clone()));
        map.insert(
            "tenant_id".into(),
            self.tenant_id.clone().map_or(Value::Null, Value::String),
        );
        map.insert(
            "occurred_at".into(),
            Value::String(floor_to_micros(self.occurred_at).to_string()),
        );
        map.insert(
            "emitted_at".into(),
            Value::String(floor_to_micros(self.emitted_at).to_string()),
        );
        map.insert("source".into(), Value::String(self.source.clone()));
        map.insert(
            "schema_version".into(),
            Value::String(self.schema_version.as_str().to_owned()),
        );
        map.insert(
            "correlation_id".into(),
            Value::String(self.correlation_id.clone()),
        );
        if let Some(causation_id) = &self.causation_id {
            map.insert("causation_id".into(), Value::String(causation_id.clone()));
        }
        map.insert(
            "partition_key".into(),
            Value::String(self.partition_key.clone()),
        );
        if let Some(ttl) = self.ttl {
            map.insert("ttl".into(), Value::String(ttl.to_string()));
        }
        map.insert("payload".into(), self.payload.clone());
        Value::Object(map)
    }

    /// The envelope as compact JSON text (UTF-8), in the documented key order.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        // Writing to a Vec cannot fail, and nothing in an envelope is
        // unrepresentable in JSON (map keys are strings, numbers are finite).
        if let Err(e) = serde_json::to_writer(&mut out, self) {
            unreachable!("JSON serialisation of an envelope cannot fail: {e}");
        }
        out
    }
}

impl Serialize for Envelope {
    /// Serialises the JSON shape (strings for ids, timestamps, version and ttl).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 10 + usize::from(self.causation_id.is_some()) + usize::from(self.ttl.is_some());
        let mut s = serializer.serialize_struct("Envelope", len)?;
        s.serialize_field("event_id", &DisplayStr(self.event_id.hyphenated()))?;
        s.serialize_field("event_type", &self.event_type)?;
        s.serialize_field("tenant_id", &self.tenant_id)?;
        s.serialize_field(
            "occurred_at",
            &DisplayStr(floor_to_micros(self.occurred_at)),
        )?;
        s.serialize_field("emitted_at", &DisplayStr(floor_to_micros(self.emitted_at)))?;
        s.serialize_field("source", &self.source)?;
        s.serialize_field("schema_version", &self.schema_version)?;
        s.serialize_field("correlation_id", &self.correlation_id)?;
        match &self.causation_id {
            Some(causation_id) => s.serialize_field("causation_id", causation_id)?,
            None => s.skip_field("causation_id")?,
        }
        s.serialize_field("partition_key", &self.partition_key)?;
        match &self.ttl {
            Some(ttl) => s.serialize_field("ttl", ttl)?,
            None => s.skip_field("ttl")?,
        }
        s.serialize_field("payload", &self.payload)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for Envelope {
    /// Deserialises the JSON shape from any self-describing format, with the
    /// same validation as [`Envelope::from_json`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let members = JsonMembers::deserialize(deserializer)?;
        Envelope::from_members(members.0).map_err(de::Error::custom)
    }
}

/// Serialises a `Display` value as a string without an intermediate `String`.
struct DisplayStr<T>(T);

impl<T: fmt::Display> Serialize for DisplayStr<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

//! Deterministic generators of realistic envelopes for the three seed event
//! types, for tests, benchmarks and local development.
//!
//! This module owns fixture data only. It must never use a clock or OS
//! randomness: the same seed yields the same envelopes, byte for byte, on
//! every machine. Every envelope it makes passes [`Envelope::validate`].
//!
//! Shapes follow the seed events: billing and auth events are partitioned by
//! tenant, workflow events by workflow id; payload keys, order and value kinds
//! match the seeds. Time starts at 2026-06-10T12:00:00Z and `occurred_at`
//! never goes backwards; `emitted_at` trails it by up to two seconds.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::envelope::{Envelope, SchemaVersion, Ttl};

/// The kinds of fixture event, one per seed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FixtureKind {
    /// `billing.invoice.issued`, a domain event, partitioned by tenant.
    BillingInvoiceIssued,
    /// `auth.user.login_succeeded`, an audit event, partitioned by tenant.
    AuthUserLoginSucceeded,
    /// `workflow.instance.completed`, an integration/webhook event, partitioned by workflow.
    WorkflowInstanceCompleted,
}

impl FixtureKind {
    /// Every kind, in seed order.
    pub const fn all() -> [FixtureKind; 3] {
        [
            FixtureKind::BillingInvoiceIssued,
            FixtureKind::AuthUserLoginSucceeded,
            FixtureKind::WorkflowInstanceCompleted,
        ]
    }

    /// The kind whose event type is `event_type`, if there is one.
    pub fn from_event_type(event_type: &str) -> Option<FixtureKind> {
        Self::all()
            .into_iter()
            .find(|kind| kind.event_type() == event_type)
    }

    /// The event type this kind produces.
    pub const fn event_type(self) -> &'static str {
        match self {
            FixtureKind::BillingInvoiceIssued => "billing.invoice.issued",
            FixtureKind::AuthUserLoginSucceeded => "auth.user.login_succeeded",
            FixtureKind::WorkflowInstanceCompleted => "workflow.instance.completed",
        }
    }

    /// The emitting service, as in the seed event.
    pub const fn source(self) -> &'static str {
        match self {
            FixtureKind::BillingInvoiceIssued => "billing-service",
            FixtureKind::AuthUserLoginSucceeded => "authz-gateway",
            FixtureKind::WorkflowInstanceCompleted => "workflow-engine",
        }
    }

    /// The payload schema version, as in the seed event.
    pub fn schema_version(self) -> SchemaVersion {
        match self {
            FixtureKind::BillingInvoiceIssued => SchemaVersion::new(1, 2, 0),
            FixtureKind::AuthUserLoginSucceeded => SchemaVersion::new(1, 0, 1),
            FixtureKind::WorkflowInstanceCompleted => SchemaVersion::new(2, 0, 0),
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): tiny, fast and fully determined by its seed.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift; the bias is below 2^-32 for our `n`.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// One of `items` (non-empty).
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = self.below(items.len() as u64) as usize;
        items.get(i).copied().unwrap_or_default()
    }
}

/// Makes valid, varied, reproducible envelopes: two generators made with the
/// same seed and tenant count, asked for the same kinds in the same order,
/// return equal envelopes. Encoded sizes (layout 1) are about 267 bytes for
/// billing, 261 for auth and 340 for workflow events.
#[derive(Debug, Clone)]
pub struct FixtureGenerator {
    rng: SplitMix64,
    tenants: u32,
    /// `occurred_at` of the last event, in microseconds since the epoch.
    clock_micros: i64,
    /// Events made so far.
    sequence: u64,
}

/// 2026-06-10T12:00:00Z in microseconds since the epoch.
const START_MICROS: i64 = 1_781_092_800_000_000;

impl FixtureGenerator {
    /// The instant the first event's clock starts from: 2026-06-10T12:00:00Z.
    pub const START: Timestamp = Timestamp::constant(START_MICROS / 1_000_000, 0);

    /// A generator seeded with `seed`, spreading events over `tenants` tenants
    /// (`tenant-1` to `tenant-<tenants>`; zero is taken as one).
    pub fn new(seed: u64, tenants: u32) -> Self {
        Self {
            rng: SplitMix64(seed),
            tenants: tenants.max(1),
            clock_micros: START_MICROS,
            sequence: 0,
        }
    }

    /// The number of tenants events are spread over.
    pub fn tenants(&self) -> u32 {
        self.tenants
    }

    /// The next envelope of `kind`.
    pub fn next(&mut self, kind: FixtureKind) -> Envelope {
        self.sequence += 1;
        // Up to a quarter of a second between events; occurred_at never goes
        // back. The clock stops short of year 9999 (after ~10^12 events).
        let step = 1 + self.rng.below(250_000) as i64;
        if self.clock_micros < 253_402_000_000_000_000 {
            self.clock_micros += step;
        }
        let occurred_micros = self.clock_micros;
        let emitted_micros = occurred_micros + self.rng.below(2_000_001) as i64;
        let occurred_at = timestamp(occurred_micros);
        let emitted_at = timestamp(emitted_micros);

        let tenant = format!("tenant-{}", 1 + self.rng.below(u64::from(self.tenants)));
        let event_id = self.v7_id(emitted_micros);
        // Billing and auth events name the command or request event behind
        // them, a little earlier; a workflow completion is a chain's root.
        let causation_id = match kind {
            FixtureKind::WorkflowInstanceCompleted => None,
            _ => {
                let earlier = occurred_micros - self.rng.below(60_000_000) as i64;
                Some(self.v7_id(earlier).to_string())
            }
        };

        let (correlation_id, partition_key, ttl, payload) = match kind {
            FixtureKind::BillingInvoiceIssued => {
                let payload = self.billing_payload(occurred_micros);
                let flow = format!("flow-{:016x}", self.rng.next_u64());
                (flow, tenant.clone(), None, payload)
            }
            FixtureKind::AuthUserLoginSucceeded => {
                let payload = self.auth_payload();
                let request = format!("req-{:016x}", self.rng.next_u64());
                (request, tenant.clone(), None, payload)
            }
            FixtureKind::WorkflowInstanceCompleted => {
                let number = 10_000 + self.rng.below(90_000);
                let workflow_id = format!("workflow-{number}");
                let payload = self.workflow_payload(&tenant, number, &workflow_id);
                // A completion webhook is worth delivering for a day at most.
                let ttl = Ttl::from_millis(86_400_000);
                (format!("wf-{number}"), workflow_id, ttl, payload)
            }
        };

        Envelope {
            event_id,
            event_type: kind.event_type().to_owned(),
            tenant_id: Some(tenant),
            occurred_at,
            emitted_at,
            source: kind.source().to_owned(),
            schema_version: kind.schema_version(),
            correlation_id,
            causation_id,
            partition_key,
            ttl,
            payload,
        }
    }

    /// An endless stream of envelopes of `kind`.
    pub fn iter(&mut self, kind: FixtureKind) -> impl Iterator<Item = Envelope> + '_ {
        std::iter::repeat(kind).map(move |kind| self.next(kind))
    }

    /// An endless stream cycling through every kind in seed order.
    pub fn mixed(&mut self) -> impl Iterator<Item = Envelope> + '_ {
        FixtureKind::all()
            .into_iter()
            .cycle()
            .map(move |kind| self.next(kind))
    }

    /// A UUIDv7 for an instant, with random bits from the generator.
    fn v7_id(&mut self, micros: i64) -> uuid::Uuid {
        let millis = u64::try_from(micros.div_euclid(1_000)).unwrap_or_default();
        let random = self.rng.next_u64();
        let rand_a = (random >> 52) as u16;
        Envelope::event_id_from_parts(millis, rand_a, self.rng.next_u64())
    }

    fn billing_payload(&mut self, occurred_micros: i64) -> Value {
        let day = occurred_micros.div_euclid(86_400_000_000);
        json!({
            "invoice_id": format!("inv-{}", 100_000 + self.rng.below(900_000)),
            "customer_id": format!("cust-{:06}", self.rng.below(1_000_000)),
            "amount": 100 + self.rng.below(5_000_000),
            "currency": self.rng.pick(&["USD", "EUR", "GBP", "JPY", "CAD"]),
            "due_date": iso_date(day + 30),
            "line_items": 1 + self.rng.below(40),
        })
    }

    fn auth_payload(&mut self) -> Value {
        // Documentation address blocks only (RFC 5737).
        let net = self.rng.pick(&["192.0.2", "198.51.100", "203.0.113"]);
        json!({
            "user_id": format!("user-{}", 1 + self.rng.below(100_000)),
            "ip": format!("{net}.{}", 1 + self.rng.below(254)),
            "mfa": self.rng.below(4) != 0,
            "client_id": self.rng.pick(&["web-portal", "mobile-ios", "mobile-android", "cli"]),
            "device_fingerprint": format!("dfp-{:012x}", self.rng.below(1 << 48)),
        })
    }

    fn workflow_payload(&mut self, tenant: &str, number: u64, workflow_id: &str) -> Value {
        let status = match self.rng.below(10) {
            0 => "failed",
            1 => "cancelled",
            _ => "succeeded",
        };
        json!({
            "workflow_id": workflow_id,
            "status": status,
            "duration_ms": 50 + self.rng.below(600_000),
            "outputs_uri": format!("s3://{tenant}/workflows/{number}/outputs.json"),
            "webhook": {
                "target": self.rng.pick(&[
                    "https://hooks.partner.example/notify",
                    "https://hooks.example.net/wf",
                ]),
                "signature": format!("v1={:08x}", self.rng.below(1 << 32)),
                "delivery_state": "pending",
            },
        })
    }
}

/// A timestamp from microseconds known to be in range.
fn timestamp(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(FixtureGenerator::START)
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (proleptic Gregorian;
/// Howard Hinnant's `civil_from_days`).
fn iso_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_envelopes() {
        let a: Vec<Envelope> = FixtureGenerator::new(7, 25).mixed().take(300).collect();
        let b: Vec<Envelope> = FixtureGenerator::new(7, 25).mixed().take(300).collect();
        assert_eq!(a, b);
        let c: Vec<Envelope> = FixtureGenerator::new(8, 25).mixed().take(300).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn envelopes_are_valid_and_varied() {
        let mut generator = FixtureGenerator::new(1, 20);
        let mut tenants = std::collections::BTreeSet::new();
        let mut keys = std::collections::BTreeSet::new();
        let mut last = FixtureGenerator::START;
        for env in generator.mixed().take(3_000) {
            env.validate().unwrap();
            assert!(env.occurred_at >= last);
            assert!(env.emitted_at >= env.occurred_at);
            last = env.occurred_at;
            tenants.insert(env.tenant_id.clone().unwrap());
            keys.insert(env.partition_key.clone());
            match FixtureKind::from_event_type(&env.event_type).unwrap() {
                FixtureKind::BillingInvoiceIssued | FixtureKind::AuthUserLoginSucceeded => {
                    assert_eq!(Some(&env.partition_key), env.tenant_id.as_ref());
                }
                FixtureKind::WorkflowInstanceCompleted => {
                    assert_eq!(env.payload["workflow_id"], env.partition_key.as_str());
                }
            }
        }
        assert_eq!(tenants.len(), 20);
        assert!(keys.len() > 500);
    }

    #[test]
    fn kinds_round_trip_through_event_type() {
        for kind in FixtureKind::all() {
            assert_eq!(FixtureKind::from_event_type(kind.event_type()), Some(kind));
        }
        assert_eq!(FixtureKind::from_event_type("billing.invoice.paid"), None);
    }

    #[test]
    fn ids_are_v7_and_carry_emission_time() {
        let mut generator = FixtureGenerator::new(3, 5);
        for env in generator
            .iter(FixtureKind::AuthUserLoginSucceeded)
            .take(100)
        {
            assert_eq!(env.event_id.get_version_num(), 7);
            let (secs, nanos) = env.event_id.get_timestamp().unwrap().to_unix();
            let millis = secs as i64 * 1_000 + i64::from(nanos / 1_000_000);
            assert_eq!(millis, env.emitted_at.as_millisecond());
        }
    }

    #[test]
    fn iso_date_matches_jiff() {
        for days in [-719_528, -1, 0, 59, 365, 10_957, 20_614, 20_644, 2_932_895] {
            let ts = Timestamp::from_second(days * 86_400).unwrap();
            let expected = ts.to_string();
            assert_eq!(iso_date(days), expected.get(..10).unwrap(), "{days}");
        }
        // 2026-06-10 + 30 days is the seed's due date.
        assert_eq!(iso_date(START_MICROS / 86_400_000_000 + 30), "2026-07-10");
    }

    #[test]
    fn start_is_the_documented_instant() {
        assert_eq!(FixtureGenerator::START.to_string(), "2026-06-10T12:00:00Z");
    }
}

//! Retry policy for registry requests: which failures are worth another attempt
//! ([`classify`]), how long to wait between attempts ([`RetryPolicy`], [`Backoff`]: exponential
//! backoff with full jitter, bounded by an attempt count and a total time budget), the
//! `Retry-After` header ([`parse_retry_after`]), and a small per-host store ([`HostHealth`]) so
//! that concurrent operations against one registry back off together.
//!
//! Nothing here sleeps or does I/O: the transport asks [`Backoff::next_delay`] how long to wait
//! and does the waiting itself. Time comes from a [`Clock`], so tests drive it by hand with
//! [`ManualClock`].

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// How a failed request should be treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Retryable {
    /// Retrying will not help (most 4xx, success statuses, unknown failures).
    No,
    /// A transient failure of the server or the network: 408, 500, 502, 503, 504, or a
    /// connection-level I/O error. Counts against the host's health.
    Transient,
    /// The registry is rate-limiting us (429): retry, preferably after its `Retry-After`. Does
    /// not mean the host is unhealthy.
    Throttled,
}

impl Retryable {
    /// True unless [`Retryable::No`].
    pub fn should_retry(self) -> bool {
        !matches!(self, Self::No)
    }
}

/// Classifies a failed request by its HTTP status (if a response arrived) and the kind of I/O
/// error (if the connection failed or broke while reading the body).
///
/// A retryable I/O error wins over the status: a 200 whose body stream was reset is worth
/// retrying. Retryable statuses are 408, 429, 500, 502, 503 and 504; every other status
/// (including 501 and all other 4xx) is final.
pub fn classify(status: Option<u16>, io_error_kind: Option<io::ErrorKind>) -> Retryable {
    if io_error_kind.is_some_and(is_transient_io) {
        return Retryable::Transient;
    }
    match status {
        Some(429) => Retryable::Throttled,
        Some(408 | 500 | 502 | 503 | 504) => Retryable::Transient,
        _ => Retryable::No,
    }
}

/// Connection-level failures that a fresh attempt may not hit.
fn is_transient_io(kind: io::ErrorKind) -> bool {
    use io::ErrorKind as K;
    matches!(
        kind,
        K::ConnectionReset
            | K::ConnectionRefused
            | K::ConnectionAborted
            | K::TimedOut
            | K::UnexpectedEof
            | K::BrokenPipe
            | K::NotConnected
            | K::Interrupted
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
            | K::AddrNotAvailable
    )
}

/// Limits and pacing for retrying one operation against a registry.
///
/// `max_attempts` counts every attempt, the first included: with 5, a request is sent at most
/// five times, with at most four waits in between. The waits grow exponentially from
/// `base_delay` (doubling each time, capped at `max_delay`) with full jitter: each wait is drawn
/// uniformly from zero to that ceiling. `budget` bounds the total time an operation may spend,
/// from its first attempt to the start of its last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included. 0 is treated as 1.
    pub max_attempts: u32,
    /// Ceiling of the first wait.
    pub base_delay: Duration,
    /// Largest ceiling a computed wait may have (does not limit `Retry-After`).
    pub max_delay: Duration,
    /// Total time an operation may spend retrying.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 200 ms base, 10 s cap, 60 s budget.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            budget: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn no_retry() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The ceiling of the wait after the `retry`-th failure (0-based): `base_delay * 2^retry`,
    /// capped at `max_delay`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }

    /// Backoff state for one operation, on the system clock with a randomly seeded jitter.
    pub fn backoff(&self) -> Backoff<SystemClock> {
        Backoff::new(
            self.clone(),
            SystemClock,
            StdRng::from_rng(&mut rand::rng()),
        )
    }

    /// Backoff state on the given clock with a jitter seeded by `seed`: deterministic, for
    /// tests.
    pub fn backoff_with<C: Clock>(&self, clock: C, seed: u64) -> Backoff<C> {
        Backoff::new(self.clone(), clock, StdRng::seed_from_u64(seed))
    }
}

/// A source of monotonic time.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<Instant>>,
}

impl ManualClock {
    /// A clock stopped at the present instant.
    pub fn new() -> Self {
        Self {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// Why a [`Backoff`] stopped handing out delays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// `max_attempts` attempts have failed.
    Attempts,
    /// The time budget is spent.
    Budget,
    /// The registry asked us to wait (`Retry-After`) longer than the budget has left; waiting
    /// only to fail again would waste the user's time.
    RetryAfterBeyondBudget(Duration),
}

/// Retry state of one operation: call [`Backoff::next_delay`] after each failed attempt that
/// [`classify`] says is retryable, wait what it returns, and try again; `None` means give up.
#[derive(Debug)]
pub struct Backoff<C: Clock = SystemClock> {
    policy: RetryPolicy,
    clock: C,
    start: Instant,
    failures: u32,
    waited: Duration,
    rng: StdRng,
    gave_up: Option<GiveUp>,
}

impl<C: Clock> Backoff<C> {
    /// Starts the operation's clock now.
    pub fn new(policy: RetryPolicy, clock: C, rng: StdRng) -> Self {
        let start = clock.now();
        Self {
            policy,
            clock,
            start,
            failures: 0,
            waited: Duration::ZERO,
            rng,
            gave_up: None,
        }
    }

    /// Records a failed attempt and returns how long to wait before the next one, or `None`
    /// when the attempts or the budget are exhausted (see [`Backoff::gave_up`] for which).
    ///
    /// `retry_after` (from the response's `Retry-After`) replaces the computed delay; if it is
    /// longer than what is left of the budget the operation gives up at once. A computed delay
    /// is cut to what is left of the budget. Once this has returned `None` it always does.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        if self.gave_up.is_some() {
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.policy.max_attempts.max(1) {
            self.gave_up = Some(GiveUp::Attempts);
            return None;
        }
        let remaining = self.policy.budget.saturating_sub(self.elapsed());
        if remaining.is_zero() {
            self.gave_up = Some(GiveUp::Budget);
            return None;
        }
        let delay = match retry_after {
            Some(wait) if wait > remaining => {
                self.gave_up = Some(GiveUp::RetryAfterBeyondBudget(wait));
                return None;
            }
            Some(wait) => wait,
            None => self
                .jitter(self.policy.ceiling(self.failures - 1))
                .min(remaining),
        };
        self.waited = self.waited.saturating_add(delay);
        Some(delay)
    }

    /// A uniformly random duration in `[0, ceiling]`.
    fn jitter(&mut self, ceiling: Duration) -> Duration {
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.random_range(0..=nanos))
    }

    /// Failed attempts recorded so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Time spent on the operation so far: the clock's reading, or the sum of the delays handed
    /// out if that is larger (a caller that waits less than told still spends the budget).
    pub fn elapsed(&self) -> Duration {
        self.clock
            .now()
            .saturating_duration_since(self.start)
            .max(self.waited)
    }

    /// Why the backoff gave up, once [`Backoff::next_delay`] has returned `None`.
    pub fn gave_up(&self) -> Option<GiveUp> {
        self.gave_up
    }

    /// The policy in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

/// Parses a `Retry-After` header value into the wait it asks for: delta-seconds (`120`) or an
/// HTTP-date in IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) or asctime (`Sun Nov  6 08:49:37 1994`) form. A date in
/// the past means "now" (zero). Returns `None` for anything else. Huge delta-seconds saturate
/// at [`Duration::MAX`]; the value is meant for [`Backoff::next_delay`], which bounds it by the
/// remaining budget (giving up rather than retrying before the registry asked), so it is not
/// clamped here.
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: only overflow can make the parse fail.
        return Some(
            value
                .parse::<u64>()
                .map_or(Duration::MAX, Duration::from_secs),
        );
    }
    let at = parse_http_date(value, now.year())?;
    let wait = at - now;
    if wait.is_positive() {
        Duration::try_from(wait).ok()
    } else {
        Some(Duration::ZERO)
    }
}

const SHORT_DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LONG_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Parses the three HTTP-date forms of RFC 9110 §5.6.7 (weekday names are checked for form,
/// not for agreeing with the date). `this_year` resolves RFC 850's two-digit years.
pub(crate) fn parse_http_date(s: &str, this_year: i32) -> Option<OffsetDateTime> {
    let tokens: Vec<&str> = s.split_ascii_whitespace().collect();
    let (day, month, year, clock) = match tokens.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [wkday, day, month, year, clock, zone] => {
            let wkday = wkday.strip_suffix(',')?;
            if !is_day_name(wkday, &SHORT_DAYS) || !is_gmt(zone) || year.len() != 4 {
                return None;
            }
            (
                number(day, 1, 2)?,
                month_of(month)?,
                number(year, 4, 4)?,
                *clock,
            )
        }
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [wkday, date, clock, zone] => {
            let wkday = wkday.strip_suffix(',')?;
            if !is_day_name(wkday, &LONG_DAYS) || !is_gmt(zone) {
                return None;
            }
            let mut parts = date.split('-');
            let (day, month, yy) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            let yy = i32::try_from(number(yy, 2, 2)?).ok()?;
            let mut year = this_year - this_year.rem_euclid(100) + yy;
            if year > this_year + 50 {
                year -= 100;
            }
            (
                number(day, 1, 2)?,
                month_of(month)?,
                u32::try_from(year).ok()?,
                *clock,
            )
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [wkday, month, day, clock, year] => {
            if !is_day_name(wkday, &SHORT_DAYS) {
                return None;
            }
            (
                number(day, 1, 2)?,
                month_of(month)?,
                number(year, 4, 4)?,
                *clock,
            )
        }
        _ => return None,
    };
    let mut hms = clock.split(':');
    let (h, m, sec) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() {
        return None;
    }
    // A leap second (60) is allowed by the grammar but not by `time`.
    let sec = number(sec, 2, 2)?.min(59);
    let time = Time::from_hms(
        u8::try_from(number(h, 2, 2)?).ok()?,
        u8::try_from(number(m, 2, 2)?).ok()?,
        u8::try_from(sec).ok()?,
    )
    .ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

fn is_day_name(s: &str, names: &[&str]) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(s))
}

fn is_gmt(zone: &str) -> bool {
    ["GMT", "UTC", "UT"]
        .iter()
        .any(|z| z.eq_ignore_ascii_case(zone))
}

fn month_of(s: &str) -> Option<Month> {
    let index = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(s))?;
    Month::try_from(u8::try_from(index + 1).ok()?).ok()
}

/// A decimal number of `min..=max` ASCII digits.
fn number(s: &str, min: usize, max: usize) -> Option<u32> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Shared, per-host retry state: lets operations running at the same time against one registry
/// respect a `Retry-After` one of them received, and stops hammering a host that keeps failing
/// (a simple circuit breaker). Keys are host names (with port), compared case-insensitively.
///
/// After `threshold` consecutive transient failures the host is held for `cooldown`; every
/// further failure while the count stays at or above the threshold holds it again, and any
/// success resets the count. Time is passed in, so this is deterministic.
#[derive(Debug)]
pub struct HostHealth {
    threshold: u32,
    cooldown: Duration,
    hosts: Mutex<HashMap<String, HostState>>,
}

#[derive(Debug, Default)]
struct HostState {
    consecutive_failures: u32,
    not_before: Option<Instant>,
}

impl Default for HostHealth {
    /// Holds a host for 5 s after 5 consecutive transient failures.
    fn default() -> Self {
        Self::new(5, Duration::from_secs(5))
    }
}

impl HostHealth {
    /// A store that holds a host for `cooldown` after `threshold` consecutive transient
    /// failures (0 disables the circuit; `Retry-After` is still shared).
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold,
            cooldown,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, host: &str, f: impl FnOnce(&mut HostState) -> R) -> R {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        f(hosts.entry(host.to_ascii_lowercase()).or_default())
    }

    /// How long a request to `host` should wait before being sent (zero when it may go now).
    pub fn wait_before(&self, host: &str, now: Instant) -> Duration {
        let hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        hosts
            .get(&host.to_ascii_lowercase())
            .and_then(|s| s.not_before)
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
    }

    /// Records a successful request: the host is healthy again.
    pub fn record_success(&self, host: &str) {
        self.with(host, |s| s.consecutive_failures = 0);
    }

    /// Records a failed request of the given class at `now`, with the `Retry-After` the
    /// response carried, if any.
    pub fn record_failure(
        &self,
        host: &str,
        class: Retryable,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        self.with(host, |s| {
            let mut hold = retry_after;
            if class == Retryable::Transient {
                s.consecutive_failures = s.consecutive_failures.saturating_add(1);
                if self.threshold > 0 && s.consecutive_failures >= self.threshold {
                    hold = hold.max(Some(self.cooldown));
                }
            }
            if let Some(until) = hold.and_then(|d| now.checked_add(d)) {
                s.not_before = s.not_before.max(Some(until));
            }
        });
    }

    /// Consecutive transient failures recorded for `host`.
    pub fn consecutive_failures(&self, host: &str) -> u32 {
        let hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        hosts
            .get(&host.to_ascii_lowercase())
            .map_or(0, |s| s.consecutive_failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(1994-11-06 08:49:00 UTC);

    #[test]
    fn classify_statuses() {
        for s in [408, 500, 502, 503, 504] {
            assert_eq!(classify(Some(s), None), Retryable::Transient, "{s}");
        }
        assert_eq!(classify(Some(429), None), Retryable::Throttled);
        for s in [
            200, 201, 202, 204, 301, 307, 400, 401, 403, 404, 405, 409, 416, 501, 505,
        ] {
            assert_eq!(classify(Some(s), None), Retryable::No, "{s}");
        }
        assert_eq!(classify(None, None), Retryable::No);
        assert!(!Retryable::No.should_retry());
        assert!(Retryable::Transient.should_retry());
        assert!(Retryable::Throttled.should_retry());
    }

    #[test]
    fn classify_io_errors() {
        use io::ErrorKind as K;
        for k in [
            K::ConnectionReset,
            K::ConnectionRefused,
            K::ConnectionAborted,
            K::TimedOut,
            K::UnexpectedEof,
            K::BrokenPipe,
        ] {
            assert_eq!(classify(None, Some(k)), Retryable::Transient, "{k:?}");
        }
        for k in [
            K::PermissionDenied,
            K::InvalidData,
            K::NotFound,
            K::Other,
            K::InvalidInput,
        ] {
            assert_eq!(classify(None, Some(k)), Retryable::No, "{k:?}");
        }
        // A body cut short after a 200 is retryable; a final status stays final.
        assert_eq!(
            classify(Some(200), Some(K::UnexpectedEof)),
            Retryable::Transient
        );
        assert_eq!(classify(Some(404), Some(K::InvalidData)), Retryable::No);
        assert_eq!(classify(Some(503), Some(K::Other)), Retryable::Transient);
    }

    #[test]
    fn retry_after_delta_seconds() {
        assert_eq!(
            parse_retry_after("120", NOW),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", NOW), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", NOW),
            Some(Duration::MAX)
        );
        for bad in ["", "  ", "-1", "1.5", "+3", "12s", "soon", "0x10"] {
            assert_eq!(parse_retry_after(bad, NOW), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_http_dates() {
        let want = Some(Duration::from_secs(37));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NOW),
            want
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", NOW),
            want
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", NOW), want);
        assert_eq!(
            parse_retry_after("sun, 06 nov 1994 08:49:37 gmt", NOW),
            want
        );
        // In the past: retry now.
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", NOW),
            Some(Duration::ZERO)
        );
        // A day later.
        assert_eq!(
            parse_retry_after("Mon, 07 Nov 1994 08:49:00 GMT", NOW),
            Some(Duration::from_secs(86_400))
        );
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sunday, 06-Nov-1994-x 08:49:37 GMT",
            "Sun Nov  6 08:49:37",
            "1994-11-06T08:49:37Z",
        ] {
            assert_eq!(parse_retry_after(bad, NOW), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc850_two_digit_years() {
        // More than 50 years ahead means the previous century.
        let now = datetime!(2026-01-01 00:00:00 UTC);
        let at = parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT", now.year());
        assert_eq!(at, Some(datetime!(2070-01-01 00:00:00 UTC)));
        let at = parse_http_date("Tuesday, 01-Jan-80 00:00:00 GMT", now.year());
        assert_eq!(at, Some(datetime!(1980-01-01 00:00:00 UTC)));
        let at = parse_http_date("Friday, 01-Jan-27 00:00:00 GMT", now.year());
        assert_eq!(at, Some(datetime!(2027-01-01 00:00:00 UTC)));
    }

    #[test]
    fn leap_second_is_tolerated() {
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:60 GMT", NOW),
            Some(Duration::from_secs(59))
        );
    }

    #[test]
    fn ceiling_doubles_and_caps() {
        let p = RetryPolicy::default();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(p.ceiling(0), ms(200));
        assert_eq!(p.ceiling(1), ms(400));
        assert_eq!(p.ceiling(2), ms(800));
        assert_eq!(p.ceiling(5), ms(6400));
        assert_eq!(p.ceiling(6), ms(10_000));
        assert_eq!(p.ceiling(31), ms(10_000));
        assert_eq!(p.ceiling(32), ms(10_000));
        assert_eq!(p.ceiling(u32::MAX), ms(10_000));
        let huge = RetryPolicy {
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
            ..p
        };
        assert_eq!(huge.ceiling(3), Duration::MAX);
    }

    #[test]
    fn defaults() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts, 5);
        assert_eq!(p.base_delay, Duration::from_millis(200));
        assert_eq!(p.max_delay, Duration::from_secs(10));
        assert_eq!(p.budget, Duration::from_secs(60));
    }

    #[test]
    fn backoff_stops_after_max_attempts() {
        let clock = ManualClock::new();
        let mut b = RetryPolicy::default().backoff_with(&clock, 1);
        for retry in 0..4 {
            let d = b.next_delay(None).expect("a delay");
            assert!(d <= RetryPolicy::default().ceiling(retry), "{retry}: {d:?}");
            clock.advance(d);
        }
        assert_eq!(b.failures(), 4);
        assert_eq!(b.next_delay(None), None);
        assert_eq!(b.failures(), 5);
        assert_eq!(b.gave_up(), Some(GiveUp::Attempts));
        // Fused.
        assert_eq!(b.next_delay(Some(Duration::ZERO)), None);
        assert_eq!(b.failures(), 5);
    }

    #[test]
    fn no_retry_policy_never_waits() {
        let mut b = RetryPolicy::no_retry().backoff_with(ManualClock::new(), 0);
        assert_eq!(b.next_delay(None), None);
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        let mut b = zero.backoff_with(ManualClock::new(), 0);
        assert_eq!(b.next_delay(None), None);
        assert_eq!(b.gave_up(), Some(GiveUp::Attempts));
    }

    #[test]
    fn jitter_is_full_and_bounded() {
        let p = RetryPolicy {
            max_attempts: 100,
            budget: Duration::from_secs(100_000),
            ..RetryPolicy::default()
        };
        let (mut low, mut high) = (0, 0);
        for seed in 0..200 {
            let mut b = p.backoff_with(ManualClock::new(), seed);
            for retry in 0..8 {
                let d = b.next_delay(None).expect("a delay");
                let ceiling = p.ceiling(retry);
                assert!(
                    d <= ceiling,
                    "seed {seed} retry {retry}: {d:?} > {ceiling:?}"
                );
                if d < ceiling / 4 {
                    low += 1;
                }
                if d > ceiling * 3 / 4 {
                    high += 1;
                }
            }
        }
        // Full jitter spreads over the whole range.
        assert!(low > 200 && high > 200, "low {low} high {high}");
    }

    #[test]
    fn jitter_is_deterministic_per_seed() {
        let p = RetryPolicy::default();
        let run = |seed| {
            let mut b = p.backoff_with(ManualClock::new(), seed);
            (0..4).map(|_| b.next_delay(None)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn backoff_respects_budget_by_clock() {
        let clock = ManualClock::new();
        let p = RetryPolicy {
            max_attempts: 100,
            budget: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let mut b = p.backoff_with(&clock, 3);
        assert!(b.next_delay(None).is_some());
        // Slow attempts eat the budget.
        clock.advance(Duration::from_millis(9_950));
        let d = b.next_delay(None).expect("a last delay");
        assert!(d <= Duration::from_millis(50), "{d:?}");
        clock.advance(Duration::from_millis(50));
        assert_eq!(b.next_delay(None), None);
        assert_eq!(b.gave_up(), Some(GiveUp::Budget));
    }

    #[test]
    fn backoff_counts_delays_even_if_the_clock_stands_still() {
        let p = RetryPolicy {
            max_attempts: 1000,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(1),
            budget: Duration::from_secs(5),
        };
        let mut b = p.backoff_with(ManualClock::new(), 0);
        let mut total = Duration::ZERO;
        while let Some(d) = b.next_delay(Some(Duration::from_secs(1))) {
            total += d;
        }
        assert_eq!(total, Duration::from_secs(5));
        assert_eq!(b.elapsed(), Duration::from_secs(5));
        assert_eq!(b.gave_up(), Some(GiveUp::Budget));
    }

    #[test]
    fn retry_after_overrides_computed_delay() {
        let clock = ManualClock::new();
        let mut b = RetryPolicy::default().backoff_with(&clock, 9);
        // Longer than max_delay is still honoured: the registry knows best.
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(30))),
            Some(Duration::from_secs(30))
        );
        clock.advance(Duration::from_secs(30));
        // Shorter than the computed delay, too.
        assert_eq!(b.next_delay(Some(Duration::ZERO)), Some(Duration::ZERO));
        // 30 s of the 60 s budget are left: asking for 31 gives up at once.
        assert_eq!(b.next_delay(Some(Duration::from_secs(31))), None);
        assert_eq!(
            b.gave_up(),
            Some(GiveUp::RetryAfterBeyondBudget(Duration::from_secs(31)))
        );
    }

    #[test]
    fn retry_after_exactly_the_remaining_budget_is_allowed() {
        let mut b = RetryPolicy::default().backoff_with(ManualClock::new(), 0);
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        // Then nothing is left.
        assert_eq!(b.next_delay(None), None);
        assert_eq!(b.gave_up(), Some(GiveUp::Budget));
    }

    #[test]
    fn system_clock_backoff_works() {
        let mut b = RetryPolicy::default().backoff();
        let d = b.next_delay(None).expect("a delay");
        assert!(d <= Duration::from_millis(200));
        assert_eq!(b.policy(), &RetryPolicy::default());
    }

    #[test]
    fn host_health_shares_retry_after() {
        let h = HostHealth::default();
        let t0 = Instant::now();
        assert_eq!(h.wait_before("registry.example", t0), Duration::ZERO);
        h.record_failure(
            "Registry.Example",
            Retryable::Throttled,
            Some(Duration::from_secs(7)),
            t0,
        );
        assert_eq!(
            h.wait_before("registry.example", t0),
            Duration::from_secs(7)
        );
        assert_eq!(
            h.wait_before("registry.example", t0 + Duration::from_secs(5)),
            Duration::from_secs(2)
        );
        assert_eq!(
            h.wait_before("registry.example", t0 + Duration::from_secs(8)),
            Duration::ZERO
        );
        // Throttling is not ill health.
        assert_eq!(h.consecutive_failures("registry.example"), 0);
        // Other hosts are unaffected.
        assert_eq!(h.wait_before("other.example", t0), Duration::ZERO);
        // A shorter Retry-After does not shorten an existing hold.
        h.record_failure(
            "registry.example",
            Retryable::Throttled,
            Some(Duration::from_secs(1)),
            t0,
        );
        assert_eq!(
            h.wait_before("registry.example", t0),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn host_health_circuit() {
        let h = HostHealth::new(3, Duration::from_secs(5));
        let t0 = Instant::now();
        let host = "localhost:5000";
        h.record_failure(host, Retryable::Transient, None, t0);
        h.record_failure(host, Retryable::Transient, None, t0);
        assert_eq!(h.wait_before(host, t0), Duration::ZERO);
        h.record_failure(host, Retryable::Transient, None, t0);
        assert_eq!(h.consecutive_failures(host), 3);
        assert_eq!(h.wait_before(host, t0), Duration::from_secs(5));
        // Half-open: after the cooldown a probe may go; its failure holds the host again.
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(h.wait_before(host, t1), Duration::ZERO);
        h.record_failure(host, Retryable::Transient, None, t1);
        assert_eq!(h.wait_before(host, t1), Duration::from_secs(5));
        // A success closes the circuit.
        h.record_success(host);
        assert_eq!(h.consecutive_failures(host), 0);
        let t2 = t1 + Duration::from_secs(5);
        h.record_failure(host, Retryable::Transient, None, t2);
        assert_eq!(h.wait_before(host, t2), Duration::ZERO);
        // Final failures do not count.
        h.record_failure(host, Retryable::No, None, t2);
        assert_eq!(h.consecutive_failures(host), 1);
    }

    #[test]
    fn host_health_threshold_zero_disables_circuit() {
        let h = HostHealth::new(0, Duration::from_secs(5));
        let t0 = Instant::now();
        for _ in 0..10 {
            h.record_failure("h", Retryable::Transient, None, t0);
        }
        assert_eq!(h.wait_before("h", t0), Duration::ZERO);
    }
}

//! The Agones SDK's own state, which Edgegap has no place for: labels and annotations, the
//! allocated and reserved marks, the player capacity, Counters and Lists. Pure data with
//! the SDK's rules (validation, capacity bounds, duplicates); the routes lock it, change it
//! and answer from it. Every collection is bounded.

use std::collections::BTreeMap;

use tokio::time::Instant;

/// The most labels, and the most annotations, the game may set.
pub const MAX_METADATA: usize = 64;
/// The longest annotation value, in bytes (a label value is at most 63 characters).
pub const MAX_ANNOTATION_BYTES: usize = 4096;
/// The most Counters, and the most Lists.
pub const MAX_COUNTERS: usize = 64;
/// Agones's default Counter and List capacity, and its largest List capacity.
pub const DEFAULT_CAPACITY: i64 = 1000;
/// The longest Counter or List name, and the longest List value, in bytes.
pub const MAX_NAME_BYTES: usize = 63;
pub const MAX_VALUE_BYTES: usize = 1024;
/// What Agones puts before every key the SDK sets.
pub const KEY_PREFIX: &str = "agones.dev/sdk-";

/// An SDK refusal: a gRPC status code and its message, as the REST gateway sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

/// The gRPC codes the SDK answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unknown = 2,
    InvalidArgument = 3,
    NotFound = 5,
    AlreadyExists = 6,
    ResourceExhausted = 8,
    OutOfRange = 11,
    Unimplemented = 12,
    Unavailable = 14,
}

impl Code {
    /// The HTTP status grpc-gateway answers a code with.
    pub fn http(self) -> u16 {
        match self {
            Code::Unknown => 500,
            Code::InvalidArgument | Code::OutOfRange => 400,
            Code::NotFound => 404,
            Code::AlreadyExists => 409,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
        }
    }
}

/// A refusal. Its message starts as Agones's own do (`out of range. ...`, `not found. ...`,
/// `already exists. ...`, `invalid argument. ...`), so a client that reads them still can.
pub fn refuse(code: Code, message: impl Into<String>) -> Refusal {
    let prefix = match code {
        Code::InvalidArgument => "invalid argument. ",
        Code::NotFound => "not found. ",
        Code::AlreadyExists => "already exists. ",
        Code::OutOfRange => "out of range. ",
        _ => "",
    };
    Refusal {
        code,
        message: format!("{prefix}{}", message.into()),
    }
}

/// A Counter: `0 <= count <= capacity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub count: i64,
    pub capacity: i64,
}

/// A List: distinct values, at most `capacity` of them (at most [`DEFAULT_CAPACITY`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub capacity: i64,
    pub values: Vec<String>,
}

/// How long the game server stays Reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    Until(Instant),
    /// `seconds: 0`: until allocated, made ready again, or shut down.
    Indefinitely,
}

/// The SDK state of one game server.
#[derive(Debug, Default)]
pub struct Sdk {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub counters: BTreeMap<String, Counter>,
    pub lists: BTreeMap<String, List>,
    pub allocated: bool,
    pub reserved: Option<Reserve>,
    /// 0: no capacity set (Agones reads it from the GameServer spec, which Edgegap has not).
    pub player_capacity: i64,
    /// `/shutdown` was called: the match end was sent once.
    pub shutdown: bool,
}

impl Sdk {
    /// Whether the game server is Reserved at `now`.
    pub fn is_reserved(&self, now: Instant) -> bool {
        match self.reserved {
            Some(Reserve::Indefinitely) => true,
            Some(Reserve::Until(until)) => now < until,
            None => false,
        }
    }

    /// When a Reserved state lapses on its own, if it does.
    pub fn reserve_ends(&self) -> Option<Instant> {
        match self.reserved {
            Some(Reserve::Until(until)) => Some(until),
            _ => None,
        }
    }

    /// `PUT /metadata/label`: the key gets [`KEY_PREFIX`], and key and value must be a valid
    /// Kubernetes label.
    pub fn set_label(&mut self, key: &str, value: &str) -> Result<(), Refusal> {
        let key = prefixed_key(key)?;
        check_label_value(value)?;
        insert_bounded(&mut self.labels, key, value, "labels")
    }

    /// `PUT /metadata/annotation`: the key as for a label; the value any text up to
    /// [`MAX_ANNOTATION_BYTES`].
    pub fn set_annotation(&mut self, key: &str, value: &str) -> Result<(), Refusal> {
        let key = prefixed_key(key)?;
        if value.len() > MAX_ANNOTATION_BYTES {
            return Err(refuse(
                Code::InvalidArgument,
                format!(
                    "annotation value is {} bytes; at most {MAX_ANNOTATION_BYTES} are accepted",
                    value.len()
                ),
            ));
        }
        insert_bounded(&mut self.annotations, key, value, "annotations")
    }

    /// `PATCH /v1beta1/counters/{name}`. Agones declares Counters in the GameServer spec; with
    /// no spec the first update creates one (capacity [`DEFAULT_CAPACITY`], as Agones
    /// defaults it). As in Agones: an update with none of the three is INVALID_ARGUMENT;
    /// `capacity` is set first (a count above it is lowered to it), then `count`, then
    /// `count_diff` applied; a count outside `[0, capacity]` is OUT_OF_RANGE and changes
    /// nothing.
    pub fn update_counter(
        &mut self,
        name: &str,
        count: Option<i64>,
        capacity: Option<i64>,
        count_diff: i64,
    ) -> Result<Counter, Refusal> {
        check_name(name, "Counter")?;
        if count.is_none() && capacity.is_none() && count_diff == 0 {
            return Err(refuse(
                Code::InvalidArgument,
                "a Counter update needs `count`, `capacity` or a non-zero `countDiff`",
            ));
        }
        if !self.counters.contains_key(name) && self.counters.len() >= MAX_COUNTERS {
            return Err(refuse(
                Code::ResourceExhausted,
                format!("at most {MAX_COUNTERS} Counters"),
            ));
        }
        let mut counter = self.counters.get(name).copied().unwrap_or(Counter {
            count: 0,
            capacity: DEFAULT_CAPACITY,
        });
        if let Some(capacity) = capacity {
            if capacity < 0 {
                return Err(refuse(
                    Code::OutOfRange,
                    format!("capacity {capacity} is below 0"),
                ));
            }
            counter.capacity = capacity;
            counter.count = counter.count.min(capacity);
        }
        if let Some(count) = count {
            counter.count = count;
        }
        counter.count = counter.count.checked_add(count_diff).unwrap_or(-1);
        if !(0..=counter.capacity).contains(&counter.count) {
            return Err(refuse(
                Code::OutOfRange,
                format!(
                    "count would be outside [0, {}] for Counter {name:?}",
                    counter.capacity
                ),
            ));
        }
        self.counters.insert(name.to_owned(), counter);
        Ok(counter)
    }

    /// `PATCH /v1beta1/lists/{name}`: replaces the fields given (values deduplicated, in
    /// order, and cut to the capacity as Agones cuts them); created on first update as for
    /// Counters. A capacity outside `[0, 1000]` is OUT_OF_RANGE.
    pub fn update_list(
        &mut self,
        name: &str,
        capacity: Option<i64>,
        values: Option<Vec<String>>,
    ) -> Result<List, Refusal> {
        check_name(name, "List")?;
        if !self.lists.contains_key(name) && self.lists.len() >= MAX_COUNTERS {
            return Err(refuse(
                Code::ResourceExhausted,
                format!("at most {MAX_COUNTERS} Lists"),
            ));
        }
        let mut list = self.lists.get(name).cloned().unwrap_or(List {
            capacity: DEFAULT_CAPACITY,
            values: Vec::new(),
        });
        if let Some(capacity) = capacity {
            if !(0..=DEFAULT_CAPACITY).contains(&capacity) {
                return Err(refuse(
                    Code::OutOfRange,
                    format!("capacity {capacity} is outside [0, {DEFAULT_CAPACITY}]"),
                ));
            }
            list.capacity = capacity;
        }
        if let Some(values) = values {
            list.values.clear();
            for value in values {
                check_value(&value)?;
                if !list.values.contains(&value) {
                    list.values.push(value);
                }
            }
        }
        // As Agones does, values beyond the capacity are dropped, the last ones first.
        list.values
            .truncate(usize::try_from(list.capacity).unwrap_or(usize::MAX));
        self.lists.insert(name.to_owned(), list.clone());
        Ok(list)
    }

    /// `POST /v1beta1/lists/{name}:addValue`.
    pub fn add_value(&mut self, name: &str, value: String) -> Result<List, Refusal> {
        check_value(&value)?;
        let list = self.list_mut(name)?;
        // Capacity first, then duplicates: Agones's order.
        if list.values.len() as i64 >= list.capacity {
            return Err(refuse(
                Code::OutOfRange,
                format!("List {name:?} is at its capacity {}", list.capacity),
            ));
        }
        if list.values.contains(&value) {
            return Err(refuse(
                Code::AlreadyExists,
                format!("{value:?} is already in List {name:?}"),
            ));
        }
        list.values.push(value);
        Ok(list.clone())
    }

    /// `POST /v1beta1/lists/{name}:removeValue`.
    pub fn remove_value(&mut self, name: &str, value: &str) -> Result<List, Refusal> {
        let list = self.list_mut(name)?;
        let Some(at) = list.values.iter().position(|v| v == value) else {
            return Err(refuse(
                Code::NotFound,
                format!("{value:?} is not in List {name:?}"),
            ));
        };
        list.values.remove(at);
        Ok(list.clone())
    }

    fn list_mut(&mut self, name: &str) -> Result<&mut List, Refusal> {
        self.lists
            .get_mut(name)
            .ok_or_else(|| refuse(Code::NotFound, format!("List {name:?} not found")))
    }
}

fn insert_bounded(
    map: &mut BTreeMap<String, String>,
    key: String,
    value: &str,
    what: &str,
) -> Result<(), Refusal> {
    if !map.contains_key(&key) && map.len() >= MAX_METADATA {
        return Err(refuse(
            Code::ResourceExhausted,
            format!("at most {MAX_METADATA} {what} can be set"),
        ));
    }
    map.insert(key, value.to_owned());
    Ok(())
}

/// `agones.dev/sdk-<key>`, refused unless `sdk-<key>` is a valid Kubernetes label name (at
/// most 63 characters, alphanumerics, `-`, `_`, `.`, beginning and ending alphanumeric).
pub fn prefixed_key(key: &str) -> Result<String, Refusal> {
    let name = format!("sdk-{key}");
    if key.is_empty() || !is_label_name(&name) {
        return Err(refuse(
            Code::InvalidArgument,
            format!(
                "key {key:?} is not valid: with Agones's prefix it must be a Kubernetes label name (at most {} characters of [A-Za-z0-9-_.], ending with a letter or digit)",
                63 - "sdk-".len()
            ),
        ));
    }
    Ok(format!("{KEY_PREFIX}{key}"))
}

fn check_label_value(value: &str) -> Result<(), Refusal> {
    if value.is_empty() || is_label_name(value) {
        return Ok(());
    }
    Err(refuse(
        Code::InvalidArgument,
        format!("label value {value:?} is not valid: at most 63 characters of [A-Za-z0-9-_.], beginning and ending with a letter or digit"),
    ))
}

fn is_label_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    bytes.len() <= 63
        && edge(bytes.first())
        && edge(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_name(name: &str, what: &str) -> Result<(), Refusal> {
    if name.is_empty()
        || name.len() > MAX_NAME_BYTES
        || name.chars().any(|c| c.is_control() || c == '/' || c == ':')
    {
        return Err(refuse(
            Code::InvalidArgument,
            format!("{what} name must be 1 to {MAX_NAME_BYTES} bytes without control characters, '/' or ':'"),
        ));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), Refusal> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(refuse(
            Code::InvalidArgument,
            format!(
                "List value is {} bytes; at most {MAX_VALUE_BYTES} are accepted",
                value.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

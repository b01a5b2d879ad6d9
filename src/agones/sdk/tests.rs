//! The SDK state's rules, without a server.

use super::*;

#[test]
fn label_keys_follow_kubernetes_with_the_agones_prefix() {
    let mut sdk = Sdk::default();
    assert!(sdk.set_label("mode", "ctf").is_ok());
    assert_eq!(
        sdk.labels.get("agones.dev/sdk-mode").map(String::as_str),
        Some("ctf")
    );
    for bad in ["", "a/b", "bad key", "ends-", &"x".repeat(60), "é"] {
        assert_eq!(
            sdk.set_label(bad, "v").map_err(|r| r.code),
            Err(Code::InvalidArgument),
            "{bad:?}"
        );
    }
    assert!(sdk.set_label(&"x".repeat(59), "").is_ok());
    assert_eq!(
        sdk.set_label("k", "not valid").map_err(|r| r.code),
        Err(Code::InvalidArgument)
    );
    assert!(sdk
        .set_annotation("note", "any text, even / and spaces")
        .is_ok());
}

#[test]
fn metadata_is_bounded() {
    let mut sdk = Sdk::default();
    for i in 0..MAX_METADATA {
        assert!(sdk.set_label(&format!("k{i}"), "v").is_ok());
    }
    assert_eq!(
        sdk.set_label("one-more", "v").map_err(|r| r.code),
        Err(Code::ResourceExhausted)
    );
    assert!(
        sdk.set_label("k0", "changed").is_ok(),
        "replacing a key is not a new one"
    );
}

#[test]
fn counters_stay_within_capacity() {
    let mut sdk = Sdk::default();
    let created = sdk
        .update_counter("rooms", None, Some(3), 2)
        .map(|c| (c.count, c.capacity));
    assert_eq!(created, Ok((2, 3)));
    assert_eq!(
        sdk.update_counter("rooms", None, None, 2)
            .map_err(|r| r.code),
        Err(Code::OutOfRange)
    );
    assert_eq!(
        sdk.counters["rooms"].count, 2,
        "a refused update changes nothing"
    );
    assert_eq!(
        sdk.update_counter("rooms", None, None, -3)
            .map_err(|r| r.code),
        Err(Code::OutOfRange)
    );
    assert_eq!(
        sdk.update_counter("rooms", None, None, i64::MAX)
            .map_err(|r| r.code),
        Err(Code::OutOfRange)
    );
    assert_eq!(
        sdk.update_counter("rooms", Some(0), None, 0)
            .map(|c| c.count),
        Ok(0)
    );
    assert_eq!(
        sdk.update_counter("rooms", None, Some(-1), 0)
            .map_err(|r| r.code),
        Err(Code::OutOfRange)
    );
}

#[test]
fn lists_refuse_duplicates_and_overflow() {
    let mut sdk = Sdk::default();
    assert_eq!(
        sdk.add_value("x", "a".into()).map_err(|r| r.code),
        Err(Code::NotFound)
    );
    assert!(sdk.update_list("players", Some(2), None).is_ok());
    assert!(sdk.add_value("players", "a".into()).is_ok());
    assert_eq!(
        sdk.add_value("players", "a".into()).map_err(|r| r.code),
        Err(Code::AlreadyExists)
    );
    assert!(sdk.add_value("players", "b".into()).is_ok());
    assert_eq!(
        sdk.add_value("players", "c".into()).map_err(|r| r.code),
        Err(Code::OutOfRange)
    );
    assert_eq!(
        sdk.remove_value("players", "c").map_err(|r| r.code),
        Err(Code::NotFound)
    );
    assert_eq!(
        sdk.remove_value("players", "a").map(|l| l.values),
        Ok(vec!["b".to_owned()])
    );
    assert_eq!(
        sdk.update_list("players", Some(1001), None)
            .map_err(|r| r.code),
        Err(Code::OutOfRange)
    );
    let replaced = sdk.update_list("players", None, Some(vec!["z".into(), "z".into()]));
    assert_eq!(replaced.map(|l| l.values), Ok(vec!["z".to_owned()]));
}

#[test]
fn reserve_lapses() {
    let now = Instant::now();
    let mut sdk = Sdk {
        reserved: Some(Reserve::Until(now + std::time::Duration::from_secs(1))),
        ..Sdk::default()
    };
    assert!(sdk.is_reserved(now));
    assert!(!sdk.is_reserved(now + std::time::Duration::from_secs(1)));
    sdk.reserved = Some(Reserve::Indefinitely);
    assert!(sdk.is_reserved(now + std::time::Duration::from_secs(1_000_000)));
}

#[test]
fn an_empty_counter_update_is_refused_and_a_lowered_capacity_lowers_the_count() {
    let mut sdk = Sdk::default();
    assert_eq!(
        sdk.update_counter("c", None, None, 0).map_err(|r| r.code),
        Err(Code::InvalidArgument)
    );
    assert!(sdk.counters.is_empty());
    assert!(sdk.update_counter("c", Some(7), None, 0).is_ok());
    let lowered = sdk.update_counter("c", None, Some(3), 0);
    assert_eq!(lowered.map(|c| (c.count, c.capacity)), Ok((3, 3)));
}

#[test]
fn lists_are_cut_to_their_capacity_and_a_full_list_is_out_of_range_before_a_duplicate() {
    let mut sdk = Sdk::default();
    let values = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    let cut = sdk.update_list("l", Some(2), Some(values));
    assert_eq!(
        cut.map(|l| l.values),
        Ok(vec!["a".to_owned(), "b".to_owned()])
    );
    let refused = sdk.add_value("l", "a".into());
    assert_eq!(refused.map_err(|r| r.code), Err(Code::OutOfRange));
    let lowered = sdk.update_list("l", Some(1), None);
    assert_eq!(lowered.map(|l| l.values), Ok(vec!["a".to_owned()]));
}

#[test]
fn refusals_begin_as_agones_messages_do() {
    let message = |code| refuse(code, "x").message;
    assert_eq!(message(Code::OutOfRange), "out of range. x");
    assert_eq!(message(Code::NotFound), "not found. x");
    assert_eq!(message(Code::AlreadyExists), "already exists. x");
    assert_eq!(message(Code::InvalidArgument), "invalid argument. x");
}

//! The recorded Webex payloads in `tests/fixtures/` parse into the crate's types, and arbitrary
//! input never panics the parsers or the message truncation.

use proptest::prelude::*;
use whereis_webex::{
    truncate_message, EventData, Message, RoomType, Webhook, WebhookEvent, MAX_MESSAGE_BYTES,
};

const EVENT: &str = include_str!("fixtures/webex-webhook-message-created.json");
const MESSAGE: &str = include_str!("fixtures/webex-message-group-mention.json");

#[test]
fn webhook_event_fixture() {
    let event: WebhookEvent = serde_json::from_str(EVENT).unwrap();
    assert_eq!(
        event,
        WebhookEvent {
            id: Some("Y2lzY29zcGFyazovL3VzL1dFQkhPT0svZjRlNjA1NjAtNjYwMi00ZmIwLWEyNWEtOTQ5ODgxNjA5NDk3".into()),
            name: Some("whereis".into()),
            resource: "messages".into(),
            event: "created".into(),
            actor_id: Some("Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM".into()),
            data: EventData {
                id: "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk".into(),
                room_id: Some("Y2lzY29zcGFyazovL3VzL1JPT00vYmJjZWIxYWQtNDNmMS0zYjU4LTkxNDctZjE0YmIwYzRkMTU0".into()),
                room_type: Some(RoomType::Group),
                person_id: Some("Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM".into()),
                person_email: Some("jane.doe@example.com".into()),
                mentioned_people: vec!["Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ib3QtaWQ".into()],
            },
        }
    );
    // The webhook registration fields in the same body read as a Webhook too.
    let hook: Webhook = serde_json::from_str(EVENT).unwrap();
    assert_eq!(
        hook.target_url,
        "https://whereis.example.com/webhooks/webex"
    );
    assert_eq!(hook.status.as_deref(), Some("active"));
}

#[test]
fn group_mention_message_fixture() {
    let message: Message = serde_json::from_str(MESSAGE).unwrap();
    assert_eq!(
        message.id,
        "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk"
    );
    assert_eq!(
        message.room_id.as_deref(),
        Some("Y2lzY29zcGFyazovL3VzL1JPT00vYmJjZWIxYWQtNDNmMS0zYjU4LTkxNDctZjE0YmIwYzRkMTU0")
    );
    assert_eq!(message.room_type, Some(RoomType::Group));
    assert_eq!(message.text.as_deref(), Some("whereis jdoe"));
    assert_eq!(message.markdown, None);
    assert!(message
        .html
        .as_deref()
        .unwrap()
        .starts_with("<p><spark-mention"));
    assert_eq!(
        message.person_email.as_deref(),
        Some("jane.doe@example.com")
    );
    assert_eq!(
        message.mentioned_people,
        vec!["Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ib3QtaWQ"]
    );
    assert_eq!(message.parent_id, None);
    assert!(message.files.is_empty());
}

#[test]
fn direct_and_unknown_room_types() {
    let direct = EVENT.replace(r#""roomType": "group""#, r#""roomType": "direct""#);
    let event: WebhookEvent = serde_json::from_str(&direct).unwrap();
    assert_eq!(event.data.room_type, Some(RoomType::Direct));
    let future = EVENT.replace(r#""roomType": "group""#, r#""roomType": "meeting""#);
    let event: WebhookEvent = serde_json::from_str(&future).unwrap();
    assert_eq!(event.data.room_type, Some(RoomType::Unknown));
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = serde_json::from_slice::<WebhookEvent>(&bytes);
        let _ = serde_json::from_slice::<Message>(&bytes);
    }

    #[test]
    fn truncation_fits_and_keeps_a_prefix(text in ".{0,3000}", repeat in 1usize..6) {
        let text = text.repeat(repeat);
        let out = truncate_message(&text);
        prop_assert!(out.len() <= MAX_MESSAGE_BYTES);
        if text.len() <= MAX_MESSAGE_BYTES {
            prop_assert_eq!(&out, &text);
        } else {
            let kept = &out[..out.len() - "…".len()];
            prop_assert!(out.ends_with('…'));
            prop_assert!(text.starts_with(kept));
            prop_assert!(kept.len() + 4 + "…".len() > MAX_MESSAGE_BYTES);
        }
    }
}

//! The Webex REST and webhook JSON shapes whereis uses. Unknown fields are ignored, optional ones may
//! be missing or `null`, and list fields that arrive as `null` read as empty.

use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kind of space a message was posted in.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoomType {
    /// A one-to-one space.
    Direct,
    /// A group space (the bot only sees messages that @mention it).
    Group,
    /// A kind Webex added after this code was written.
    #[serde(other)]
    Unknown,
}

/// A message (`GET /messages/{id}`, or the answer to `POST /messages`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Message id.
    pub id: String,
    /// The space it was posted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// Direct or group space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_type: Option<RoomType>,
    /// Plain text (in a group space it starts with the mentioned bot's display name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Markdown, when the sender wrote some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    /// Rendered HTML; mentions appear as `<spark-mention data-object-id="…">`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Sender's person id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    /// Sender's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_email: Option<String>,
    /// Ids of the people the message @mentions.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mentioned_people: Vec<String>,
    /// The thread's first message, for a reply in a thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// URLs of attached files.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub files: Vec<String>,
    /// When it was posted (ISO 8601, as Webex sent it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

impl Message {
    /// When it was posted, when `created` is a valid RFC 3339 timestamp.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created.as_deref().and_then(parse_time)
    }
}

/// A space the bot is in (`GET /rooms`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    /// Room id.
    pub id: String,
    /// Its title (for a direct space: the other person's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Direct or group space ([`RoomType::Unknown`] when missing or new).
    #[serde(rename = "type", default = "unknown_room_type")]
    pub room_type: RoomType,
    /// When something last happened in it; `None` when missing or not a valid timestamp.
    #[serde(
        default,
        deserialize_with = "lenient_time",
        serialize_with = "time_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_activity: Option<DateTime<Utc>>,
    /// When it was created; `None` when missing or not a valid timestamp.
    #[serde(
        default,
        deserialize_with = "lenient_time",
        serialize_with = "time_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub created: Option<DateTime<Utc>>,
}

fn unknown_room_type() -> RoomType {
    RoomType::Unknown
}

/// An RFC 3339 timestamp as Webex writes them (`2026-12-01T10:00:00.000Z`), or `None` for anything
/// else (surrounding spaces are allowed).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// Reads a timestamp without failing the record: a missing, non-string or malformed value is `None`.
pub(crate) fn lenient_time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(value.as_str().and_then(parse_time))
}

fn time_text<S: Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_some(&time.to_rfc3339_opts(SecondsFormat::Millis, true)),
        None => serializer.serialize_none(),
    }
}

/// A message to post: set `room_id` or `to_person_email`, and `text` or `markdown`
/// (at most [`MAX_MESSAGE_BYTES`](crate::MAX_MESSAGE_BYTES) each; see [`truncate_message`](crate::truncate_message)).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NewMessage {
    /// The space to post in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// The person to message directly (instead of `room_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_person_email: Option<String>,
    /// Reply in the thread of this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Plain text (shown by clients that cannot render markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
}

/// A file to attach to a message (Webex allows one per message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name shown in the space, e.g. `floor.png`.
    pub file_name: String,
    /// MIME type, e.g. `image/png`.
    pub content_type: String,
    /// The file's content.
    pub bytes: Vec<u8>,
}

/// A person (`GET /people/me`, `GET /people?email=`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// Person id.
    pub id: String,
    /// Email addresses.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub emails: Vec<String>,
    /// Full name as shown in Webex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Nickname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick_name: Option<String>,
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Organization id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

/// A registered webhook (`GET /webhooks`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Webhook id.
    pub id: String,
    /// Name given at creation.
    pub name: String,
    /// Where Webex POSTs events.
    pub target_url: String,
    /// Resource, e.g. `messages`.
    pub resource: String,
    /// Event, e.g. `created`.
    pub event: String,
    /// Event filter, e.g. `roomType=direct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Signing secret (Webex returns it to the webhook's owner).
    #[serde(
        default,
        with = "crate::secret::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret: Option<SecretString>,
    /// `active` or `inactive` (Webex disables webhooks whose target keeps failing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A webhook to create (`POST /webhooks`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewWebhook {
    /// Name.
    pub name: String,
    /// Where Webex should POST events.
    pub target_url: String,
    /// Resource, e.g. `messages`.
    pub resource: String,
    /// Event, e.g. `created`.
    pub event: String,
    /// Event filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Secret Webex signs events with.
    #[serde(
        default,
        with = "crate::secret::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret: Option<SecretString>,
}

/// A webhook's new settings (`PUT /webhooks/{id}`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateWebhook {
    /// Name.
    pub name: String,
    /// Where Webex should POST events.
    pub target_url: String,
    /// Secret Webex signs events with.
    #[serde(
        default,
        with = "crate::secret::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret: Option<SecretString>,
    /// `active` to re-enable a webhook Webex disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The body Webex POSTs to a webhook (`tests/fixtures/webex-webhook-message-created.json`).
/// Unknown fields are ignored; missing optional ones are fine.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// Webhook id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Webhook name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Resource, e.g. `messages`.
    pub resource: String,
    /// Event, e.g. `created`.
    pub event: String,
    /// The person who caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    /// The resource the event is about (for messages: no text; fetch it with its id).
    pub data: EventData,
}

/// The `data` of a [`WebhookEvent`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventData {
    /// The resource's id (the message id for `messages`).
    pub id: String,
    /// The space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// Direct or group space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_type: Option<RoomType>,
    /// Author's person id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    /// Author's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_email: Option<String>,
    /// Ids of the people @mentioned.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mentioned_people: Vec<String>,
}

/// A list answer: `{"items": [...]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Items {
    /// The items, each checked on its own by the caller.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub items: Vec<serde_json::Value>,
}

/// Reads a JSON `null` as an empty list.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_room_type_does_not_fail_message() {
        let m: Message = serde_json::from_str(
            r#"{"id":"m","roomType":"team","mentionedPeople":null,"files":null}"#,
        )
        .unwrap();
        assert_eq!(m.room_type, Some(RoomType::Unknown));
        assert!(m.mentioned_people.is_empty());
        assert!(m.files.is_empty());
    }

    #[test]
    fn minimal_message_and_event() {
        let m: Message = serde_json::from_str(r#"{"id":"m","extra":{"x":1}}"#).unwrap();
        assert_eq!(m.id, "m");
        assert_eq!(m.text, None);
        let e: WebhookEvent =
            serde_json::from_str(r#"{"resource":"messages","event":"created","data":{"id":"x"}}"#)
                .unwrap();
        assert_eq!(e.data.id, "x");
        assert_eq!(e.actor_id, None);
    }

    #[test]
    fn new_message_skips_none_fields() {
        let m = NewMessage {
            room_id: Some("r".into()),
            markdown: Some("**hi**".into()),
            ..NewMessage::default()
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"roomId": "r", "markdown": "**hi**"})
        );
    }

    #[test]
    fn new_webhook_is_camel_case() {
        let hook = NewWebhook {
            name: "whereis".into(),
            target_url: "https://x/webhooks/webex".into(),
            resource: "messages".into(),
            event: "created".into(),
            filter: None,
            secret: Some(SecretString::from("s")),
        };
        assert_eq!(
            serde_json::to_value(&hook).unwrap(),
            serde_json::json!({"name":"whereis","targetUrl":"https://x/webhooks/webex",
                "resource":"messages","event":"created","secret":"s"})
        );
    }

    #[test]
    fn webhook_secret_round_trips_json_but_not_debug() {
        let hook: Webhook = serde_json::from_str(
            r#"{"id":"W","name":"n","targetUrl":"https://x","resource":"messages","event":"created","secret":"Q7"}"#,
        )
        .unwrap();
        assert_eq!(
            hook.secret
                .as_ref()
                .map(secrecy::ExposeSecret::expose_secret),
            Some("Q7")
        );
        assert!(!format!("{hook:?}").contains("Q7"));
        assert_eq!(serde_json::to_value(&hook).unwrap()["secret"], "Q7");
        let update = UpdateWebhook {
            name: "n".into(),
            target_url: "https://x".into(),
            secret: None,
            status: None,
        };
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            serde_json::json!({"name":"n","targetUrl":"https://x"})
        );
    }

    #[test]
    fn rooms_tolerate_odd_fields() {
        let room: Room = serde_json::from_str(
            r#"{"id":"R","title":"Jane","type":"direct","lastActivity":"2026-12-01T10:00:00.000Z","created":"yesterday"}"#,
        )
        .unwrap();
        assert_eq!(room.room_type, RoomType::Direct);
        assert_eq!(
            room.last_activity.map(|t| t.timestamp_millis()),
            Some(1_796_119_200_000)
        );
        assert_eq!(room.created, None);
        let room: Room =
            serde_json::from_str(r#"{"id":"R","lastActivity":42,"created":null}"#).unwrap();
        assert_eq!(room.room_type, RoomType::Unknown);
        assert_eq!((room.last_activity, room.created), (None, None));
        let back = serde_json::to_value(Room {
            last_activity: parse_time("2026-12-01T10:00:00Z"),
            ..room
        })
        .unwrap();
        assert_eq!(back["lastActivity"], "2026-12-01T10:00:00.000Z");
    }

    #[test]
    fn timestamps_parse_defensively() {
        assert!(parse_time(" 2026-12-01T10:00:00.123+01:00 ").is_some());
        for bad in ["", "2026-12-01", "2026-13-01T00:00:00Z", "now", "\u{0}"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        let message: Message =
            serde_json::from_str(r#"{"id":"m","created":"2026-12-01T10:00:00.000Z"}"#).unwrap();
        assert!(message.created_at().is_some());
    }

    #[test]
    fn items_null_is_empty() {
        let items: Items = serde_json::from_str(r#"{"items":null}"#).unwrap();
        assert!(items.items.is_empty());
        let items: Items = serde_json::from_str(r#"{}"#).unwrap();
        assert!(items.items.is_empty());
    }
}

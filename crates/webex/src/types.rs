//! The Webex REST and webhook JSON shapes whereis uses. Unknown fields are ignored, optional ones may
//! be missing or `null`, and list fields that arrive as `null` read as empty.

use serde::{Deserialize, Deserializer, Serialize};

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
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `active` or `inactive` (Webex disables webhooks whose target keeps failing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A webhook to create (`POST /webhooks`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A webhook's new settings (`PUT /webhooks/{id}`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UpdateWebhook {
    /// Name.
    pub name: String,
    /// Where Webex should POST events.
    pub target_url: String,
    /// Secret Webex signs events with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `active` to re-enable a webhook Webex disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The body Webex POSTs to a webhook (`fixtures/webex-webhook-message-created.json`).
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
            secret: Some("s".into()),
        };
        assert_eq!(
            serde_json::to_value(&hook).unwrap(),
            serde_json::json!({"name":"whereis","targetUrl":"https://x/webhooks/webex",
                "resource":"messages","event":"created","secret":"s"})
        );
    }

    #[test]
    fn items_null_is_empty() {
        let items: Items = serde_json::from_str(r#"{"items":null}"#).unwrap();
        assert!(items.items.is_empty());
        let items: Items = serde_json::from_str(r#"{}"#).unwrap();
        assert!(items.items.is_empty());
    }
}

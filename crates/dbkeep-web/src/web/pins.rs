//! Pins, shared by the backup page's forms and the API: the one check of a note, and the
//! catalog write with the row as it is afterwards.

use std::sync::Arc;

use super::auth::Identity;
use super::{WebState, blocking};
use dbkeep_model::catalog::{BackupId, BackupRecord};
use dbkeep_model::error::Result;

/// The longest note a pin may carry, in characters.
pub const NOTE_MAX_CHARS: usize = 500;

/// A pin's note as it is kept: trimmed, and `None` when nothing is left; or why it is refused
/// (too long, or with a control character: a note is one line of text). The text is checked
/// as given, before the trimming, as the API's document describes it.
pub fn note(text: Option<&str>) -> std::result::Result<Option<String>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    if text.chars().count() > NOTE_MAX_CHARS {
        return Err(format!(
            "the note is too long: at most {NOTE_MAX_CHARS} characters"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err("the note must be one line of text, without control characters".into());
    }
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_string()))
}

/// Who asked, for the log: a user's name or an API token's.
pub fn who(identity: &Identity) -> String {
    match identity {
        Identity::User(s) => format!("user {}", s.user.name),
        Identity::Token(t) => format!("token {}", t.name),
    }
}

/// Pins backup `id` with `note` (or unpins it) and returns its row as it is now; `None` when
/// the catalog has no backup with that id.
///
/// # Errors
/// [`dbkeep_model::error::Error::Refused`] when pinning a backup that is not a successful
/// one; a catalog failure.
pub async fn set(
    state: &Arc<WebState>,
    identity: &Identity,
    id: BackupId,
    pinned: bool,
    note: Option<String>,
) -> Result<Option<BackupRecord>> {
    let found = blocking(state, move |r| {
        if !r.catalog().set_pin(id, pinned, note.as_deref())? {
            return Ok(None);
        }
        r.catalog().get(id)
    })
    .await?;
    if found.is_some() {
        tracing::info!(
            backup = id,
            by = %dbkeep_model::text::escape_controls(&who(identity), false),
            "{}",
            if pinned { "pinned" } else { "unpinned" }
        );
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_one_trimmed_line_of_at_most_the_limit() {
        assert_eq!(note(None), Ok(None));
        assert_eq!(note(Some("   ")), Ok(None));
        assert_eq!(
            note(Some("  before the migration ")),
            Ok(Some("before the migration".into()))
        );
        let longest = "é".repeat(NOTE_MAX_CHARS);
        assert_eq!(note(Some(&longest)), Ok(Some(longest.clone())));
        assert!(note(Some(&format!("{longest}x"))).is_err());
        assert!(note(Some("two\nlines")).is_err());
        assert!(note(Some("\n")).is_err());
        assert!(note(Some(&" ".repeat(NOTE_MAX_CHARS + 1))).is_err());
        assert!(note(Some("nul\0")).is_err());
        assert!(note(Some("c1\u{85}")).is_err());
        // Markup is text like any other: the pages escape it.
        assert_eq!(
            note(Some("<script>x</script>")),
            Ok(Some("<script>x</script>".into()))
        );
    }
}

//! What text others see may contain: display names, titles and descriptions.
//!
//! Every bidder sees other bidders' names and every auction's title, so these refuse what
//! could mislead a reader: control characters (NUL, newline), bidi controls that reorder
//! what follows (U+202E), text made only of invisible characters, and names that read as
//! the operator's ("Admin", "Аdmin" with a Cyrillic А, "adm1n", "A d m i n").

use unicode_normalization::UnicodeNormalization;

/// Why a display name cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name must be 1 to {MAX_NAME_CHARS} characters")]
    Length,
    #[error("name must not contain control characters or direction overrides")]
    Control,
    #[error("name must contain a visible character")]
    Invisible,
    #[error("name {0:?} is reserved (it reads as the operator's)")]
    Reserved(String),
}

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 40;

/// Names nobody may take, nor anything that reads the same (by [`skeleton`]): they would
/// read as the operator.
const RESERVED: &[&str] = &[
    "admin",
    "administrator",
    "auctioneer",
    "gavel",
    "moderator",
    "root",
    "system",
];

/// Bidi controls: they reorder how the text after them is shown (U+202E turns
/// "Bob\u{202E}nimdA" into what reads as "BobAdmin").
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing: zero-width spaces and joiners, format characters,
/// variation selectors, fillers, tag characters.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}' | '\u{FFA0}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E007F}'
        | '\u{E0100}'..='\u{E01EF}')
}

/// Whether `s` shows at least one character (something neither blank nor invisible).
pub fn has_visible(s: &str) -> bool {
    s.chars().any(|c| !c.is_whitespace() && !is_invisible(c))
}

/// Whether `s` has a control character (`Cc`, newline included) or a bidi control.
pub fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() || is_bidi_control(c))
}

/// Like [`has_control`], but tab and line breaks are allowed (for descriptions).
pub fn has_control_except_layout(s: &str) -> bool {
    s.chars()
        .any(|c| (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || is_bidi_control(c))
}

/// A display name as shown: trimmed, checked.
pub fn display_name(raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::Length);
    }
    if has_control(name) {
        return Err(NameError::Control);
    }
    if !has_visible(name) {
        return Err(NameError::Invisible);
    }
    let reads_as = skeleton(name);
    if RESERVED.iter().any(|r| skeleton(r) == reads_as) {
        return Err(NameError::Reserved(name.to_string()));
    }
    Ok(name.to_string())
}

/// How a name reads, folded so look-alikes compare equal: compatibility forms unfolded
/// (fullwidth and mathematical letters), case folded, Cyrillic and Greek look-alikes and
/// digits mapped to the Latin letters they imitate, everything that is not a letter or a
/// digit dropped, and "rn" read as "m".
pub fn skeleton(s: &str) -> String {
    let folded: String = s
        .nfkc()
        .flat_map(char::to_lowercase)
        .map(lookalike)
        .filter(|c| c.is_alphanumeric())
        .collect();
    folded.replace("rn", "m")
}

fn lookalike(c: char) -> char {
    match c {
        'а' | 'α' | 'ɑ' | '@' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ϲ' => 'c',
        'ԁ' | 'ɗ' => 'd',
        'е' | 'ε' | 'ё' | '3' => 'e',
        'ɡ' | 'ց' | '9' => 'g',
        'н' | 'η' | 'һ' => 'h',
        'і' | 'ı' | 'ι' | 'ӏ' | 'l' | '1' | '|' | 'ǀ' | 'ї' | '!' => 'i',
        'ј' | 'ϳ' => 'j',
        'к' | 'κ' => 'k',
        'м' | 'μ' => 'm',
        'п' | 'ո' | 'ռ' | 'ν' => 'n',
        'о' | 'ο' | 'σ' | 'օ' | '0' => 'o',
        'р' | 'ρ' => 'p',
        'г' => 'r',
        'ѕ' | '5' | '$' => 's',
        'т' | 'τ' | '7' => 't',
        'υ' | 'ս' => 'u',
        'ѵ' => 'v',
        'ш' | 'ω' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' => 'y',
        'ᴢ' | '2' => 'z',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_kept_as_typed_but_trimmed() {
        for name in [
            "Alice",
            "Zoë",
            "李小龍",
            "Bob 🎩",
            "Admiral Ackbar",
            "Ada-Min",
        ] {
            assert_eq!(display_name(&format!("  {name} ")).as_deref(), Ok(name));
        }
    }

    #[test]
    fn admin_and_its_look_alikes_are_reserved() {
        for name in [
            "Admin",
            "admin",
            "ADMIN",
            "Аdmin", // Cyrillic А
            "Admіn", // Cyrillic і
            "adm1n",
            "AdmIn",
            "A d m i n",
            "a.d.m.i.n",
            "Ａｄｍｉｎ",    // fullwidth
            "𝐀𝐝𝐦𝐢𝐧",         // mathematical bold
            "Adm\u{200B}in", // a zero-width space inside
            "Adrnin",
            "Administrator",
            "System",
            "Gave1",
            "@dmin",
        ] {
            assert!(
                matches!(display_name(name), Err(NameError::Reserved(_))),
                "{name:?} was accepted"
            );
        }
    }

    #[test]
    fn controls_bidi_overrides_and_invisible_names_are_refused() {
        for name in [
            "a\u{0}b",
            "a\nb",
            "Bob\u{202E}nimdA",
            "x\u{2066}y",
            "\u{7f}",
        ] {
            assert_eq!(display_name(name), Err(NameError::Control), "{name:?}");
        }
        for name in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}\u{FEFF}",
            "\u{2800}",
            "\u{3164}",
        ] {
            assert_eq!(display_name(name), Err(NameError::Invisible), "{name:?}");
        }
        assert_eq!(display_name(""), Err(NameError::Length));
        assert_eq!(display_name("   "), Err(NameError::Length));
        assert_eq!(display_name(&"x".repeat(41)), Err(NameError::Length));
        assert!(display_name(&"x".repeat(40)).is_ok());
    }

    #[test]
    fn descriptions_may_break_lines_but_not_hide_or_reorder_text() {
        assert!(!has_control_except_layout(
            "line one\nline two\r\n\tindented"
        ));
        assert!(has_control_except_layout("a\u{0}b"));
        assert!(has_control_except_layout("price \u{202E}001"));
        assert!(has_control("a\nb"));
    }
}

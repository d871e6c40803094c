//! Two-factor login: TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of clock
//! skew either way) with its enrolment QR code, and one-time recovery codes.

use totp_rs::{Algorithm, Builder, Secret, Totp};

use dbkeep_model::error::{Error, Result};

/// The length of a step, in seconds.
pub const STEP_SECONDS: u64 = 30;
/// How many recovery codes a user gets at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// The name authenticator apps show for dbkeep's codes.
const ISSUER: &str = "dbkeep";

/// What a user needs to add dbkeep to an authenticator app.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The secret, base32, to type in by hand.
    pub secret: String,
    /// The `otpauth://` address the QR code holds.
    pub url: String,
    /// The QR code, as an SVG image.
    pub qr_svg: String,
}

/// A new random secret (160 bits), base32.
///
/// # Errors
/// When the operating system's random source fails.
pub fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| Error::NoRandom(e.to_string()))?;
    Ok(Secret::from(bytes).to_base32())
}

fn totp(secret: &str, account: &str) -> Result<Totp> {
    let secret = Secret::try_from_base32(secret)
        .map_err(|e| Error::Refused(format!("the stored TOTP secret is not base32: {e}")))?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .map_err(|e| Error::Refused(format!("the TOTP secret cannot be used: {e}")))
}

/// The enrolment of `secret` for the user named `account`.
///
/// # Errors
/// When the secret is not usable, or the QR code cannot be drawn.
pub fn enrolment(secret: &str, account: &str) -> Result<Enrolment> {
    let url = totp(secret, account)?
        .to_url()
        .map_err(|e| Error::Refused(format!("the otpauth address cannot be made: {e}")))?;
    let qr = qrcode::QrCode::new(url.as_bytes())
        .map_err(|e| Error::Refused(format!("the QR code cannot be drawn: {e}")))?;
    let qr_svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(Enrolment {
        secret: secret.to_string(),
        url,
        qr_svg,
    })
}

/// The time step whose code `code` is, at Unix time `now` (this step, the one before or the
/// one after); `None` when it is none of them.
pub fn matching_step(secret: &str, code: &str, now: u64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret, ISSUER).ok()?;
    totp.check(code, now).and_then(|s| i64::try_from(s).ok())
}

/// The code of `secret` at Unix time `now` (what an authenticator app shows then).
///
/// # Errors
/// When the secret is not usable.
pub fn code_at(secret: &str, now: u64) -> Result<String> {
    Ok(totp(secret, ISSUER)?.generate(now).to_string())
}

/// New recovery codes (80 random bits each), as shown once: `xxxx-xxxx-xxxx-xxxx`.
///
/// # Errors
/// When the operating system's random source fails.
pub fn recovery_codes() -> Result<Vec<String>> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            getrandom::fill(&mut bytes).map_err(|e| Error::NoRandom(e.to_string()))?;
            let text = Secret::from(bytes.to_vec())
                .to_base32()
                .to_ascii_lowercase();
            let groups: Vec<&str> = text
                .as_bytes()
                .chunks(4)
                .filter_map(|c| std::str::from_utf8(c).ok())
                .collect();
            Ok(groups.join("-"))
        })
        .collect()
}

/// Whether what was typed looks like a recovery code rather than a TOTP code.
pub fn is_recovery_code(typed: &str) -> bool {
    normalized(typed).len() == 16
}

/// The digest a recovery code is kept under: of its letters and digits, in lower case (what
/// was typed may have other dashes, spaces or capitals).
pub fn recovery_digest(typed: &str) -> String {
    dbkeep_model::token::token_digest(&normalized(typed))
}

fn normalized(typed: &str) -> String {
    typed
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_match_their_step_and_its_neighbours_only() {
        // RFC 6238's SHA-1 test secret ("12345678901234567890") at 59 s: 287082 (6 digits).
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        assert_eq!(matching_step(&secret, "287082", 59), Some(1));
        // A step either side is accepted (clock skew), two steps are not.
        assert_eq!(matching_step(&secret, "287082", 59 + 30), Some(1));
        assert_eq!(matching_step(&secret, "287082", 59 + 60), None);
        assert_eq!(code_at(&secret, 59).unwrap(), "287082");
        for bad in ["28708", "2870822", "28708x", "", "000000"] {
            assert_eq!(matching_step(&secret, bad, 59), None, "{bad}");
        }
        let e = enrolment(&new_secret().unwrap(), "alice").unwrap();
        assert!(
            e.url.starts_with("otpauth://totp/dbkeep:alice?"),
            "{}",
            e.url
        );
        assert!(e.qr_svg.contains("<svg"), "{}", e.qr_svg);
    }

    #[test]
    fn recovery_codes_are_random_and_typed_loosely() {
        let codes = recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(codes.iter().all(|c| c.len() == 19 && is_recovery_code(c)));
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let c = &codes[0];
        assert_eq!(
            recovery_digest(c),
            recovery_digest(&format!(" {} ", c.to_uppercase().replace('-', " ")))
        );
        assert!(!is_recovery_code("123456"));
    }
}

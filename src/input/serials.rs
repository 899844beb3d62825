//! How long the all-digit device serials of a file are: the offline sign that a spreadsheet
//! dropped a serial's leading zeros (`40000033` for the tenant's `040000033`).
//!
//! A device serial that lost its zeros names a device the tenant does not know, so the DELETE
//! answers 404 and the lookup finds nothing: without this it would end `absent` (done) while
//! the credential still works. A serial made only of digits and shorter than other all-digit
//! device serials of the same file is *short*: `validate` and the plan point at it, and a run
//! looks up its zero-padded forms (the longer lengths the file uses) before calling it absent;
//! if none holds a credential the row is `not_found`, never `absent`. Any other all-digit
//! serial that a lookup finds nothing under gets one lookup with a `0` in front (the file gives
//! no length to pad to: a one-row file, or every serial damaged alike); a credential there makes
//! the row a mismatch, nothing there leaves it `absent`. It is never deleted on a guess.

use super::text::MAX_SERIAL_CHARS;

/// How many padded forms a short serial is tried in: bounds the extra lookups per row.
pub(crate) const MAX_PADDED_FORMS: usize = 2;

/// The lookups to try when nothing is found under a device serial.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Padding {
    /// Zero-padded forms of the serial, in the order to look them up.
    pub(crate) forms: Vec<String>,
    /// Whether the file itself suggests damage (the serial is short): then finding nothing
    /// under any form is not proof of absence.
    pub(crate) suspicious: bool,
}

/// How many valid rows have an all-digit device serial of each length (1–36).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeviceSerials {
    by_len: [u64; MAX_SERIAL_CHARS + 1],
}

impl Default for DeviceSerials {
    fn default() -> DeviceSerials {
        DeviceSerials {
            by_len: [0; MAX_SERIAL_CHARS + 1],
        }
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl DeviceSerials {
    /// Counts one valid row's device serial.
    pub(crate) fn add(&mut self, device: &str) {
        if all_digits(device)
            && let Some(n) = self.by_len.get_mut(device.len())
        {
            *n += 1;
        }
    }

    /// The length of the longest all-digit device serial, if any.
    pub(crate) fn longest(&self) -> Option<usize> {
        self.by_len.iter().rposition(|&n| n > 0)
    }

    /// Whether `device` is all digits and shorter than another all-digit serial of the file.
    pub(crate) fn is_short(&self, device: &str) -> bool {
        all_digits(device) && self.longest().is_some_and(|l| device.len() < l)
    }

    /// Rows with a short device serial (all rows counted by `add`).
    pub(crate) fn n_short(&self) -> u64 {
        let Some(longest) = self.longest() else {
            return 0;
        };
        self.by_len[..longest].iter().sum()
    }

    /// What to look up when nothing is found under `device`: for a short serial its padded
    /// forms (`padded_forms`, suspicious); for any other all-digit serial under 36 characters
    /// the serial with one `0` in front; nothing for a serial with letters.
    pub(crate) fn padding(&self, device: &str) -> Padding {
        if self.is_short(device) {
            return Padding {
                forms: self.padded_forms(device),
                suspicious: true,
            };
        }
        if all_digits(device) && device.len() < MAX_SERIAL_CHARS {
            return Padding {
                forms: vec![format!("0{device}")],
                suspicious: false,
            };
        }
        Padding::default()
    }

    /// The zero-padded forms to look a short serial up in: the longer lengths the file's
    /// all-digit serials have, the most frequent first (the longest on a tie), at most
    /// `MAX_PADDED_FORMS`. Empty when the serial is not short.
    pub(crate) fn padded_forms(&self, device: &str) -> Vec<String> {
        if !self.is_short(device) {
            return Vec::new();
        }
        let mut lengths: Vec<usize> = (device.len() + 1..self.by_len.len())
            .filter(|&l| self.by_len[l] > 0)
            .collect();
        lengths.sort_by(|&a, &b| self.by_len[b].cmp(&self.by_len[a]).then(b.cmp(&a)));
        lengths.truncate(MAX_PADDED_FORMS);
        lengths
            .into_iter()
            .map(|l| format!("{device:0>l$}"))
            .collect()
    }

    /// The sentence a validation report or an error gives for a short serial.
    pub(crate) fn describe_short(&self, device: &str) -> String {
        let longest = self.longest().unwrap_or(device.len());
        format!(
            "deviceSerialNumber {device} has {} digits where other rows of this file have up to \
             {longest}: if a spreadsheet dropped its leading zeros it names no device the tenant \
             knows, so a run looks it up zero-padded and never counts it absent; format the \
             column as text and check the value",
            device.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(devices: &[&str]) -> DeviceSerials {
        let mut p = DeviceSerials::default();
        for d in devices {
            p.add(d);
        }
        p
    }

    #[test]
    fn short_means_all_digits_and_shorter_than_the_longest() {
        let p = profile(&["040000001", "040000002", "40000003", "AB12", "4000004"]);
        assert_eq!(p.longest(), Some(9));
        assert!(p.is_short("40000003"));
        assert!(p.is_short("7"));
        assert!(!p.is_short("040000001"));
        assert!(!p.is_short("AB12"));
        assert!(!p.is_short("4000000A"));
        assert!(!p.is_short("0400000010"));
        assert_eq!(p.n_short(), 2);
        // One length only: nothing suggests damage.
        let same = profile(&["40000001", "40000002"]);
        assert!(!same.is_short("40000001"));
        assert_eq!(same.n_short(), 0);
        assert_eq!(DeviceSerials::default().longest(), None);
        assert!(!DeviceSerials::default().is_short("1"));
    }

    #[test]
    fn padded_forms_are_the_files_longer_lengths_most_frequent_first_at_most_two() {
        let p = profile(&[
            "040000001",
            "040000002",
            "000140000003",
            "0040000004",
            "0040000005",
            "0040000006",
            "4000007",
        ]);
        // Lengths above 7: 9 (2 rows), 10 (3 rows), 12 (1 row).
        assert_eq!(p.padded_forms("4000007"), ["0004000007", "004000007"]);
        assert_eq!(p.padded_forms("040000001"), ["0040000001", "000040000001"]);
        assert!(p.padded_forms("000140000003").is_empty());
        assert!(p.padded_forms("X1").is_empty());
        let tie = profile(&["0001", "00001", "1"]);
        assert_eq!(tie.padded_forms("1"), ["00001", "0001"]);
    }

    #[test]
    fn padding_is_suspicious_only_for_short_serials() {
        let p = profile(&["040000001", "40000002"]);
        assert_eq!(
            p.padding("40000002"),
            Padding {
                forms: vec!["040000002".into()],
                suspicious: true
            }
        );
        // No evidence in the file: one speculative zero.
        assert_eq!(
            p.padding("040000001"),
            Padding {
                forms: vec!["0040000001".into()],
                suspicious: false
            }
        );
        assert_eq!(
            DeviceSerials::default().padding("7"),
            Padding {
                forms: vec!["07".into()],
                suspicious: false
            }
        );
        assert_eq!(p.padding("AB12"), Padding::default());
        assert_eq!(p.padding(&"9".repeat(36)), Padding::default());
    }
}

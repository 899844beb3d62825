//! The simulator's in-memory credential store, its generated records and its lookup answers.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use crate::mix::{fnv1a, splitmix64};
use crate::wire::{Credential, LookupRecord, PatchRecord};

/// Shards keep concurrent workers from queueing on one lock; a device always lives in one
/// shard, so each operation touches exactly one.
const N_SHARDS: usize = 16;

/// The credentials `--generate n` adds: deterministic, every one unique, one per device.
/// Device serials are 9 digits with the leading zero kept (`040000000`), token serials 12
/// digits (`014010000000`), user ids UUID-shaped lowercase hex derived from the index.
pub fn generated_credentials(n: u64) -> impl Iterator<Item = Credential> {
    (0..n).map(|i| Credential {
        token_serial_number: format!("{:012}", 14_010_000_000u64 + i),
        device_serial_number: format!("{:09}", 40_000_000u64 + i),
        // splitmix64 is a bijection, so the first half alone already makes every id unique.
        user_id: uuid_shaped(splitmix64(i), splitmix64(i ^ 0x5EED_0000_0000_0000)),
    })
}

/// `8-4-4-4-12` lowercase hex from 128 bits. Deliberately not RFC 4122: real tenants use ids
/// without valid version/variant bits (docs/design.md#input).
fn uuid_shaped(hi: u64, lo: u64) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeleteOutcome {
    Deleted,
    /// No stored credential matches; `already_deleted` when this server deleted it earlier.
    NotFound {
        already_deleted: bool,
    },
}

/// A credential's `tokenStatus` as the last PATCH left it. A credential no PATCH changed is
/// enabled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StatusChange {
    pub(crate) disabled: bool,
    /// RFC 3339, when it was set.
    pub(crate) at: String,
}

/// Who the simulator says changed a status (`tokenStatusChangedBy`).
const CHANGED_BY: &str = "ds100-sim admin API";

#[derive(Default)]
struct Shard {
    by_device: HashMap<String, Vec<Credential>>,
    /// Triples deleted so far, user id lowercased, so a repeated delete can be told from
    /// one that never matched anything.
    deleted: HashSet<Credential>,
    /// Statuses set by PATCH, keyed like `deleted`; the others are enabled.
    statuses: HashMap<Credential, StatusChange>,
}

pub(crate) struct Store {
    shards: Box<[Mutex<Shard>]>,
    size: AtomicU64,
    /// DELETE compares the userId's case too (`sim --exact-user-ids`).
    pub(crate) exact_user_ids: bool,
}

impl Store {
    /// A store holding `credentials`; exact repeats (user id compared case-insensitively) are
    /// kept once.
    pub(crate) fn new(credentials: impl IntoIterator<Item = Credential>) -> Store {
        let mut shards: Vec<Shard> = (0..N_SHARDS).map(|_| Shard::default()).collect();
        let mut size = 0u64;
        for cred in credentials {
            let shard = &mut shards[shard_of(&cred.device_serial_number)];
            let on_device = shard
                .by_device
                .entry(cred.device_serial_number.clone())
                .or_default();
            if !on_device.iter().any(|c| same_credential(c, &cred)) {
                on_device.push(cred);
                size += 1;
            }
        }
        Store {
            shards: shards.into_iter().map(Mutex::new).collect(),
            size: AtomicU64::new(size),
            exact_user_ids: false,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// Removes the credential naming exactly these serials and this user (anything else, a
    /// wrong user included, is a 404: docs/design.md#the-api-the-tool-relies-on).
    pub(crate) fn delete(&self, cred: &Credential) -> DeleteOutcome {
        let mut shard = self.lock(&cred.device_serial_number);
        let shard = &mut *shard;
        let removed = match shard.by_device.get_mut(&cred.device_serial_number) {
            Some(on_device) => match on_device.iter().position(|c| {
                same_credential(c, cred) && (!self.exact_user_ids || c.user_id == cred.user_id)
            }) {
                Some(at) => {
                    let gone = on_device.swap_remove(at);
                    if on_device.is_empty() {
                        shard.by_device.remove(&cred.device_serial_number);
                    }
                    Some(gone)
                }
                None => None,
            },
            None => None,
        };
        match removed {
            Some(gone) => {
                shard.statuses.remove(&deleted_key(gone.clone()));
                shard.deleted.insert(deleted_key(gone));
                self.size.fetch_sub(1, Ordering::Relaxed);
                DeleteOutcome::Deleted
            }
            None => DeleteOutcome::NotFound {
                already_deleted: shard.deleted.contains(&deleted_key(cred.clone())),
            },
        }
    }

    /// Disables (or enables) every credential of `user` on `device` (the PATCH body names no
    /// token) and answers them as the API lists what it changed; `None` when the device holds
    /// none of the user's (404). A credential already in that state keeps its time of change.
    pub(crate) fn set_status(
        &self,
        device: &str,
        user: &str,
        disabled: bool,
    ) -> Option<Vec<PatchRecord>> {
        let mut shard = self.lock(device);
        let shard = &mut *shard;
        let of_user: Vec<Credential> = shard
            .by_device
            .get(device)?
            .iter()
            .filter(|c| {
                c.user_id.eq_ignore_ascii_case(user) && (!self.exact_user_ids || c.user_id == user)
            })
            .cloned()
            .collect();
        if of_user.is_empty() {
            return None;
        }
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let records = of_user
            .into_iter()
            .map(|cred| {
                let key = deleted_key(cred.clone());
                let was = shard.statuses.get(&key).cloned();
                let at = match was {
                    Some(w) if w.disabled == disabled => w.at,
                    None if !disabled => lookup_record(&cred, None).updated_at,
                    _ => now.clone(),
                };
                shard.statuses.insert(
                    key,
                    StatusChange {
                        disabled,
                        at: at.clone(),
                    },
                );
                PatchRecord {
                    user_id: cred.user_id,
                    token_serial_number: cred.token_serial_number,
                    token_status: token_status(disabled).to_string(),
                    token_status_changed_at: at,
                    token_status_changed_by: CHANGED_BY.to_string(),
                    device_serial_number: cred.device_serial_number,
                }
            })
            .collect();
        Some(records)
    }

    /// The credentials on a device, in store order, each with the status a PATCH set.
    pub(crate) fn on_device_with_status(
        &self,
        device: &str,
    ) -> Vec<(Credential, Option<StatusChange>)> {
        let shard = self.lock(device);
        shard
            .by_device
            .get(device)
            .map(|creds| {
                creds
                    .iter()
                    .map(|c| {
                        let status = shard.statuses.get(&deleted_key(c.clone())).cloned();
                        (c.clone(), status)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The credentials on a device, in store order.
    #[cfg(test)]
    pub(crate) fn on_device(&self, device: &str) -> Vec<Credential> {
        self.lock(device)
            .by_device
            .get(device)
            .cloned()
            .unwrap_or_default()
    }

    /// Every stored credential, sorted by (token, device, user) — the order of the CSV
    /// columns, so the CSV comes out sorted line by line.
    pub(crate) fn snapshot(&self) -> Vec<Credential> {
        self.snapshot_with_status()
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    /// `snapshot`, each credential with whether it is disabled.
    pub(crate) fn snapshot_with_status(&self) -> Vec<(Credential, bool)> {
        let mut all = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            all.extend(shard.by_device.values().flatten().map(|c| {
                let disabled = shard
                    .statuses
                    .get(&deleted_key(c.clone()))
                    .is_some_and(|s| s.disabled);
                (c.clone(), disabled)
            }));
        }
        all.sort_by(|(a, _), (b, _)| {
            (&a.token_serial_number, &a.device_serial_number, &a.user_id).cmp(&(
                &b.token_serial_number,
                &b.device_serial_number,
                &b.user_id,
            ))
        });
        all
    }

    fn lock(&self, device: &str) -> std::sync::MutexGuard<'_, Shard> {
        // A panic while holding a shard cannot leave it half-updated (each operation is one
        // HashMap/Vec call), so a poisoned lock is still usable.
        self.shards[shard_of(device)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

fn shard_of(device: &str) -> usize {
    (fnv1a(&[device.as_bytes()]) % N_SHARDS as u64) as usize
}

/// Serials compare exactly; the user id is UUID hex, whose case carries no meaning.
fn same_credential(stored: &Credential, asked: &Credential) -> bool {
    stored.token_serial_number == asked.token_serial_number
        && stored.device_serial_number == asked.device_serial_number
        && stored.user_id.eq_ignore_ascii_case(&asked.user_id)
}

fn deleted_key(mut cred: Credential) -> Credential {
    cred.user_id.make_ascii_lowercase();
    cred
}

/// Sites, roles and admins for realistic-looking names (`dak-br03-ngx-01`, as the API's
/// example names a device).
const SITES: [&str; 8] = ["dak", "lhr", "fra", "nyc", "sin", "syd", "gru", "yyz"];
const ROLES: [&str; 6] = ["ngx", "app", "vpn", "wks", "db", "k8s"];
const ADMINS: [&str; 4] = [
    "it-admin@example.com",
    "securid-ops@example.com",
    "helpdesk@example.com",
    "j.doe@example.com",
];

/// 2021-01-01T00:00:00Z: registrations are spread over the three years after it.
const REGISTERED_FROM_MS: u64 = 1_609_459_200_000;
const THREE_YEARS_MS: u64 = 3 * 365 * 24 * 3600 * 1000;
const THIRTY_DAYS_MS: u64 = 30 * 24 * 3600 * 1000;

/// The API's `tokenStatus` for a credential that is (not) disabled.
pub(crate) fn token_status(disabled: bool) -> &'static str {
    if disabled { "Disabled" } else { "Enabled" }
}

/// The lookup record the API's example shows, with every value derived from the credential, so
/// the same credential always looks the same; its status is the one a PATCH set (`status`),
/// enabled when none did.
pub(crate) fn lookup_record(cred: &Credential, status: Option<&StatusChange>) -> LookupRecord {
    let h = fnv1a(&[
        cred.token_serial_number.as_bytes(),
        cred.device_serial_number.as_bytes(),
        cred.user_id.to_ascii_lowercase().as_bytes(),
    ]);
    let h2 = splitmix64(h);
    let h3 = splitmix64(h2);
    let registered_ms = REGISTERED_FROM_MS + h % THREE_YEARS_MS;
    let updated_ms = registered_ms + h2 % THIRTY_DAYS_MS;
    let registered = rfc3339_millis(registered_ms);
    let pick = |x: u64, n: usize| (x % n as u64) as usize;
    LookupRecord {
        id: uuid_shaped(h2, h3),
        name: format!(
            "{}-br{:02}-{}-{:02}",
            SITES[pick(h3, SITES.len())],
            1 + (h3 >> 8) % 20,
            ROLES[pick(h3 >> 16, ROLES.len())],
            1 + (h3 >> 24) % 40
        ),
        user_id: cred.user_id.clone(),
        device_type: "SecurID DS100".to_string(),
        registered_date: registered.clone(),
        token_serial_number: cred.token_serial_number.clone(),
        updated_at: rfc3339_millis(updated_ms),
        token_state: "Activated".to_string(),
        expiry_date: None,
        token_status: token_status(status.is_some_and(|s| s.disabled)).to_string(),
        token_status_reason: None,
        assigned_at: registered,
        assigned_by: ADMINS[pick(h3 >> 40, ADMINS.len())].to_string(),
    }
}

fn rfc3339_millis(ms_since_epoch: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms_since_epoch)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(token: &str, device: &str, user: &str) -> Credential {
        Credential {
            token_serial_number: token.into(),
            device_serial_number: device.into(),
            user_id: user.into(),
        }
    }

    fn is_uuid_shaped(s: &str) -> bool {
        let groups: Vec<&str> = s.split('-').collect();
        groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups
                .iter()
                .all(|g| g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    }

    #[test]
    fn generated_credentials_are_deterministic_unique_and_shaped() {
        let a: Vec<Credential> = generated_credentials(20_000).collect();
        let b: Vec<Credential> = generated_credentials(20_000).collect();
        assert_eq!(a, b);
        assert_eq!(a[0].device_serial_number, "040000000");
        assert_eq!(a[0].token_serial_number, "014010000000");
        assert_eq!(a[7].device_serial_number, "040000007");
        let users: HashSet<&str> = a.iter().map(|c| c.user_id.as_str()).collect();
        let devices: HashSet<&str> = a.iter().map(|c| c.device_serial_number.as_str()).collect();
        let tokens: HashSet<&str> = a.iter().map(|c| c.token_serial_number.as_str()).collect();
        assert_eq!(users.len(), a.len());
        assert_eq!(devices.len(), a.len());
        assert_eq!(tokens.len(), a.len());
        assert!(a.iter().all(|c| is_uuid_shaped(&c.user_id)));
        assert!(a.iter().all(|c| c.device_serial_number.len() == 9));
        assert!(a.iter().all(|c| c.token_serial_number.len() == 12));
        // A prefix of a bigger set is the smaller set.
        assert!(generated_credentials(5).eq(a.into_iter().take(5)));
    }

    #[test]
    fn delete_matches_exactly_and_remembers_what_it_deleted() {
        let user = "87927fb7-e185-4c33-c7e3-8e077675973c";
        let store = Store::new([
            cred("014010008038", "140100080", user),
            cred(
                "014010008039",
                "140100080",
                "26c1e3d6-b31c-803e-cf7f-bdbe7687a72b",
            ),
            cred("014010008038", "140100080", user), // repeat, kept once
        ]);
        assert_eq!(store.len(), 2);
        let wrong_user = cred(
            "014010008038",
            "140100080",
            "00000000-0000-0000-0000-000000000000",
        );
        assert_eq!(
            store.delete(&wrong_user),
            DeleteOutcome::NotFound {
                already_deleted: false
            }
        );
        let upper = cred("014010008038", "140100080", &user.to_ascii_uppercase());
        assert_eq!(store.delete(&upper), DeleteOutcome::Deleted);
        assert_eq!(store.len(), 1);
        assert_eq!(
            store.delete(&cred("014010008038", "140100080", user)),
            DeleteOutcome::NotFound {
                already_deleted: true
            }
        );
        // Serials are exact: no leading-zero games.
        assert_eq!(
            store.delete(&cred(
                "14010008039",
                "140100080",
                "26c1e3d6-b31c-803e-cf7f-bdbe7687a72b"
            )),
            DeleteOutcome::NotFound {
                already_deleted: false
            }
        );
        assert_eq!(store.on_device("140100080").len(), 1);
        assert!(store.on_device("nope").is_empty());
    }

    #[test]
    fn patch_sets_the_status_of_the_users_credentials_only() {
        let u1 = "87927fb7-e185-4c33-c7e3-8e077675973c";
        let u2 = "26c1e3d6-b31c-803e-cf7f-bdbe7687a72b";
        let store = Store::new([
            cred("014010008038", "140100080", u1),
            cred("014010008039", "140100080", u2),
        ]);
        assert_eq!(store.set_status("140100080", "nobody", true), None);
        assert_eq!(store.set_status("999", u1, true), None);
        let first = store
            .set_status("140100080", &u1.to_uppercase(), true)
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].token_serial_number, "014010008038");
        assert_eq!(first[0].token_status, "Disabled");
        let statuses: Vec<bool> = store
            .snapshot_with_status()
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        assert_eq!(statuses, [true, false]);
        // Again: the same answer, the time of the change kept.
        let again = store.set_status("140100080", u1, true).unwrap();
        assert_eq!(again, first);
        let on = store.on_device_with_status("140100080");
        assert!(on[0].1.as_ref().is_some_and(|s| s.disabled));
        assert_eq!(
            lookup_record(&on[0].0, on[0].1.as_ref()).token_status,
            "Disabled"
        );
        let enabled = store.set_status("140100080", u1, false).unwrap();
        assert_eq!(enabled[0].token_status, "Enabled");
        assert!(store.snapshot_with_status().iter().all(|(_, d)| !d));
        // A disabled credential can still be deleted, and its status goes with it.
        store.set_status("140100080", u1, true).unwrap();
        assert_eq!(
            store.delete(&cred("014010008038", "140100080", u1)),
            DeleteOutcome::Deleted
        );
        assert_eq!(store.snapshot_with_status().len(), 1);
    }

    #[test]
    fn snapshot_is_sorted() {
        let store = Store::new(
            generated_credentials(100)
                .collect::<Vec<_>>()
                .into_iter()
                .rev(),
        );
        let snap = store.snapshot();
        assert_eq!(snap.len(), 100);
        assert!(
            snap.windows(2)
                .all(|w| w[0].token_serial_number < w[1].token_serial_number)
        );
    }

    #[test]
    fn lookup_records_are_deterministic_and_complete() {
        let c = generated_credentials(3).nth(2).unwrap();
        let r = lookup_record(&c, None);
        assert_eq!(r, lookup_record(&c, None));
        assert_eq!(r.token_status, "Enabled");
        assert_ne!(
            r.id,
            lookup_record(&generated_credentials(2).nth(1).unwrap(), None).id
        );
        assert!(is_uuid_shaped(&r.id));
        assert_eq!(r.device_type, "SecurID DS100");
        assert_eq!(r.token_serial_number, c.token_serial_number);
        assert_eq!(r.user_id, c.user_id);
        assert_eq!(r.expiry_date, None);
        assert_eq!(r.token_status_reason, None);
        let registered = r.registered_date;
        assert!(
            humantime::parse_rfc3339(&registered).is_ok(),
            "{registered}"
        );
        assert!(
            registered.ends_with('Z') && registered.len() == 24,
            "{registered}"
        );
        assert!(r.updated_at >= registered);
    }
}

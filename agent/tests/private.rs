//! The spool and the key file are private to the agent's user on Unix:
//! directories 0700, files 0600, under the most permissive umask (0, set
//! for this whole test binary), and what an older agent left wider is
//! narrowed at start, with a warning. (Windows: server/tests/wine_agent.rs
//! reads the access lists back under Wine.)
#![cfg(unix)]

use std::num::{NonZeroU32, NonZeroU64};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Once;

use chrono::Utc;
use procmon_agent::enroll::{read_key_file, Credentials};
use procmon_agent::spool::{Kind, Spool, SpoolOptions};
use procmon_agent::{AgentKey, ServerTrust};
use secrecy::ExposeSecret;
use uuid::Uuid;

#[path = "support/logs.rs"]
mod logs;
mod support;
use logs::logs_of;

/// umask 0: without the agent's own modes, every file would be 0666 and
/// every directory 0777. Every test here wants it, and it is per process.
fn permissive_umask() {
    static SET: Once = Once::new();
    // SAFETY: umask only swaps the process's mask.
    SET.call_once(|| unsafe {
        libc::umask(0);
    });
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The spool directory is 0700 and every file in it 0600; the files.
fn assert_private_spool(dir: &Path) -> Vec<PathBuf> {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let files = files_in(dir);
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    files
}

/// Small segments, so a few records span several.
fn small() -> SpoolOptions {
    SpoolOptions {
        max_bytes: NonZeroU64::new(16 * 1024).unwrap(),
        segment_bytes: NonZeroU64::new(1024).unwrap(),
        segment_records: NonZeroU32::new(4).unwrap(),
    }
}

fn append(spool: &mut Spool, n: u64) {
    let kind = if spool.wants_keyframe() {
        Kind::Keyframe
    } else {
        Kind::Delta
    };
    let payload = vec![n as u8; 200];
    spool
        .append(kind, Uuid::from_u64_pair(0x9e, n), &payload)
        .unwrap();
}

fn ack_oldest(spool: &mut Spool) {
    let record = spool.peek().unwrap().expect("a record");
    assert!(spool.ack(record.id).unwrap());
}

#[test]
fn a_new_spool_stays_private_through_writes_rotations_acks_and_reopens() {
    permissive_umask();
    let root = tempfile::tempdir().unwrap();
    // Missing parents are made too, with the usual modes: they may be
    // shared (like /var/lib).
    let parent = root.path().join("var");
    let dir = parent.join("spool");
    let mut spool = Spool::open(&dir, small()).unwrap();
    assert_eq!(mode(&parent), 0o777, "the umask is not 0 here");
    assert_private_spool(&dir);

    let mut seen_segments = 0;
    for n in 0..40 {
        append(&mut spool, n);
        if n % 3 == 0 {
            ack_oldest(&mut spool);
        }
        let files = assert_private_spool(&dir);
        seen_segments = seen_segments.max(
            files
                .iter()
                .filter(|f| f.extension().is_some_and(|e| e == "seg"))
                .count(),
        );
    }
    assert!(
        seen_segments >= 3,
        "rotated into only {seen_segments} segments"
    );
    assert!(dir.join("cursor").is_file(), "the acks wrote the cursor");
    drop(spool);

    let mut spool = Spool::open(&dir, small()).unwrap();
    append(&mut spool, 100);
    ack_oldest(&mut spool);
    let files = assert_private_spool(&dir);
    assert!(files.len() >= 2, "{files:?}");
}

#[test]
fn an_older_spool_open_to_others_is_narrowed_at_open_with_a_warning() {
    permissive_umask();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("spool");
    {
        let mut spool = Spool::open(&dir, small()).unwrap();
        for n in 0..10 {
            append(&mut spool, n);
        }
        ack_oldest(&mut spool);
    }
    // As an agent before this one left it, with a cursor cut short too.
    std::fs::write(dir.join("cursor.tmp"), b"cut").unwrap();
    set_mode(&dir, 0o755);
    let files = files_in(&dir);
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        set_mode(file, 0o644);
    }

    let (spool, logs) = logs_of(|| Spool::open(&dir, small()).unwrap());
    assert_private_spool(&dir);
    assert!(
        logs.contains("the folder was open to other users (mode 0755); narrowed to this user only (mode 0700)"),
        "{logs}"
    );
    assert!(logs.contains(&dir.display().to_string()), "{logs}");
    for file in &files {
        let said = format!("file={}", file.display());
        assert!(
            logs.lines().any(|line| line.contains(&said)
                && line.contains("(mode 0644); narrowed to this user only (mode 0600)")),
            "no warning for {}:\n{logs}",
            file.display()
        );
    }
    assert_eq!(spool.len(), 9, "narrowing keeps every record");
    drop(spool);

    // Private now: nothing more to say.
    let (_spool, logs) = logs_of(|| Spool::open(&dir, small()).unwrap());
    assert!(!logs.contains("narrowed"), "{logs}");
}

#[test]
fn a_spool_that_cannot_be_made_says_which_path_and_what_failed() {
    permissive_umask();
    let root = tempfile::tempdir().unwrap();
    let blocker = root.path().join("not-a-folder");
    std::fs::write(&blocker, b"").unwrap();
    let dir = blocker.join("spool");
    let error = Spool::open(&dir, small()).unwrap_err().to_string();
    assert!(
        error.contains(&format!("the spool file {} cannot be used", dir.display()))
            && error.contains(&format!(
                "cannot create the folder above it, {}",
                blocker.display()
            )),
        "{error}"
    );
}

#[test]
fn an_older_key_file_open_to_others_is_narrowed_when_read() {
    permissive_umask();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("procmon-agent.key");
    std::fs::write(&path, "pmk_old_key\n").unwrap();
    set_mode(&path, 0o644);
    let (key, logs) = logs_of(|| read_key_file(&path).unwrap());
    assert_eq!(key.expose_secret(), "pmk_old_key");
    assert_eq!(mode(&path), 0o600);
    assert!(
        logs.contains(
            "the file was open to other users (mode 0644); narrowed to this user only (mode 0600)"
        ) && logs.contains(&path.display().to_string()),
        "{logs}"
    );
    let (_, logs) = logs_of(|| read_key_file(&path).unwrap());
    assert!(!logs.contains("narrowed"), "{logs}");
}

/// Enrolling against a real server keeps the key in a new folder, both
/// private, with nothing left beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_key_and_its_new_folder_are_private() {
    permissive_umask();
    let data = tempfile::tempdir().unwrap();
    let server = support::serve(data.path(), 0).await;
    let secret = server
        .state
        .agent_keys
        .rotate_enroll_secret(Utc::now())
        .await
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("keys");
    let key_file = folder.join("procmon-agent.key");
    let mut credentials = Credentials::new(
        &[server.url()],
        AgentKey::Enroll {
            secret,
            key_file: key_file.clone(),
        },
        ServerTrust::default(),
    )
    .unwrap();
    let host = procmon_model::fixtures::host("private-key-host", Utc::now());
    credentials.senders(&host).await.unwrap();

    assert_eq!(mode(&folder), 0o700);
    // Beside the key, the server's action key, saved as privately: only
    // this user may replace the key actions are trusted by.
    let action_key = procmon_agent::actions::saved_key_file(&key_file);
    assert_eq!(
        files_in(&folder),
        vec![action_key.clone(), key_file.clone()]
    );
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(mode(&action_key), 0o600);
    let kept = read_key_file(&key_file).unwrap();
    assert!(kept.expose_secret().starts_with("pmk_"));
    server.stop().await;
}
